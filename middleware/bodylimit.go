package middleware

import (
	"net/http"

	"github.com/memconnect/memconnect/internal/apierr"
)

// DefaultBodyLimit is the request body limit [BodyLimit] applies when given
// a limit <= 0: 64 KiB, far more than any request of the API needs.
const DefaultBodyLimit int64 = 64 << 10

// BodyLimit returns middleware that limits request bodies to n bytes
// ([DefaultBodyLimit] if n <= 0). A request whose Content-Length exceeds n
// gets 413 "payload_too_large" without reaching the handler. Otherwise the
// body is wrapped in [http.MaxBytesReader], so a handler that reads past the
// limit (a chunked body has no Content-Length) gets an
// [*http.MaxBytesError], which the error writer answers with 413.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	if n <= 0 {
		n = DefaultBodyLimit
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				apierr.Write(w, r, apierr.Classify(&http.MaxBytesError{Limit: n}))
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r = r.WithContext(r.Context()) // a shallow copy: the caller's request is left alone
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}
