package honcho

import (
	"fmt"
	"net/url"
	"strings"
)

// The environment variables [FromEnv] reads.
const (
	EnvDashboard      = "HONCHO_OAUTH_DASHBOARD"       // base URL of the dashboard; authorize is "<base>/authorize"
	EnvAuthorizeURL   = "HONCHO_OAUTH_AUTHORIZE_URL"   // authorization endpoint; wins over EnvDashboard
	EnvTokenURL       = "HONCHO_OAUTH_TOKEN_URL"       // token endpoint
	EnvDeviceAuthURL  = "HONCHO_OAUTH_DEVICE_AUTH_URL" // device authorization endpoint
	EnvRevocationURL  = "HONCHO_OAUTH_REVOCATION_URL"  // RFC 7009 revocation endpoint (else discovered)
	EnvIssuer         = "HONCHO_OAUTH_ISSUER"          // issuer for RFC 8414 discovery (else the token URL's origin)
	EnvClientID       = "HONCHO_OAUTH_CLIENT_ID"       // client identifier
	EnvScope          = "HONCHO_OAUTH_SCOPE"           // space-separated scopes
	EnvTokenPrefix    = "HONCHO_OAUTH_TOKEN_PREFIX"    // access-token prefix; set and empty = any
	EnvAPIKey         = "HONCHO_API_KEY"               // API key used when the config has none
	EnvAPIKeyCheckURL = "HONCHO_API_KEY_CHECK_URL"     // an API URL that answers an authenticated GET: API keys are checked there before they are stored
)

// FromEnv returns the options the HONCHO_* environment variables ask for.
// lookup has the signature of [os.LookupEnv], so that an access-token prefix
// set to the empty string (accept any token) is told apart from an unset
// one; variables set to the empty string are otherwise ignored.
//
// A URL that is not an absolute http(s) URL is an error naming the
// variable; the error never repeats the value of HONCHO_API_KEY.
func FromEnv(lookup func(string) (string, bool)) ([]Option, error) {
	get := func(k string) string {
		if v, ok := lookup(k); ok {
			return strings.TrimSpace(v)
		}
		return ""
	}
	var opts []Option
	urlVar := func(name string) (string, error) {
		v := get(name)
		if v == "" {
			return "", nil
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return "", fmt.Errorf("honcho: %s is not an absolute http(s) URL", name)
		}
		return v, nil
	}
	dash, err := urlVar(EnvDashboard)
	if err != nil {
		return nil, err
	}
	if dash != "" {
		opts = append(opts, WithAuthorizeURL(strings.TrimRight(dash, "/")+"/authorize"))
	}
	for _, v := range []struct {
		name string
		opt  func(string) Option
	}{
		{EnvAuthorizeURL, WithAuthorizeURL},
		{EnvTokenURL, WithTokenURL},
		{EnvDeviceAuthURL, WithDeviceAuthURL},
		{EnvRevocationURL, WithRevocationURL},
		{EnvIssuer, WithIssuer},
	} {
		u, err := urlVar(v.name)
		if err != nil {
			return nil, err
		}
		if u != "" {
			opts = append(opts, v.opt(u))
		}
	}
	if id := get(EnvClientID); id != "" {
		opts = append(opts, WithClientID(id))
	}
	if s := get(EnvScope); s != "" {
		opts = append(opts, WithScopes(strings.Fields(s)...))
	}
	if prefix, ok := lookup(EnvTokenPrefix); ok {
		opts = append(opts, WithAccessTokenPrefix(strings.TrimSpace(prefix)))
	}
	check, err := urlVar(EnvAPIKeyCheckURL)
	if err != nil {
		return nil, err
	}
	if check != "" {
		opts = append(opts, WithAPIKeyCheckURL(check, nil))
	}
	if key := get(EnvAPIKey); key != "" {
		opts = append(opts, WithAPIKey(key))
	}
	return opts, nil
}
