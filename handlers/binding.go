package handlers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
)

// A browser flow started from a web page is bound to that browser: the
// connect answer sets a cookie holding a random nonce, scoped to the
// callback route, and the flow keeps the nonce's digest; the callback
// completes the flow only with that cookie. Someone who starts a sign-in
// and sends its link to another person cannot get that person's account
// linked to their profile: the other browser has no cookie.
//
// Flows started without a browser (curl, the CLI, the loopback listener,
// the device flow) are not bound: their callback, if any, is not reached
// by the cookies of the client that started them.

// bindingCookie is the cookie of a browser binding.
const bindingCookie = "memconnect_flow"

// startedByBrowser reports whether r comes from a web page: browsers send
// Origin with a POST from script, and Sec-Fetch-Site with every request.
func startedByBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
}

// callbackPath is the callback route's path of the connect request r.
func callbackPath(r *http.Request) string {
	return strings.TrimSuffix(r.URL.Path, "/connect") + "/callback"
}

// bindBrowser sets the binding cookie on w (keeping the nonce the browser
// already holds, so that it can join its own pending flow) and returns the
// nonce's digest for the flow.
func bindBrowser(w http.ResponseWriter, r *http.Request) string {
	nonce := browserNonce(r)
	if len(nonce) != 43 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		nonce = base64.RawURLEncoding.EncodeToString(b)
	}
	http.SetCookie(w, &http.Cookie{Name: bindingCookie, Value: nonce, Path: callbackPath(r), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: 3600})
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
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
	http.SetCookie(w, &http.Cookie{Name: bindingCookie, Value: "", Path: r.URL.Path, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil, MaxAge: -1})
}
