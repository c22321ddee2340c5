package middleware_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/middleware"
)

func TestSessionToken(t *testing.T) {
	const token = "s3cret-session-token"
	isCallback := func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/callback") }
	tests := []struct {
		name          string
		token         string
		path          string
		authorization []string
		wantStatus    int
		wantChallenge string
	}{
		{"right token", token, "/providers", []string{"Bearer " + token}, 200, ""},
		{"scheme is case-insensitive", token, "/providers", []string{"bearer " + token}, 200, ""},
		{"missing", token, "/providers", nil, 401, "Bearer"},
		{"empty header", token, "/providers", []string{""}, 401, "Bearer"},
		{"scheme only", token, "/providers", []string{"Bearer "}, 401, "Bearer"},
		{"wrong token", token, "/providers", []string{"Bearer nope"}, 401, `Bearer error="invalid_token"`},
		{"prefix of the token", token, "/providers", []string{"Bearer " + token[:5]}, 401, `Bearer error="invalid_token"`},
		{"token plus extra", token, "/providers", []string{"Bearer " + token + "x"}, 401, `Bearer error="invalid_token"`},
		{"basic auth", token, "/providers", []string{"Basic " + token}, 401, "Bearer"},
		{"token without scheme", token, "/providers", []string{token}, 401, "Bearer"},
		{"exempt callback without token", token, "/profiles/default/providers/honcho/callback", nil, 200, ""},
		{"exempt callback with wrong token", token, "/profiles/default/providers/honcho/callback", []string{"Bearer nope"}, 200, ""},
		{"no token configured", "", "/providers", nil, 200, ""},
		{"no token configured, any header", "", "/providers", []string{"Bearer whatever"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := middleware.AccessLog(zerolog.New(&logs))(
				middleware.SessionToken(tt.token, isCallback)(okHandler))
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			for _, a := range tt.authorization {
				r.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)

			if tt.wantStatus == 200 {
				checkOK(t, rec)
			} else {
				checkError(t, rec, tt.wantStatus, apierr.CodeUnauthorized)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChallenge)
			}
			if tt.token != "" && strings.Contains(logs.String()+rec.Body.String(), tt.token) {
				t.Errorf("the token leaked into the log or the body")
			}
		})
	}
}

func TestSessionTokenNilExempt(t *testing.T) {
	h := middleware.SessionToken("t", nil)(okHandler)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/profiles/default/providers/honcho/callback", nil))
	checkError(t, rec, http.StatusUnauthorized, apierr.CodeUnauthorized)
}
