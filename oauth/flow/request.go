package flow

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"slices"

	"golang.org/x/oauth2"
)

// prepareRequest validates req and returns the authorization request
// options its AuthParams make. It decides no default: the caller names the
// method and, for a browser flow, the redirect mode.
func prepareRequest(req Request) (Request, []oauth2.AuthCodeOption, error) {
	invalid := func(format string, args ...any) (Request, []oauth2.AuthCodeOption, error) {
		return req, nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
	}
	if req.Key.Profile == "" || req.Key.Provider == "" {
		return invalid("profile and provider are required")
	}
	if req.Complete == nil {
		return invalid("Complete is required")
	}
	if len(req.ResumeData) > MaxResumeData {
		return invalid("resume data of %d bytes, more than %d", len(req.ResumeData), MaxResumeData)
	}
	if req.Config.ClientID == "" || req.Config.Endpoint.TokenURL == "" {
		return invalid("client id and token endpoint are required")
	}
	switch req.Method {
	case MethodBrowser:
		if req.Config.Endpoint.AuthURL == "" {
			return invalid("authorization endpoint is required")
		}
		switch req.Redirect {
		case RedirectLoopback:
			if req.LoopbackAddr != "" {
				if err := CheckLoopbackAddr(req.LoopbackAddr); err != nil {
					return req, nil, err
				}
			}
		case RedirectCallback:
			u, err := url.Parse(req.CallbackURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
				return invalid("callback URL must be an absolute http(s) URL without fragment")
			}
		case "":
			return invalid("a browser flow needs a redirect mode")
		default:
			return invalid("unknown redirect mode %q", req.Redirect)
		}
	case MethodDevice:
		if req.Redirect != "" {
			return invalid("a device flow has no redirect mode")
		}
		if !req.DeviceSupported || req.Config.Endpoint.DeviceAuthURL == "" {
			return req, nil, ErrDeviceUnsupported
		}
	case "":
		return invalid("a method is required")
	default:
		return invalid("unknown method %q", req.Method)
	}

	for k := range req.TokenParams {
		switch k {
		case "client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method",
			"grant_type", "code", "code_verifier", "device_code", "refresh_token":
			return invalid("token parameter %q is set by the flow", k)
		}
	}
	var opts []oauth2.AuthCodeOption
	for _, k := range slices.Sorted(maps.Keys(req.AuthParams)) {
		switch k {
		case "client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method":
			return invalid("parameter %q is set by the flow", k)
		}
		if v := req.AuthParams.Get(k); v != "" {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return req, opts, nil
}

// tokenOptions turns a request's TokenParams into options of the token
// requests, leaving out empty values.
func tokenOptions(params url.Values) []oauth2.AuthCodeOption {
	var opts []oauth2.AuthCodeOption
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if v := params.Get(k); v != "" {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return opts
}

// newStateParam returns a state parameter: 256 random bits, base64url
// (RFC 6749 section 10.10 asks for at least 128).
func newStateParam() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
