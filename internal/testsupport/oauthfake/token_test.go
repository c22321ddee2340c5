package oauthfake

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"

	"golang.org/x/oauth2"
)

func TestCodeExchangeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		advance    time.Duration // of the clock, between consent and exchange
		form       func(code, verifier string) url.Values
		wantStatus int
		wantError  string
	}{
		{
			name: "ok",
			form: func(code, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusOK,
		},
		{
			name: "wrong verifier",
			form: func(code, _ string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {oauth2.GenerateVerifier()}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name: "no verifier",
			form: func(code, _ string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {code}, "redirect_uri": {testRedirect}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name: "other redirect_uri",
			form: func(code, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {code}, "redirect_uri": {"http://127.0.0.1:8766/callback"}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name: "no redirect_uri",
			form: func(code, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {code}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name: "unknown client",
			form: func(code, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {"mallory"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusUnauthorized, wantError: "invalid_client",
		},
		{
			name: "other registered client",
			form: func(code, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {"second-client"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name: "unknown code",
			form: func(_, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {"nope"}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name:    "expired code",
			advance: 10*time.Minute + time.Second,
			form: func(code, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name: "repeated parameter",
			form: func(code, verifier string) url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "code": {code, code}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_request",
		},
		{
			name: "unsupported grant type",
			form: func(code, _ string) url.Values {
				return url.Values{"grant_type": {"password"}, "client_id": {DefaultClientID}, "code": {code}}
			},
			wantStatus: http.StatusBadRequest, wantError: "unsupported_grant_type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := testkit.NewClock()
			s := newTestServer(t, WithAutoApprove(), WithClock(clk), WithClientID(DefaultClientID), WithClientID("second-client"))
			code, verifier := authorizeCode(t, s, s.OAuth2Config(testRedirect))
			clk.Advance(tt.advance)
			status, body := postForm(t, s, s.TokenURL(), tt.form(code, verifier))
			if status != tt.wantStatus || (tt.wantError != "" && body["error"] != tt.wantError) {
				t.Fatalf("got %d %v, want %d %q", status, body["error"], tt.wantStatus, tt.wantError)
			}
			if tt.wantError != "" {
				if d, _ := body["error_description"].(string); d == "" {
					t.Error("error without error_description")
				}
				if got := s.Stats().AuthorizationCodes; got != 0 {
					t.Errorf("AuthorizationCodes = %d after a failed exchange, want 0", got)
				}
			}
		})
	}
}

func TestPKCEMismatchSpendsCode(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithAutoApprove())
	cfg := s.OAuth2Config(testRedirect)
	code, verifier := authorizeCode(t, s, cfg)
	ctx := ctxWithClient(t, s)
	_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	if got := errorCode(err); got != "invalid_grant" {
		t.Fatalf("wrong verifier: error %q (%v), want invalid_grant", got, err)
	}
	// The right verifier comes too late: a code gets one attempt.
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if got := errorCode(err); got != "invalid_grant" {
		t.Fatalf("second attempt: error %q (%v), want invalid_grant", got, err)
	}
	if got := s.Stats(); got.AuthorizationCodes != 0 || got.RevokedGrants != 0 {
		t.Errorf("Stats = %+v, want no codes redeemed, no grants revoked", got)
	}
}

func TestCodeReplayRevokesGrant(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithAutoApprove())
	cfg := s.OAuth2Config(testRedirect)
	code, verifier := authorizeCode(t, s, cfg)
	ctx := ctxWithClient(t, s)
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Active(tok.AccessToken) || !s.Active(tok.RefreshToken) {
		t.Fatal("fresh tokens are not active")
	}
	_, err = cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if got := errorCode(err); got != "invalid_grant" {
		t.Fatalf("replayed code: error %q (%v), want invalid_grant", got, err)
	}
	if s.Active(tok.AccessToken) || s.Active(tok.RefreshToken) {
		t.Error("tokens issued from a replayed code are still active")
	}
	want := Stats{AuthorizationCodes: 1, RevokedGrants: 1, TokenRequests: 2}
	if got := s.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// expired returns a copy of tok that x/oauth2 will refresh.
func expired(tok *oauth2.Token) *oauth2.Token {
	c := *tok
	c.Expiry = time.Now().Add(-time.Hour)
	return &c
}

func TestRefreshRotationAndReplay(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithAutoApprove(), WithGrantConfig(map[string]any{"workspace": "hermes"}))
	cfg := s.OAuth2Config(testRedirect, "write")
	ctx := ctxWithClient(t, s)
	first := exchange(t, s, cfg)

	second, err := cfg.TokenSource(ctx, expired(first)).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh did not rotate both tokens")
	}
	if second.Extra("config") != nil {
		t.Error("refresh response carries config; only code and device grants do")
	}
	if second.Extra("scope") != "write" {
		t.Errorf("refresh scope = %v, want write", second.Extra("scope"))
	}
	if s.Active(first.RefreshToken) {
		t.Error("superseded refresh token is still active")
	}
	if !s.Active(first.AccessToken) {
		t.Error("the old access token stopped working before its expiry")
	}
	if !s.Active(second.AccessToken) || !s.Active(second.RefreshToken) {
		t.Error("rotated tokens are not active")
	}
	third, err := cfg.TokenSource(ctx, expired(second)).Token()
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}

	// Replaying the first refresh token revokes the whole grant.
	_, err = cfg.TokenSource(ctx, expired(first)).Token()
	if got := errorCode(err); got != "invalid_grant" {
		t.Fatalf("replay: error %q (%v), want invalid_grant", got, err)
	}
	for name, tok := range map[string]string{
		"first access": first.AccessToken, "second access": second.AccessToken,
		"third access": third.AccessToken, "third refresh": third.RefreshToken,
	} {
		if s.Active(tok) {
			t.Errorf("%s token is active after a replay", name)
		}
	}
	// And the grant stays dead: its newest refresh token is refused.
	_, err = cfg.TokenSource(ctx, expired(third)).Token()
	if got := errorCode(err); got != "invalid_grant" {
		t.Fatalf("refresh after revocation: error %q (%v), want invalid_grant", got, err)
	}
	want := Stats{AuthorizationCodes: 1, Refreshes: 2, Replays: 1, RevokedGrants: 1, TokenRequests: 5}
	if got := s.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestRefreshErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		setup      func(s *Server, clk *testkit.Clock, rt string)
		form       func(rt string) url.Values
		wantStatus int
		wantError  string
	}{
		{
			name:       "ok",
			form:       func(rt string) url.Values { return refreshForm(DefaultClientID, rt) },
			wantStatus: http.StatusOK,
		},
		{
			name:       "narrower scope",
			form:       func(rt string) url.Values { f := refreshForm(DefaultClientID, rt); f.Set("scope", "read"); return f },
			wantStatus: http.StatusOK,
		},
		{
			name: "wider scope",
			form: func(rt string) url.Values {
				f := refreshForm(DefaultClientID, rt)
				f.Set("scope", "read admin")
				return f
			},
			wantStatus: http.StatusBadRequest, wantError: "invalid_scope",
		},
		{
			name:       "unknown token",
			form:       func(string) url.Values { return refreshForm(DefaultClientID, "test-rt-unknown") },
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name:       "access token as refresh token",
			setup:      nil,
			form:       nil, // filled in below: uses the access token
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name:       "other client",
			form:       func(rt string) url.Values { return refreshForm("second-client", rt) },
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name:       "unregistered client",
			form:       func(rt string) url.Values { return refreshForm("mallory", rt) },
			wantStatus: http.StatusUnauthorized, wantError: "invalid_client",
		},
		{
			name:       "no client",
			form:       func(rt string) url.Values { f := refreshForm("", rt); f.Del("client_id"); return f },
			wantStatus: http.StatusUnauthorized, wantError: "invalid_client",
		},
		{
			name:       "no token",
			form:       func(string) url.Values { return refreshForm(DefaultClientID, "") },
			wantStatus: http.StatusBadRequest, wantError: "invalid_request",
		},
		{
			name:       "revoked grant",
			setup:      func(s *Server, _ *testkit.Clock, rt string) { s.RevokeGrant(rt) },
			form:       func(rt string) url.Values { return refreshForm(DefaultClientID, rt) },
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
		{
			name:       "expired refresh token",
			setup:      func(_ *Server, clk *testkit.Clock, _ string) { clk.Advance(31 * 24 * time.Hour) },
			form:       func(rt string) url.Values { return refreshForm(DefaultClientID, rt) },
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := testkit.NewClock()
			s := newTestServer(t, WithClock(clk), WithRefreshTokenTTL(30*24*time.Hour),
				WithClientID(DefaultClientID), WithClientID("second-client"))
			tok := s.IssueGrant("write read")
			if tt.setup != nil {
				tt.setup(s, clk, tok.RefreshToken)
			}
			form := refreshForm(DefaultClientID, tok.AccessToken)
			if tt.form != nil {
				form = tt.form(tok.RefreshToken)
			}
			status, body := postForm(t, s, s.TokenURL(), form)
			if status != tt.wantStatus || (tt.wantError != "" && body["error"] != tt.wantError) {
				t.Fatalf("got %d %v, want %d %q", status, body["error"], tt.wantStatus, tt.wantError)
			}
			wantRefreshes := 0
			if tt.wantError == "" {
				wantRefreshes = 1
			}
			if got := s.Stats(); got.Refreshes != wantRefreshes || got.Replays != 0 {
				t.Errorf("Stats = %+v, want %d refreshes and no replays", got, wantRefreshes)
			}
		})
	}
}

func refreshForm(clientID, rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}
}

// Concurrent refreshes with one refresh token race: one wins, the others
// are replays that revoke the grant. This is why clients must serialize.
func TestConcurrentRefreshIsAReplay(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	tok := s.IssueGrant("")
	const n = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[string]int{}
	)
	for range n {
		wg.Go(func() {
			resp, err := s.Client().PostForm(s.TokenURL(), refreshForm(DefaultClientID, tok.RefreshToken))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[resp.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes["200 OK"] != 1 || codes["400 Bad Request"] != n-1 {
		t.Errorf("statuses = %v, want one 200 and %d 400s", codes, n-1)
	}
	if got := s.Stats(); got.Refreshes != 1 || got.Replays != n-1 || got.RevokedGrants != 1 {
		t.Errorf("Stats = %+v, want 1 refresh, %d replays, 1 revoked grant", got, n-1)
	}
}

func TestAccessTokenLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		ttl         time.Duration
		wantExpires int64
	}{
		{"default", 0, 3600},
		{"minutes", 5 * time.Minute, 300},
		{"fraction rounds down", 90500 * time.Millisecond, 90},
		{"under a second", 300 * time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := testkit.NewClock()
			s := newTestServer(t, WithClock(clk), WithAccessTokenTTL(tt.ttl), WithAutoApprove())
			tok := exchange(t, s, s.OAuth2Config(testRedirect))
			if tok.ExpiresIn != tt.wantExpires {
				t.Errorf("expires_in = %d, want %d", tok.ExpiresIn, tt.wantExpires)
			}
			ttl := tt.ttl
			if ttl == 0 {
				ttl = DefaultAccessTokenTTL
			}
			clk.Advance(ttl - time.Millisecond)
			if !s.Active(tok.AccessToken) {
				t.Error("access token inactive before its expiry")
			}
			clk.Advance(time.Millisecond)
			if s.Active(tok.AccessToken) {
				t.Error("access token active at its expiry")
			}
			if !s.Active(tok.RefreshToken) {
				t.Error("refresh token expired with its access token")
			}
		})
	}
}

func TestTokenPrefixes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithAccessTokenPrefix("at_"), WithRefreshTokenPrefix("rt_"))
	tok := s.IssueGrant("")
	if !strings.HasPrefix(tok.AccessToken, "at_") || !strings.HasPrefix(tok.RefreshToken, "rt_") {
		t.Errorf("prefixes: access %.3s, refresh %.3s; want at_ and rt_", tok.AccessToken, tok.RefreshToken)
	}
	if tok.Extra("scope") != DefaultScope {
		t.Errorf("scope = %v, want the default %q", tok.Extra("scope"), DefaultScope)
	}
}

func TestFailNextTokenRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		code      string
		wantError string
	}{
		{"json error", http.StatusServiceUnavailable, "temporarily_unavailable", "temporarily_unavailable"},
		{"plain text", http.StatusBadGateway, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			cfg := s.OAuth2Config(testRedirect)
			ctx := ctxWithClient(t, s)
			tok := s.IssueGrant("")
			s.FailNextTokenRequests(2, tt.status, tt.code)
			for i := range 2 {
				_, err := cfg.TokenSource(ctx, expired(tok)).Token()
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.Response.StatusCode != tt.status || re.ErrorCode != tt.wantError {
					t.Fatalf("request %d: err = %v, want status %d with error %q", i+1, err, tt.status, tt.wantError)
				}
			}
			if _, err := cfg.TokenSource(ctx, expired(tok)).Token(); err != nil {
				t.Fatalf("third request: %v", err)
			}
			if got := s.Stats(); got.TokenRequests != 3 || got.Refreshes != 1 || got.Replays != 0 {
				t.Errorf("Stats = %+v, want 3 token requests, 1 refresh, no replay", got)
			}
		})
	}
}

