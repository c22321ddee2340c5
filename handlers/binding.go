package handlers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/memconnect/memconnect/internal/connsession"
)

// A browser flow started from a web page, or under a connect session
// whatever headers the request carries, is bound to the browser that
// started it: the connect answer sets a cookie holding a random nonce the
// server mints (never one the client sends), scoped to the callback route,
// and the flow keeps the nonce's digest; the callback completes the flow
// only with that cookie. Someone who starts a sign-in and sends its link
// to another person cannot get that person's account linked to their
// profile: the other browser has no cookie. A connect session cannot
// start a flow that cannot be bound (a device flow, a loopback redirect):
// that is [provider.ErrUnbindable], 403.
//
// Only the host's own credential starts unbound flows (curl, the CLI, the
// loopback listener, the device flow): their callback, if any, is not
// reached by the cookies of the client that started them. A host that
// starts flows for its users with its own credential binds them to its
// users in its [AuthorizeFunc], on [ActionCallback].

// bindingCookie is the cookie of a browser binding.
const bindingCookie = "memconnect_flow"

// startedByBrowser reports whether r comes from a web page: browsers send
// Origin with a POST from script, and Sec-Fetch-Site with every request.
func startedByBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
}

// underSession reports whether r acts with a connect session rather than
// the host's own credential.
func underSession(r *http.Request) bool {
	_, ok := connsession.FromContext(r.Context())
	return ok
}

// newNonce returns a fresh browser nonce: 256 random bits.
func newNonce() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest is the binding a flow keeps for nonce.
func digest(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

// setBindingCookie sets the binding cookie for the callback at
// redirectURI: scoped to its path (the host's mount included, whatever it
// strips before the router sees the request), Secure on https. A flow
// redirected elsewhere (a loopback listener) gets none.
func setBindingCookie(w http.ResponseWriter, redirectURI, nonce string) {
	u, err := url.Parse(redirectURI)
	if err != nil || !strings.HasSuffix(u.Path, "/callback") || (u.Scheme != "http" && u.Scheme != "https") {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: bindingCookie, Value: nonce, Path: u.Path, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: u.Scheme == "https", MaxAge: 3600})
}

// browserNonce is the binding cookie's value, "" for none.
func browserNonce(r *http.Request) string {
	c, err := r.Cookie(bindingCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// clearBrowserBinding removes the binding cookie after a callback.
func clearBrowserBinding(w http.ResponseWriter, r *http.Request) {
	if browserNonce(r) == "" {
		return
	}
	path := r.URL.Path
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		path = u.Path // as the browser asked, before a host stripped a prefix
	}
	http.SetCookie(w, &http.Cookie{Name: bindingCookie, Value: "", Path: path, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: -1})
}
