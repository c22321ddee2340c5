package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	chimw "github.com/go-chi/chi/v5/middleware"

	"github.com/memconnect/memconnect/middleware"
)

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming []string // X-Request-Id values sent
		keep     bool     // whether the first incoming value is kept
	}{
		{"none", nil, false},
		{"valid", []string{"abc-123_X.y"}, true},
		{"64 characters", []string{strings.Repeat("a", 64)}, true},
		{"65 characters", []string{strings.Repeat("a", 65)}, false},
		{"empty", []string{""}, false},
		{"space", []string{"abc def"}, false},
		{"newline", []string{"abc\ndef"}, false},
		{"slash (chi's own format)", []string{"host/abc-000001"}, false},
		{"JSON injection", []string{`a","level":"error`}, false},
		{"non-ASCII", []string{"idé"}, false},
		{"first of two", []string{"first", "second"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inCtx, chiCtx string
			h := middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx = middleware.RequestIDFrom(r.Context())
				chiCtx = chimw.GetReqID(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/providers", nil)
			for _, v := range tt.incoming {
				r.Header.Add("X-Request-Id", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)

			echoed := rec.Header().Get("X-Request-Id")
			if !validID.MatchString(echoed) {
				t.Fatalf("X-Request-Id = %q, want a valid id", echoed)
			}
			if inCtx != echoed || chiCtx != echoed {
				t.Errorf("context id = %q (chi %q), header %q: want them equal", inCtx, chiCtx, echoed)
			}
			if tt.keep && echoed != tt.incoming[0] {
				t.Errorf("id = %q, want the incoming %q", echoed, tt.incoming[0])
			}
			if !tt.keep && len(tt.incoming) > 0 && echoed == tt.incoming[0] {
				t.Errorf("invalid incoming id %q was kept", echoed)
			}
		})
	}
}

func TestRequestIDUnique(t *testing.T) {
	h := middleware.RequestID(okHandler)
	seen := make(map[string]bool)
	for range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		id := rec.Header().Get("X-Request-Id")
		if seen[id] {
			t.Fatalf("id %q generated twice", id)
		}
		seen[id] = true
	}
}

func TestRequestIDFromEmpty(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if got := middleware.RequestIDFrom(r.Context()); got != "" {
		t.Errorf("RequestIDFrom(no id) = %q, want \"\"", got)
	}
}
