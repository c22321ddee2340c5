package middleware

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/memconnect/memconnect/internal/apierr"
)

// defaultHosts returns the host names allowed when a guard is given none:
// the loopback names. It returns a new slice each time.
func defaultHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// hostSet is a set of normalized host names (see [normalizeHost]).
type hostSet map[string]struct{}

// newHostSet returns the set of the normalized allowed names, or of the
// loopback names if allowed has none, and the names as given, for messages.
func newHostSet(allowed []string) (hostSet, []string) {
	set := make(hostSet)
	var names []string
	for _, h := range allowed {
		if n := normalizeHost(h); n != "" {
			set[n] = struct{}{}
			names = append(names, h)
		}
	}
	if len(set) == 0 {
		return newHostSet(defaultHosts())
	}
	return set, names
}

func (s hostSet) has(hostport string) bool {
	n := normalizeHost(hostport)
	if n == "" {
		return false
	}
	_, ok := s[n]
	return ok
}

// normalizeHost returns the host of a host[:port] string, without the port
// or IPv6 brackets, lower-cased, without a trailing dot, and with an IP
// literal in its canonical form: "[::1]:8080" and "[0:0::1]" give "::1",
// "LocalHost.:80" gives "localhost".
func normalizeHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if addr, err := netip.ParseAddr(h); err == nil {
		h = addr.String()
	}
	return h
}

// HostGuard returns middleware that answers 403 "forbidden" to a request
// whose Host header does not name this server, the defence against DNS
// rebinding: a web page whose name an attacker re-points at 127.0.0.1 still
// sends its own name in Host.
//
// allowed holds host names or IP literals, without a port (a port given is
// ignored); they match r.Host with its port stripped, case-insensitively,
// so "[::1]:8080" matches "::1". With no allowed names the loopback names
// localhost, 127.0.0.1 and ::1 are allowed, on any port.
func HostGuard(allowed []string) func(http.Handler) http.Handler {
	hosts, names := newHostSet(allowed)
	message := "This server only answers requests addressed to " + strings.Join(names, ", ") +
		". Open it through one of these names, or add the name to the allowed hosts."
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !hosts.has(r.Host) {
				apierr.Write(w, r, apierr.Wrap(apierr.CodeForbidden,
					fmt.Errorf("middleware: host %q is not allowed", r.Host), message))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// safeMethod reports whether m is a safe method (RFC 9110, section 9.2.1),
// which must not change state.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// OriginGuard returns middleware that answers 403 "forbidden" to a
// state-changing request (any method but GET, HEAD, OPTIONS and TRACE; so
// POST, PUT, PATCH and DELETE) sent by a web page of a foreign origin: one
// whose Origin header (RFC 6454) is neither
//
//   - an http or https origin whose host is in allowedHosts (any port;
//     localhost, 127.0.0.1 and ::1 when allowedHosts is empty, as in
//     [HostGuard]), nor
//   - exactly one of allowedOrigins, "scheme://host[:port]" compared
//     case-insensitively (for example "http://127.0.0.1:5173" or
//     "tauri://localhost").
//
// "Origin: null" (sandboxed frames, file: pages, some redirects) is refused
// too, and so is a request without an Origin header whose
// Sec-Fetch-Site header says "cross-site" (Fetch Metadata). Any other
// request without an Origin header passes: curl and the CLI send none, and
// browsers send one with every cross-origin state-changing request. Safe
// methods always pass.
func OriginGuard(allowedOrigins []string, allowedHosts []string) func(http.Handler) http.Handler {
	hosts, _ := newHostSet(allowedHosts)
	origins := make(map[string]struct{}, len(allowedOrigins))
	for _, o := range allowedOrigins {
		if o = normalizeOrigin(o); o != "" {
			origins[o] = struct{}{}
		}
	}
	allowed := func(origin string) bool {
		o := normalizeOrigin(origin)
		if o == "" {
			return false
		}
		if _, ok := origins[o]; ok {
			return true
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return false
		}
		return hosts.has(u.Host)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			values := r.Header.Values("Origin")
			if safeMethod(r.Method) {
				next.ServeHTTP(w, r)
				return
			}
			if len(values) == 0 {
				// Fetch metadata: a browser that sends no Origin still
				// says where the request comes from.
				if strings.EqualFold(r.Header.Get("Sec-Fetch-Site"), "cross-site") {
					apierr.Write(w, r, apierr.Wrap(apierr.CodeForbidden,
						errors.New("middleware: a cross-site request (Sec-Fetch-Site) without an Origin header"),
						"This server does not accept "+r.Method+" requests from web pages of other sites."))
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			if len(values) > 1 || values[0] == "null" || !allowed(values[0]) {
				apierr.Write(w, r, apierr.Wrap(apierr.CodeForbidden,
					fmt.Errorf("middleware: origin %q is not allowed", strings.Join(values, ", ")),
					"This server does not accept "+r.Method+" requests from web pages of other origins."))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// normalizeOrigin lower-cases an origin and drops a trailing slash; it
// returns "" for "null" and for anything that is not scheme://host[:port].
func normalizeOrigin(o string) string {
	o = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
	if o == "null" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return ""
	}
	return o
}
