package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog/hlog"

	"github.com/memconnect/memconnect/internal/apierr"
)

// Recoverer recovers a panic in a later handler, logs it with its stack
// and the request id at error level through the request's logger, and, if
// the response has not started yet, answers 500 with the JSON error
// "internal" and the request id (through the error writer, which logs
// the response too).
//
// A panic with [http.ErrAbortHandler] is not recovered: it is re-panicked so
// that net/http aborts the response as the handler asked.
//
// Recoverer passes on a wrapped [http.ResponseWriter] that still implements
// http.Flusher and http.Hijacker when the original does, and unwraps for
// [http.ResponseController].
func Recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			started := ww.Status() != 0
			hlog.FromRequest(r).Error().
				Str("request_id", RequestIDFrom(r.Context())).
				Str("panic", fmt.Sprint(rec)).
				Bool("response_started", started).
				Bytes("stack", debug.Stack()).
				Msg("panic recovered")
			if started {
				// The status line is gone; the client sees a cut response.
				return
			}
			// Headers the handler set for its own body would corrupt ours.
			ww.Header().Del("Content-Length")
			ww.Header().Del("Content-Encoding")
			apierr.Write(ww, r, apierr.Wrap(apierr.CodeInternal,
				fmt.Errorf("middleware: recovered panic: %v", rec), ""))
		}()
		next.ServeHTTP(ww, r)
	})
}
