package middleware

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/internal/connsession"
)

// SessionToken returns middleware that requires the header
// "Authorization: Bearer <token>" (RFC 6750, section 2.1) on every request
// for which exempt (if not nil) returns false. The router exempts the OAuth
// callback, which a browser reaches by redirect without the token.
//
// If token is empty, SessionToken returns middleware that does nothing.
//
// The presented token is compared with crypto/subtle in constant time, on
// SHA-256 digests so that the time does not depend on the token's length
// either. A request without a valid token gets 401 "unauthorized" with a
// WWW-Authenticate: Bearer challenge (with error="invalid_token" when a
// wrong token was sent, RFC 6750, section 3.1). The token is never logged.
func SessionToken(token string, exempt func(*http.Request) bool, opts ...SessionOption) func(http.Handler) http.Handler {
	var o sessionOptions
	for _, f := range opts {
		f(&o)
	}
	if token == "" && o.verify == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if exempt != nil && exempt(r) {
				next.ServeHTTP(w, r)
				return
			}
			got, sent := bearerToken(r)
			if sent && o.verify != nil {
				if profile, providers, ok, err := o.verify(got); ok {
					if err != nil {
						w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
						apierr.Write(w, r, apierr.Wrap(apierr.CodeUnauthorized, err, sessionMessage(err)))
						return
					}
					s := connsession.Claims{Profile: profile, Providers: providers}
					next.ServeHTTP(w, r.WithContext(connsession.NewContext(r.Context(), s)))
					return
				}
			}
			if token == "" {
				next.ServeHTTP(w, r) // no session token: the host guards nothing else
				return
			}
			if sent {
				sum := sha256.Sum256([]byte(got))
				if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
					next.ServeHTTP(w, r)
					return
				}
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				apierr.Write(w, r, apierr.Wrap(apierr.CodeUnauthorized,
					errors.New("middleware: wrong session token"),
					"The session token is not valid. Send the token this server was started with as \"Authorization: Bearer TOKEN\"."))
				return
			}
			w.Header().Set("WWW-Authenticate", "Bearer")
			apierr.Write(w, r, apierr.Errorf(apierr.CodeUnauthorized,
				"This server needs a session token. Send it as \"Authorization: Bearer TOKEN\"."))
		})
	}
}

// SessionOption configures [SessionToken].
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	verify func(token string) (profile string, providers []string, ok bool, err error)
}

// ErrSessionExpired is what a connect-session verifier returns, or wraps,
// for a session that has expired: the answer says so.
var ErrSessionExpired = errors.New("middleware: the connect session has expired")

// WithConnectSessions makes [SessionToken] accept connect sessions besides
// the session token: verify reports whether token has the form of a
// session (ok), and if so the profile it acts for and the providers it
// may act on (none: all), or why it is not valid. A valid session is put in
// the request's context, where the profile-scoped routes hold the request
// to its profile and providers; an expired or forged one gets 401.
func WithConnectSessions(verify func(token string) (profile string, providers []string, ok bool, err error)) SessionOption {
	return func(o *sessionOptions) { o.verify = verify }
}

func sessionMessage(err error) string {
	if errors.Is(err, ErrSessionExpired) {
		return "This connect session has expired. Ask the app for a new one."
	}
	return "This connect session is not valid. Ask the app for a new one."
}

// bearerToken returns the credentials of an "Authorization: Bearer" header
// and whether there were any. The scheme is case-insensitive (RFC 9110,
// section 11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}
