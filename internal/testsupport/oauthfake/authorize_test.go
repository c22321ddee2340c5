package oauthfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"

	"golang.org/x/oauth2"
)

func TestCodeFlowConsent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		approve bool
	}{
		{"approve", true},
		{"deny", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, WithGrantConfig(map[string]any{"peerName": "alice", "workspace": "hermes"}))
			cfg := s.OAuth2Config(testRedirect, "write")
			verifier := oauth2.GenerateVerifier()
			state := "st-" + randomString()
			authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier),
				oauth2.SetAuthURLParam("source", "desktop"),
				oauth2.SetAuthURLParam("config_path", "/home/alice/.hermes/honcho.json"))

			loc, err := s.Consent(t.Context(), s.Client(), authURL, tt.approve)
			if err != nil {
				t.Fatalf("Consent: %v", err)
			}
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
				t.Errorf("redirect to %q, want %q", got, testRedirect)
			}
			q := loc.Query()
			if q.Get("state") != state {
				t.Errorf("state = %q, want %q", q.Get("state"), state)
			}
			lq := s.LastAuthorizeQuery()
			if lq.Get("source") != "desktop" || lq.Get("config_path") != "/home/alice/.hermes/honcho.json" {
				t.Errorf("LastAuthorizeQuery = %v, want source and config_path", lq)
			}

			if !tt.approve {
				if q.Get("error") != "access_denied" || q.Has("code") {
					t.Fatalf("deny redirect query = %v, want error=access_denied and no code", q)
				}
				return
			}
			code := q.Get("code")
			if code == "" {
				t.Fatalf("approve redirect query = %v, want a code", q)
			}
			tok, err := cfg.Exchange(ctxWithClient(t, s), code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if !strings.HasPrefix(tok.AccessToken, DefaultAccessTokenPrefix) || !strings.HasPrefix(tok.RefreshToken, DefaultRefreshTokenPrefix) {
				t.Errorf("token prefixes wrong: access %.7s…, refresh %.7s…", tok.AccessToken, tok.RefreshToken)
			}
			if tok.TokenType != "Bearer" {
				t.Errorf("token_type = %q, want Bearer", tok.TokenType)
			}
			if tok.ExpiresIn != 3600 {
				t.Errorf("expires_in = %d, want 3600", tok.ExpiresIn)
			}
			if got := tok.Extra("scope"); got != "write" {
				t.Errorf("scope = %v, want write", got)
			}
			cfgField, _ := tok.Extra("config").(map[string]any)
			if cfgField["peerName"] != "alice" || cfgField["workspace"] != "hermes" {
				t.Errorf("config = %v, want peerName alice and workspace hermes", tok.Extra("config"))
			}
			if got := s.Stats(); got.AuthorizationCodes != 1 || got.TokenRequests != 1 {
				t.Errorf("Stats = %+v, want 1 authorization code and 1 token request", got)
			}

			resp, body := get(t, s, s.WhoAmIURL(), http.Header{"Authorization": {"Bearer " + tok.AccessToken}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("whoami status = %d, want 200", resp.StatusCode)
			}
			var who map[string]string
			if err := json.Unmarshal([]byte(body), &who); err != nil {
				t.Fatal(err)
			}
			if who["client_id"] != DefaultClientID || who["scope"] != "write" {
				t.Errorf("whoami = %v", who)
			}
		})
	}
}