func TestTokenHook(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	cfg := s.OAuth2Config(testRedirect)
	ctx := ctxWithClient(t, s)
	tok := s.IssueGrant("")

	// A hook that answers.
	s.SetTokenHook(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return true
	})
	_, err := cfg.TokenSource(ctx, expired(tok)).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("answering hook: err = %v, want a 503 RetrieveError", err)
	}

	// A hook that drops the connection.
	s.SetTokenHook(func(http.ResponseWriter, *http.Request) bool { panic(http.ErrAbortHandler) })
	_, err = cfg.TokenSource(ctx, expired(tok)).Token()
	if err == nil || errors.As(err, &re) {
		t.Fatalf("dropping hook: err = %v, want a transport error", err)
	}

	// A hook that blocks until the client gives up.
	s.SetTokenHook(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	short, cancel := contextWithTimeout(ctx, 50*time.Millisecond)
	_, err = cfg.TokenSource(short, expired(tok)).Token()
	cancel()
	if err == nil {
		t.Fatal("blocking hook: no error")
	}

	// A hook that only watches, reading the body.
	var seen int
	s.SetTokenHook(func(w http.ResponseWriter, r *http.Request) bool {
		seen++ // requests are sequential here
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" {
			t.Errorf("hook read form %v (%v), want a refresh_token grant", r.PostForm, err)
		}
		return false
	})
	if _, err := cfg.TokenSource(ctx, expired(tok)).Token(); err != nil {
		t.Fatalf("watching hook: %v", err)
	}
	if seen != 1 {
		t.Errorf("watching hook saw %d requests, want 1", seen)
	}

	// nil removes the hook.
	s.SetTokenHook(nil)
	if got := s.Stats(); got.TokenRequests != 4 || got.Refreshes != 1 {
		t.Errorf("Stats = %+v, want 4 token requests and 1 refresh", got)
	}
}

