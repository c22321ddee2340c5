package middleware_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/middleware"
)

// chain returns h behind RequestID, AccessLog (into buf) and Recoverer.
func chain(buf *bytes.Buffer, h http.Handler) http.Handler {
	return middleware.RequestID(middleware.AccessLog(zerolog.New(buf))(middleware.Recoverer(h)))
}

func TestRecoverer(t *testing.T) {
	tests := []struct {
		name  string
		value any
	}{
		{"string", "boom"},
		{"error", errors.New("boom")},
		{"nil pointer", (*int)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := chain(&buf, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5")
				panic(tt.value)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/providers", nil))

			got := checkError(t, rec, http.StatusInternalServerError, apierr.CodeInternal)
			id := rec.Header().Get("X-Request-Id")
			if id == "" || got.RequestID != id {
				t.Errorf("body request_id = %q, X-Request-Id = %q: want them equal and set", got.RequestID, id)
			}
			if cl := rec.Header().Get("Content-Length"); cl == "5" {
				t.Errorf("the handler's Content-Length survived")
			}

			lines := logLines(t, &buf)
			var panicLine map[string]any
			for _, l := range lines {
				if l["message"] == "panic recovered" {
					panicLine = l
				}
			}
			if panicLine == nil {
				t.Fatalf("no panic line in log %v", lines)
			}
			if panicLine["level"] != "error" || panicLine["request_id"] != id {
				t.Errorf("panic line level=%v request_id=%v, want error and %q", panicLine["level"], panicLine["request_id"], id)
			}
			if s, _ := panicLine["stack"].(string); !strings.Contains(s, "recoverer_test.go") {
				t.Errorf("panic line stack = %q, want the panicking frame", s)
			}
			if a := accessLine(t, lines); a["status"] != 500.0 {
				t.Errorf("access log status = %v, want 500", a["status"])
			}
		})
	}
}

func TestRecovererAfterHeaders(t *testing.T) {
	var buf bytes.Buffer
	h := chain(&buf, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("partial"))
		panic("late")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/providers", nil))
	if rec.Code != http.StatusAccepted || rec.Body.String() != "partial" {
		t.Errorf("got %d %q, want the handler's 202 \"partial\" untouched", rec.Code, rec.Body.String())
	}
	if !strings.Contains(buf.String(), `"response_started":true`) {
		t.Errorf("log %q does not record the started response", buf.String())
	}
}

func TestRecovererAbortHandler(t *testing.T) {
	h := middleware.Recoverer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if rec := recover(); rec != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked", rec)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	t.Error("ServeHTTP returned, want a panic")
}

func TestRecovererNoPanic(t *testing.T) {
	rec := httptest.NewRecorder()
	middleware.Recoverer(okHandler).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	checkOK(t, rec)
}