func TestConsentPage(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	cfg := s.OAuth2Config("http://localhost:9/cb", "write", "read")
	authURL := cfg.AuthCodeURL("state-12345", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("config_path", `/home/<script>alert("x")</script>/honcho.json`))
	resp, page := get(t, s, authURL, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, want := range []string{
		`<html lang="en">`,
		DefaultClientID,
		"write read",
		"Settings will be saved to <code>/home/&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;/honcho.json</code>",
		`<form method="post" action="/authorize/decision">`,
		`<input type="hidden" name="request" value="`,
		`<button type="submit" name="decision" value="approve">Approve</button>`,
		`<button type="submit" name="decision" value="deny">Deny</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("consent page echoes an unescaped <script>")
	}

	// Without config_path there is no "Settings will be saved" line.
	_, page = get(t, s, cfg.AuthCodeURL("state-12345", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	if strings.Contains(page, "Settings will be saved") {
		t.Error("consent page mentions settings without config_path")
	}
}

func TestConsentDecisionSingleUse(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	cfg := s.OAuth2Config(testRedirect)
	_, page := get(t, s, cfg.AuthCodeURL("state-12345", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	action, fields, err := consentForm(page, true)
	if err != nil {
		t.Fatal(err)
	}
	c := *s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for i, want := range []int{http.StatusSeeOther, http.StatusBadRequest} {
		resp, err := c.PostForm(s.URL+action, fields)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("decision %d: status = %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

func TestConsentRequestExpires(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock()
	s := newTestServer(t, WithClock(clk))
	_, page := get(t, s, s.OAuth2Config(testRedirect).AuthCodeURL("state-12345", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
	action, fields, err := consentForm(page, true)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Minute)
	resp, body := postFormRaw(t, s, s.URL+action, fields)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired") {
		t.Errorf("late decision: status %d, body %q; want 400 mentioning expiry", resp.StatusCode, pageText([]byte(body)))
	}
}

func postFormRaw(t *testing.T, s *Server, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	c := *s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestAutoModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opt       Option
		approve   bool // what Consent is asked; auto modes ignore it
		wantCode  bool
		wantError string
	}{
		{"auto approve", WithAutoApprove(), false, true, ""},
		{"auto deny", WithAutoDeny(), true, false, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, tt.opt)
			authURL := s.OAuth2Config(testRedirect).AuthCodeURL("state-12345", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
			resp, _ := get(t, s, authURL, nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("GET /authorize status = %d, want 302", resp.StatusCode)
			}
			loc, err := s.Consent(t.Context(), nil, authURL, tt.approve)
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			if got := q.Get("code") != ""; got != tt.wantCode {
				t.Errorf("code present = %v, want %v", got, tt.wantCode)
			}
			if q.Get("error") != tt.wantError || q.Get("state") != "state-12345" {
				t.Errorf("query = %v, want error %q and state", q, tt.wantError)
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithAutoApprove())
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	valid := url.Values{
		"response_type":         {"code"},
		"client_id":             {DefaultClientID},
		"redirect_uri":          {testRedirect},
		"state":                 {"state-12345"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"scope":                 {"write"},
	}
	tests := []struct {
		name      string
		change    func(url.Values)
		wantPage  bool   // a 400 page, no redirect
		wantError string // the error in the redirect
	}{
		{"valid", func(url.Values) {}, false, ""},
		{"unknown client", func(v url.Values) { v.Set("client_id", "someone-else") }, true, ""},
		{"no client", func(v url.Values) { v.Del("client_id") }, true, ""},
		{"https redirect", func(v url.Values) { v.Set("redirect_uri", "https://127.0.0.1:8765/callback") }, true, ""},
		{"foreign redirect", func(v url.Values) { v.Set("redirect_uri", "http://evil.example/callback") }, true, ""},
		{"lookalike redirect", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1.evil.example/cb") }, true, ""},
		{"userinfo redirect", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:80@evil.example/cb") }, true, ""},
		{"fragment redirect", func(v url.Values) { v.Set("redirect_uri", testRedirect+"#x") }, true, ""},
		{"no redirect", func(v url.Values) { v.Del("redirect_uri") }, true, ""},
		{"repeated redirect", func(v url.Values) { v.Add("redirect_uri", "http://127.0.0.1:1/x") }, true, ""},
		{"token response type", func(v url.Values) { v.Set("response_type", "token") }, false, "unsupported_response_type"},
		{"no state", func(v url.Values) { v.Del("state") }, false, "invalid_request"},
		{"short state", func(v url.Values) { v.Set("state", "1234567") }, false, "invalid_request"},
		{"no challenge", func(v url.Values) { v.Del("code_challenge") }, false, "invalid_request"},
		{"plain method", func(v url.Values) { v.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"no method", func(v url.Values) { v.Del("code_challenge_method") }, false, "invalid_request"},
		{"malformed challenge", func(v url.Values) { v.Set("code_challenge", "short") }, false, "invalid_request"},
		{"repeated scope", func(v url.Values) { v.Add("scope", "read") }, false, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := cloneValues(valid)
			tt.change(q)
			resp, body := get(t, s, s.AuthorizeURL()+"?"+q.Encode(), nil)
			if tt.wantPage {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("status %d, Location %q; want a 400 page and no redirect", resp.StatusCode, resp.Header.Get("Location"))
				}
				if !strings.Contains(body, "<h1>") {
					t.Errorf("400 answer is not an HTML page: %q", body)
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status = %d, want 302", resp.StatusCode)
			}
			loc, err := resp.Location()
			if err != nil {
				t.Fatal(err)
			}
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
				t.Errorf("redirect to %q, want %q", got, testRedirect)
			}
			lq := loc.Query()
			if lq.Get("error") != tt.wantError {
				t.Errorf("error = %q, want %q", lq.Get("error"), tt.wantError)
			}
			if st := q.Get("state"); lq.Get("state") != st {
				t.Errorf("state = %q, want %q echoed", lq.Get("state"), st)
			}
			if tt.wantError == "" && lq.Get("code") == "" {
				t.Error("no code in a valid request's redirect")
			}
		})
	}
}

func TestValidRedirectURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri  string
		want bool
	}{
		{"http://127.0.0.1:8765/callback", true},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:49152/", true},
		{"http://[::1]:8765/callback", true},
		{"http://[::1]/x/y?keep=1", true},
		{"http://localhost:3000/api/memory/profiles/default/providers/honcho/callback", true},
		{"http://127.0.0.1", true},
		{"https://127.0.0.1:8765/callback", false},
		{"http://127.0.0.2:8765/callback", false},
		{"http://[127.0.0.1]:8765/callback", false},
		{"http://localhost.:8765/callback", false},
		{"http://LOCALHOST:8765/callback", false},
		{"http://example.com/callback", false},
		{"http://user@127.0.0.1/cb", false},
		{"http://127.0.0.1:8765/cb#frag", false},
		{"http://127.0.0.1:0/cb", false},
		{"http://127.0.0.1:99999/cb", false},
		{"http://127.0.0.1:/cb", false},
		{"http:127.0.0.1/cb", false},
		{"/callback", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := validRedirectURI(tt.uri); got != tt.want {
			t.Errorf("validRedirectURI(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
}

func TestConsentErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	bad := s.AuthorizeURL() + "?" + url.Values{"client_id": {"nobody"}}.Encode()
	if _, err := s.Consent(t.Context(), s.Client(), bad, true); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("Consent on an unknown client: err = %v, want an error naming the 400", err)
	}
	if _, _, err := consentForm("<html><p>nothing</p></html>", true); err == nil {
		t.Error("consentForm found a form on a page without one")
	}
}

// With WithUserHome the consent page shows where the file really is.
func TestConsentPageUserHome(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithUserHome("/tmp/memconnect-dev-1"))
	cfg := s.OAuth2Config("http://localhost:9/cb")
	for sent, shown := range map[string]string{
		"~/.hermes/honcho.json": "/tmp/memconnect-dev-1/.hermes/honcho.json",
		"~":                     "/tmp/memconnect-dev-1",
		"honcho.json":           "honcho.json",
	} {
		_, page := get(t, s, cfg.AuthCodeURL("state-12345", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("config_path", sent)), nil)
		if want := "Settings will be saved to <code>" + shown + "</code>"; !strings.Contains(page, want) {
			t.Errorf("config_path %q: the page lacks %q", sent, want)
		}
	}
}
