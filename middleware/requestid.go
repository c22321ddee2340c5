package middleware

import (
	"context"
	"crypto/rand"
	"net/http"

	chimw "github.com/go-chi/chi/v5/middleware"
)

// RequestIDHeader is the header that carries a request's id, in the request
// (optional, from a proxy or a client) and in every response.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen is the longest incoming request id that is accepted.
const maxRequestIDLen = 64

// RequestID gives every request an id: the incoming X-Request-Id header if
// it matches ^[A-Za-z0-9._-]{1,64}$, else a new random one. The id is put
// in the request's context, where [RequestIDFrom] (and chi's
// middleware.GetReqID, which the error writer uses) finds it, and is
// echoed in the X-Request-Id response header.
//
// An incoming id that does not match is replaced rather than cleaned, so a
// client cannot smuggle control characters or megabytes into the log.
//
// Unlike chi's middleware.RequestID, whose ids contain the host name, a new
// id is 26 random base32 characters ([rand.Text]).
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(RequestIDHeader, id)
		// chi's key, so that every chi-aware handler sees the same id.
		ctx := context.WithValue(r.Context(), chimw.RequestIDKey, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// RequestIDFrom returns the request id that [RequestID] stored in ctx, or
// "" if there is none. It is the same value as chi's middleware.GetReqID.
func RequestIDFrom(ctx context.Context) string {
	return chimw.GetReqID(ctx)
}

// validRequestID reports whether id matches ^[A-Za-z0-9._-]{1,64}$.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
