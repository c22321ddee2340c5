package oauthfake

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const testRedirect = "http://127.0.0.1:8765/callback"

// newTestServer starts a Server closed at the end of the test.
func newTestServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s := NewServer(opts...)
	t.Cleanup(s.Close)
	return s
}

// ctxWithClient carries the test server's client for x/oauth2.
func ctxWithClient(t *testing.T, s *Server) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, s.Client())
}

// authorizeCode runs the browser part of the code flow with approval and
// returns the code and the PKCE verifier.
func authorizeCode(t *testing.T, s *Server, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	state := "state-" + randomString()
	authURL := cfg.AuthCodeURL(state, append(opts, oauth2.S256ChallengeOption(verifier))...)
	loc, err := s.Consent(t.Context(), s.Client(), authURL, true)
	if err != nil {
		t.Fatalf("Consent: %v", err)
	}
	q := loc.Query()
	if got := q.Get("state"); got != state {
		t.Fatalf("redirect state = %q, want %q", got, state)
	}
	if q.Get("code") == "" {
		t.Fatalf("redirect %s has no code", loc.Redacted())
	}
	return q.Get("code"), verifier
}

// exchange runs a whole approved code flow and returns the token.
func exchange(t *testing.T, s *Server, cfg *oauth2.Config) *oauth2.Token {
	t.Helper()
	code, verifier := authorizeCode(t, s, cfg)
	tok, err := cfg.Exchange(ctxWithClient(t, s), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

// postForm POSTs form to u and returns the status and the decoded JSON body
// (nil when the body is empty).
func postForm(t *testing.T, s *Server, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.Client().PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", u, err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return resp.StatusCode, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("POST %s: body %q is not JSON: %v", u, b, err)
	}
	return resp.StatusCode, m
}

// get GETs u and returns the response with its body read.
func get(t *testing.T, s *Server, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	c := *s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// errorCode is the OAuth error code of a failed x/oauth2 call, or "".
func errorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