func TestTokenEndpointRequestShape(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	tests := []struct {
		name       string
		do         func() (*http.Response, error)
		wantStatus int
	}{
		{"GET", func() (*http.Response, error) { return s.Client().Get(s.TokenURL()) }, http.StatusMethodNotAllowed},
		{"JSON body", func() (*http.Response, error) {
			return s.Client().Post(s.TokenURL(), "application/json", strings.NewReader(`{"grant_type":"refresh_token"}`))
		}, http.StatusBadRequest},
		{"no grant_type", func() (*http.Response, error) {
			return s.Client().PostForm(s.TokenURL(), url.Values{"client_id": {DefaultClientID}})
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.do()
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
		})
	}
}

// The header-first probing of oauth2.AuthStyleUnknown still works: the
// Basic attempt is refused with invalid_client before the code is spent.
func TestAuthStyleProbe(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithAutoApprove())
	cfg := s.OAuth2Config(testRedirect)
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect
	code, verifier := authorizeCode(t, s, cfg)
	if _, err := cfg.Exchange(ctxWithClient(t, s), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("Exchange with auth style probing: %v", err)
	}
	if got := s.Stats(); got.TokenRequests != 2 || got.AuthorizationCodes != 1 {
		t.Errorf("Stats = %+v, want 2 token requests and 1 code", got)
	}
}

func TestCloseEndsBlockingHook(t *testing.T) {
	t.Parallel()
	s := NewServer()
	entered := make(chan struct{})
	s.SetTokenHook(func(w http.ResponseWriter, r *http.Request) bool {
		close(entered)
		<-r.Context().Done()
		return true
	})
	errc := make(chan error, 1)
	go func() {
		resp, err := s.Client().PostForm(s.TokenURL(), refreshForm(DefaultClientID, "x"))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-entered
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a hook was blocked on the request context")
	}
	<-errc // the request ended one way or another
}
