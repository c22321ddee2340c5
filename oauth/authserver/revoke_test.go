package authserver_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/oauth/authserver"
)

func TestRevokeAgainstOAuthtest(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	tests := []struct {
		name string
		hint string
		pick func(at, rt string) string
	}{
		{"refresh token", "refresh_token", func(_, rt string) string { return rt }},
		{"access token", "access_token", func(at, _ string) string { return at }},
		{"no hint", "", func(_, rt string) string { return rt }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := srv.IssueGrant("write")
			if !srv.Active(tok.AccessToken) {
				t.Fatal("fresh grant not active")
			}
			err := authserver.Revoke(context.Background(), srv.Client(), srv.RevocationURL(), srv.ClientID(), tc.pick(tok.AccessToken, tok.RefreshToken), tc.hint)
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if srv.Active(tok.AccessToken) || srv.Active(tok.RefreshToken) {
				t.Errorf("grant still active after revocation")
			}
		})
	}
	// An unknown token is not an error (RFC 7009 section 2.2).
	if err := authserver.Revoke(context.Background(), srv.Client(), srv.RevocationURL(), srv.ClientID(), "hch-rt-unknown", "refresh_token"); err != nil {
		t.Errorf("Revoke of an unknown token: %v", err)
	}
}

func TestRevokeErrors(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	tok := srv.IssueGrant("write")

	err := authserver.Revoke(context.Background(), srv.Client(), srv.RevocationURL(), "not-registered", tok.RefreshToken, "refresh_token")
	var re *authserver.RevokeError
	if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
		t.Fatalf("Revoke with an unknown client = %v, want RevokeError 401 invalid_client", err)
	}
	if strings.Contains(err.Error(), tok.RefreshToken) {
		t.Errorf("error holds the token: %v", err)
	}
	if !srv.Active(tok.RefreshToken) {
		t.Errorf("a refused revocation revoked the grant")
	}

	if err := authserver.Revoke(context.Background(), nil, "", "c", "t", ""); !errors.Is(err, authserver.ErrNoRevocationEndpoint) {
		t.Errorf("Revoke without endpoint = %v, want ErrNoRevocationEndpoint", err)
	}
}

// A server that echoes the token in its error, and one that is down: the
// token never reaches the error text.
func TestRevokeErrorNeverHoldsToken(t *testing.T) {
	t.Parallel()
	const secret = "hch-rt-SECRETSECRET"
	var form url.Values
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"cannot revoke ` + r.PostForm.Get("token") + `"}`))
	}))
	defer echo.Close()
	err := authserver.Revoke(context.Background(), echo.Client(), echo.URL, "hermes-agent", secret, "refresh_token")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("Revoke = %v; want an error without the token", err)
	}
	if form.Get("token") != secret || form.Get("client_id") != "hermes-agent" || form.Get("token_type_hint") != "refresh_token" {
		t.Errorf("form sent = %v", form)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	addr := down.URL
	down.Close()
	err = authserver.Revoke(context.Background(), nil, addr+"/revoke", "c", secret, "")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("Revoke to a closed server = %v; want an error without the token", err)
	}
}
