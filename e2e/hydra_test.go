package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestHydraAuthorizationCodeRotationAndReuse proves the harness against the
// behaviour memconnect's refresh protocol is built for: an authorization code
// grant with PKCE through Hydra and our login/consent app, a refresh that
// rotates the refresh token, and a replay of the superseded refresh token
// that Hydra answers with invalid_grant while it revokes the whole grant.
func TestHydraAuthorizationCodeRotationAndReuse(t *testing.T) {
	h := StartHydra(t)
	checkDiscovery(t, h)

	cb := newCallbackServer(t)
	// Registered with port 8765, used on the callback server's own port: a
	// loopback IP redirect URI may change its port (RFC 8252 section 7.3),
	// which memconnect's loopback fallback to an OS-assigned port needs.
	const clientID = "e2e-public"
	h.CreatePublicClient(t, clientID, "http://127.0.0.1:8765/callback")

	conf := &oauth2.Config{
		ClientID:    clientID,
		Endpoint:    h.Endpoint(),
		RedirectURL: cb.URL + "/callback",
		Scopes:      []string{"openid", "offline_access", "write"},
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})

	verifier := oauth2.GenerateVerifier()
	state := rand.Text()
	got := authorize(t, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if e := got.Get("error"); e != "" {
		t.Fatalf("callback: error=%q %q, want a code", e, got.Get("error_description"))
	}
	if got.Get("state") != state {
		t.Fatalf("callback: state = %q, want %q", got.Get("state"), state)
	}
	code := got.Get("code")
	if code == "" {
		t.Fatalf("callback: no code in %v", got)
	}

	tok1, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	checkTokenShape(t, "exchange", tok1)
	if scope, _ := tok1.Extra("scope").(string); !hasScopes(scope, "offline_access", "write") {
		t.Errorf("exchange: scope = %q, want offline_access and write", scope)
	}
	if active, cid := h.Introspect(t, tok1.AccessToken); !active || cid != clientID {
		t.Errorf("introspect first access token: active=%v client_id=%q, want true %q", active, cid, clientID)
	}

	// The refresh rotates: a new refresh token, a new access token.
	tok2, err := refresh(ctx, conf, tok1.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	checkTokenShape(t, "refresh", tok2)
	if tok2.RefreshToken == tok1.RefreshToken {
		t.Fatalf("refresh: refresh token did not rotate")
	}
	if tok2.AccessToken == tok1.AccessToken {
		t.Fatalf("refresh: access token did not change")
	}
	if active, cid := h.Introspect(t, tok2.AccessToken); !active || cid != clientID {
		t.Fatalf("introspect rotated access token: active=%v client_id=%q, want true %q", active, cid, clientID)
	}
	if active, _ := h.Introspect(t, tok2.RefreshToken); !active {
		t.Fatalf("introspect rotated refresh token: inactive, want active")
	}

	// Replaying the superseded refresh token is reuse: 400 invalid_grant ...
	_, err = refresh(ctx, conf, tok1.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("replay: err = %v, want *oauth2.RetrieveError", err)
	}
	if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "invalid_grant" {
		t.Fatalf("replay: status %d error %q, want 400 invalid_grant", re.Response.StatusCode, re.ErrorCode)
	}
	// ... and the whole grant is revoked, the newest tokens included.
	for name, tok := range map[string]string{"access": tok2.AccessToken, "refresh": tok2.RefreshToken} {
		if active, _ := h.Introspect(t, tok); active {
			t.Errorf("after reuse: newest %s token is still active, want the grant revoked", name)
		}
	}
	if _, err := refresh(ctx, conf, tok2.RefreshToken); !isInvalidGrant(err) {
		t.Errorf("after reuse: refresh with the newest refresh token: err = %v, want invalid_grant", err)
	}
}

// TestHydraConsentDenied checks the harness's deny knob: the flow ends at
// the redirect URI with error=access_denied and no code.
func TestHydraConsentDenied(t *testing.T) {
	h := StartHydra(t)
	h.DenyConsent(true)
	cb := newCallbackServer(t)
	h.CreatePublicClient(t, "e2e-denied", cb.URL+"/callback")
	conf := &oauth2.Config{
		ClientID:    "e2e-denied",
		Endpoint:    h.Endpoint(),
		RedirectURL: cb.URL + "/callback",
		Scopes:      []string{"openid", "offline_access", "write"},
	}
	state := rand.Text()
	got := authorize(t, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if got.Get("error") != "access_denied" || got.Get("code") != "" || got.Get("state") != state {
		t.Fatalf("callback query = %v, want error=access_denied, our state and no code", got)
	}
}

// checkDiscovery checks that Hydra's OpenID Connect metadata agrees with the
// harness's endpoints.
func checkDiscovery(t *testing.T, h *Hydra) {
	t.Helper()
	resp, err := http.Get(h.PublicURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	defer resp.Body.Close()
	var meta struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		RevocationEndpoint    string `json:"revocation_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"issuer", meta.Issuer, h.Issuer},
		{"authorization_endpoint", meta.AuthorizationEndpoint, h.AuthURL},
		{"token_endpoint", meta.TokenEndpoint, h.TokenURL},
		{"revocation_endpoint", meta.RevocationEndpoint, h.RevokeURL},
	} {
		if c.got != c.want {
			t.Errorf("discovery: %s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// newCallbackServer starts the client's redirect target on 127.0.0.1. It
// answers every request with 200, so that a client that follows redirects
// stops there.
func newCallbackServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "callback received")
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("callback server at %s, want a 127.0.0.1 address", srv.URL)
	}
	return srv
}

// authorize plays the browser: it follows the redirects from authURL through
// Hydra and the login/consent app, with a cookie jar, until the callback
// answers, and returns the callback's query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.HasSuffix(resp.Request.URL.Path, "/callback") {
		t.Fatalf("authorize: ended at %s with status %d, want the callback: %s", resp.Request.URL.Redacted(), resp.StatusCode, body)
	}
	return resp.Request.URL.Query()
}

// refresh spends refreshToken once at the token endpoint (RFC 6749 section 6).
func refresh(ctx context.Context, conf *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	// A token with no access token is invalid, so the source refreshes at once.
	return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func checkTokenShape(t *testing.T, step string, tok *oauth2.Token) {
	t.Helper()
	if !strings.HasPrefix(tok.AccessToken, "ory_at_") {
		t.Errorf("%s: access token %q, want prefix ory_at_", step, redact(tok.AccessToken))
	}
	if !strings.HasPrefix(tok.RefreshToken, "ory_rt_") {
		t.Errorf("%s: refresh token %q, want prefix ory_rt_", step, redact(tok.RefreshToken))
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		t.Errorf("%s: token type %q, want bearer", step, tok.TokenType)
	}
	if tok.Expiry.IsZero() {
		t.Errorf("%s: no expiry", step)
	}
}

func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

func hasScopes(scope string, want ...string) bool {
	have := strings.Fields(scope)
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// redact keeps a token's prefix for messages; test tokens are still tokens.
func redact(tok string) string {
	if len(tok) > 10 {
		return fmt.Sprintf("%s…(%d chars)", tok[:10], len(tok))
	}
	return tok
}
