package middleware

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"
)

// AccessLog returns middleware that puts logger in each request's context,
// where handlers get it with hlog.FromRequest, and writes one info-level
// line per request when the response is done:
//
//	{"level":"info","method":"GET","path":"/providers","status":200,"size":123,
//	 "duration_ms":0.42,"request_id":"...","message":"request"}
//
// The line has r.URL.Path, never the query string (the OAuth callback's
// query holds the authorization code and state), and no header values at
// all. The duration is in milliseconds, as its key says, whatever zerolog's
// global duration settings. Install it after [RequestID] and before
// [Recoverer].
func AccessLog(logger zerolog.Logger) func(http.Handler) http.Handler {
	withLogger := hlog.NewHandler(logger)
	access := hlog.AccessHandler(func(r *http.Request, status, size int, duration time.Duration) {
		if status == 0 {
			// Nothing was written: net/http answers 200 with an empty body.
			status = http.StatusOK
		}
		hlog.FromRequest(r).Info().
			Str("method", r.Method).
			Str("path", r.URL.Path).
			Int("status", status).
			Int("size", size).
			Float64("duration_ms", float64(duration)/float64(time.Millisecond)).
			Str("request_id", RequestIDFrom(r.Context())).
			Msg("request")
	})
	return func(next http.Handler) http.Handler {
		return withLogger(access(next))
	}
}
