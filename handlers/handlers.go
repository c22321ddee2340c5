package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
)

// Handlers serves the routes of the HTTP API (DESIGN.md, "HTTP API") on top
// of a [provider.Service]. Build it with [New]; the router
// (memconnect.New) mounts its methods on the route table.
//
// The handlers read the path parameters {profile} and {provider} with
// [chi.URLParam], so they must be served by a chi router with those
// parameters. Every answer but the callback's page is JSON, whatever the
// request's Accept header says, written like [render.JSON] but without
// HTML escaping (URLs keep their "&"); every error goes through
// [RenderError].
//
// Handlers is safe for concurrent use by multiple goroutines.
type Handlers struct {
	svc          *provider.Service
	callbackBase string // "" when no callback base URL is configured
}

// New returns the handlers of svc. svc must have a Registry, a Profiles
// resolver and a Flows manager, and must not be changed afterwards.
//
// callbackBaseURL, when not empty, is the absolute http(s) URL where the
// router is reachable, such as "http://127.0.0.1:8080/api/memory": browser
// flows then default to the "callback" redirect mode with the redirect URI
// callbackBaseURL + "/profiles/{profile}/providers/{provider}/callback".
// When it is empty they default to "loopback", and a connect request asking
// for "callback" is refused. The redirect URI is never derived from a
// request's Host header. New fails when callbackBaseURL is not valid (see
// [ValidateCallbackBaseURL]).
func New(svc *provider.Service, callbackBaseURL string) (*Handlers, error) {
	if svc == nil || svc.Registry == nil || svc.Profiles == nil || svc.Flows == nil {
		return nil, errors.New("handlers: the Service needs a Registry, a ProfileResolver and a FlowManager")
	}
	base, err := ValidateCallbackBaseURL(callbackBaseURL)
	if err != nil {
		return nil, err
	}
	return &Handlers{svc: svc, callbackBase: base}, nil
}

// ValidateCallbackBaseURL checks a callback base URL and returns it without
// a trailing slash. The empty string is valid (no callback mode). Otherwise
// it must be an absolute http or https URL with a host and without user
// information, query or fragment.
func ValidateCallbackBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("handlers: callback base URL %q is not an absolute http(s) URL without query or fragment", raw)
	}
	// DESIGN.md: loopback redirect URIs are IP literals (RFC 8252 section
	// 8.3); "localhost" may resolve elsewhere, and servers such as Ory
	// Hydra match the host exactly.
	if strings.EqualFold(u.Hostname(), "localhost") {
		return "", fmt.Errorf("handlers: callback base URL %q names localhost; use the IP literal http://127.0.0.1:%s (RFC 8252 section 8.3)", raw, u.Port())
	}
	return strings.TrimRight(raw, "/"), nil
}

// DefaultRedirect returns the redirect mode of a browser flow whose connect
// request names none: [oauth.RedirectCallback] when a callback base URL is
// configured, else [oauth.RedirectLoopback].
func (h *Handlers) DefaultRedirect() oauth.RedirectMode {
	if h.callbackBase != "" {
		return oauth.RedirectCallback
	}
	return oauth.RedirectLoopback
}

// CallbackURL returns the redirect URI of the callback route for a profile
// and a provider, or "" when no callback base URL is configured. The
// profile "current" is spelled "default", its canonical name.
func (h *Handlers) CallbackURL(profile, providerName string) string {
	if h.callbackBase == "" {
		return ""
	}
	if profile == "current" {
		profile = provider.DefaultProfile
	}
	return h.callbackBase + "/profiles/" + url.PathEscape(profile) +
		"/providers/" + url.PathEscape(providerName) + "/callback"
}

// pathParams returns the {profile} and {provider} path parameters, decoded.
// A profile name that is not well-formed is an error wrapping
// [provider.ErrInvalidProfile].
//
// chi matches the escaped path when the URL has one (r.URL.RawPath is set
// when a segment holds an escape that decodes to something else, such as
// "%2e%2e" or "a%2Fb"); its parameters are then still escaped and are
// decoded here, once. Otherwise they are already decoded and are taken as
// they are, so "%2561" is never decoded twice into "a".
func pathParams(r *http.Request) (profile, providerName string, err error) {
	profile, providerName = chi.URLParam(r, "profile"), chi.URLParam(r, "provider")
	if r.URL.RawPath != "" {
		p, err := url.PathUnescape(profile)
		if err != nil {
			return "", "", provider.ValidateProfileName("%")
		}
		profile = p
		if providerName, err = url.PathUnescape(providerName); err != nil {
			return "", "", Errorf(CodeUnknownProvider, "There is no provider with this name. GET /providers lists the providers.")
		}
	}
	if err := provider.ValidateProfileName(profile); err != nil {
		return "", "", err
	}
	return profile, providerName, nil
}

// respond renders v as the JSON answer: v's Render method runs first and
// may set the status with [render.Status]; the answer is never cached (a
// status body holds a flow's authorization URL). It is always JSON: content
// negotiation (render.Respond) could answer XML.
func respond(w http.ResponseWriter, r *http.Request, v render.Renderer) {
	if err := v.Render(w, r); err != nil {
		RenderError(w, r, err)
		return
	}
	writeJSON(w, r, v)
}

// writeJSON is [render.JSON] without HTML escaping: a flow's authorize_url
// keeps its "&" instead of "\u0026", so a person can copy it from curl's
// output into a browser. The status set with [render.Status] is honoured.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error":"internal","message":"The answer could not be encoded."}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // errors too: a 404 or 405 is cacheable by default
	if status, ok := r.Context().Value(render.StatusCtxKey).(int); ok {
		w.WriteHeader(status)
	}
	w.Write(buf.Bytes())
}
