package middleware_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/middleware"
)

// logLines parses buf as JSON lines.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// accessLine returns the access log line in lines.
func accessLine(t *testing.T, lines []map[string]any) map[string]any {
	t.Helper()
	for _, l := range lines {
		if l["message"] == "request" {
			return l
		}
	}
	t.Fatalf("no access log line in %v", lines)
	return nil
}

func TestAccessLog(t *testing.T) {
	const (
		code      = "SECRET-AUTH-CODE"
		state     = "SECRET-STATE"
		token     = "SECRET-SESSION-TOKEN"
		cookie    = "SECRET-COOKIE"
		userAgent = "SECRET-AGENT"
	)
	tests := []struct {
		name       string
		method     string
		target     string
		handler    http.Handler
		wantPath   string
		wantStatus float64
		wantSize   float64
	}{
		{"callback with code and state", http.MethodGet,
			"/profiles/default/providers/honcho/callback?code=" + code + "&state=" + state,
			okHandler, "/profiles/default/providers/honcho/callback", 200, 2},
		{"error response", http.MethodPost,
			"/profiles/default/providers/honcho/connect?x=" + code,
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				apierr.Write(w, r, apierr.Errorf(apierr.CodeConflict, "Busy."))
			}), "/profiles/default/providers/honcho/connect", 409, -1},
		{"nothing written", http.MethodDelete, "/profiles/default/providers/honcho/connection",
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
			"/profiles/default/providers/honcho/connection", 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := middleware.RequestID(middleware.AccessLog(zerolog.New(&buf))(tt.handler))
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Cookie", "s="+cookie)
			r.Header.Set("User-Agent", userAgent)
			r.Header.Set("X-Request-Id", "req-7")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)

			logged := buf.String()
			for _, secret := range []string{code, state, token, cookie, userAgent, "?"} {
				if strings.Contains(logged, secret) {
					t.Errorf("log contains %q:\n%s", secret, logged)
				}
			}
			line := accessLine(t, logLines(t, &buf))
			want := map[string]any{
				"level": "info", "method": tt.method, "path": tt.wantPath,
				"status": tt.wantStatus, "request_id": "req-7",
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("log %s = %v, want %v", k, line[k], v)
				}
			}
			if tt.wantSize >= 0 && line["size"] != tt.wantSize {
				t.Errorf("log size = %v, want %v", line["size"], tt.wantSize)
			}
			if float64(rec.Body.Len()) != line["size"] {
				t.Errorf("log size = %v, body has %d bytes", line["size"], rec.Body.Len())
			}
			if _, ok := line["duration_ms"].(float64); !ok || line["duration"] != nil {
				t.Errorf("log duration_ms = %v (duration %v), want a number of milliseconds in a key that says so", line["duration_ms"], line["duration"])
			}
		})
	}
}

func TestAccessLogLoggerForHandlers(t *testing.T) {
	var buf bytes.Buffer
	h := middleware.AccessLog(zerolog.New(&buf))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hlog.FromRequest(r).Info().Msg("from the handler")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/providers", nil))
	lines := logLines(t, &buf)
	if len(lines) != 2 || lines[0]["message"] != "from the handler" {
		t.Errorf("log = %v, want the handler's line, then the access line", lines)
	}
}
