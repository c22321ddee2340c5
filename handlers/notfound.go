package handlers

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/provider"
)

// NotFound answers a path that no route matches: 404 "not_found", as JSON.
//
// One shape of path gets 400 "invalid_profile" instead: a per-profile route
// whose {profile} spans more than one segment or none, such as
// /profiles/a/b/providers/honcho/status or /profiles//providers/...; a
// profile name never holds a '/', and the client should learn that the name
// is at fault rather than that the route does not exist.
func NotFound(w http.ResponseWriter, r *http.Request) {
	if profile, bad := badProfilePath(RoutePath(r)); bad {
		renderError(w, r, provider.ValidateProfileName(profile))
		return
	}
	renderError(w, r, &apierr.Error{Code: apierr.CodeNotFound})
}

// MethodNotAllowed answers a request whose path matches a route but not its
// method: 405 "method_not_allowed", as JSON. The router sets the Allow
// header.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	renderError(w, r, &apierr.Error{Code: apierr.CodeMethodNotAllowed})
}

// RoutePath returns the path r is routed on, relative to where the router
// is mounted: chi's RoutePath when a parent router set it, else the escaped
// path when the URL has one, else the path. It is the path chi matches.
func RoutePath(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		return rctx.RoutePath
	}
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

// badProfilePath reports whether p is /profiles/<x>/providers/<p>/<action>
// where <x> is empty or holds a '/', and returns <x>.
func badProfilePath(p string) (profile string, bad bool) {
	rest, ok := strings.CutPrefix(p, "/profiles/")
	if !ok {
		return "", false
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	if n < 4 || segs[n-3] != "providers" || segs[n-2] == "" {
		return "", false
	}
	switch segs[n-1] {
	case "status", "connect", "callback", "cancel", "connection":
	default:
		return "", false
	}
	profile = strings.Join(segs[:n-3], "/")
	return profile, profile == "" || strings.Contains(profile, "/")
}
