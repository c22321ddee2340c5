package filestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/outbound"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
)

// thief is a server of another origin that records every body it receives.
type thief struct {
	*httptest.Server
	got atomic.Int64
}

func newThief(t *testing.T) *thief {
	th := &thief{}
	th.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 || r.Method != http.MethodGet {
			th.got.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant")
	}))
	t.Cleanup(th.Close)
	return th
}

// TestNoSecretFollowsARedirect: a registration, revocation or token
// endpoint that redirects to another origin gets an error naming it, and
// the other origin receives nothing; a host's client is not changed.
func TestNoSecretFollowsARedirect(t *testing.T) {
	t.Parallel()
	th := newThief(t)
	srv := testkit.Redirecting(t, th.URL)
	host := &http.Client{} // a host's client: follows redirects by default
	ctx := context.Background()

	checkRedirect := func(t *testing.T, err error, step string) {
		t.Helper()
		var ue *authserver.UpstreamError
		var re *outbound.RedirectError
		if !errors.As(err, &ue) || ue.Step != step || !errors.As(err, &re) {
			t.Fatalf("err = %v; want an *authserver.UpstreamError of step %q wrapping a redirect", err, step)
		}
		if !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "never follows a redirect") {
			t.Errorf("err = %v; want it to name %s and the rule", err, srv.URL)
		}
	}

	t.Run("registration", func(t *testing.T) {
		_, err := authserver.Register(ctx, host, srv.URL+"/register", authserver.ClientMetadata{RedirectURIs: []string{"http://127.0.0.1:8765/callback"}})
		checkRedirect(t, err, authserver.StepRegistration)
	})
	t.Run("revocation", func(t *testing.T) {
		err := authserver.Revoke(ctx, host, srv.URL+"/revoke", "client", "hch-rt-secret", "refresh_token")
		checkRedirect(t, err, authserver.StepRevocation)
		if strings.Contains(err.Error(), "hch-rt-secret") {
			t.Errorf("err = %v holds the token", err)
		}
	})
	t.Run("refresh", func(t *testing.T) {
		clock := testkit.NewClock()
		path := filepath.Join(t.TempDir(), "honcho.json")
		testkit.WriteFile(t, path, configWithGrant(srv.URL+"/token", "hch-at-old", "hch-rt-old", clock.Now().Add(time.Minute)))
		log := &testkit.SyncBuffer{}
		s := fastStore(path, clock, log, oauth.WithHTTPClient(host))
		tok, err := s.TokenSource("hermes").Token()
		if err != nil || tok.AccessToken != "hch-at-old" {
			t.Fatalf("Token = %v, %v; want the current token (fail open)", tok, err)
		}
		if s.ReauthRequired("hermes") {
			t.Errorf("a redirect was taken for a verdict on the grant")
		}
		if c, _ := s.Credentials("hermes"); c.Rejected != "" || c.Grant == nil || c.Grant.RefreshToken != "hch-rt-old" {
			t.Errorf("stored credentials = %+v; want the grant unchanged and not rejected", c)
		}
		if !strings.Contains(log.String(), "never follows a redirect") || strings.Contains(log.String(), "hch-rt-old") {
			t.Errorf("log = %s; want the redirect named, no token", log)
		}
		_, err = s.TokenSource("hermes").ForceRefresh(ctx, "hch-at-old")
		if err == nil {
			t.Errorf("ForceRefresh after a redirect succeeded")
		}
	})
	if n := th.got.Load(); n != 0 {
		t.Errorf("the other origin received %d requests with a body", n)
	}
	if host.CheckRedirect != nil {
		t.Errorf("the host's client was changed")
	}
}

// TestWiderScopeWarned: a refresh answer with a wider scope than the
// grant's is stored as the server answered, with a warning naming the
// added scopes.
func TestWiderScopeWarned(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"hch-at-new","refresh_token":"hch-rt-new","expires_in":3600,"token_type":"Bearer","scope":"write admin write"}`)
	})
	path := expiringGrant(t, ep.URL, clock)
	log := &testkit.SyncBuffer{}
	s := fastStore(path, clock, log)
	if _, err := s.TokenSource("hermes").Token(); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Credentials("hermes"); c.Grant == nil || c.Grant.Scope != "write admin write" {
		t.Errorf("stored grant %+v; want the scope the server answered", c.Grant)
	}
	if !strings.Contains(log.String(), `"added_scopes":["admin"]`) {
		t.Errorf("log = %s; want a warning naming the added scope", log)
	}
}

// TestShortLivedTokensCached: with access tokens that live 60 s, six
// callers over 100 s of their clock cause a refresh every half lifetime,
// not one on every call (a 120 s skew would make every token due at once).
func TestShortLivedTokensCached(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	ep, path := shortLivedGrant(t, clock)
	s := fastStore(path, clock, nil)
	for range 100 {
		for range 6 {
			tok, err := s.TokenSource("hermes").Token()
			if err != nil || !clock.Now().Before(tok.Expiry) {
				t.Fatalf("Token = %v, %v; want a valid token", tok, err)
			}
		}
		clock.Advance(time.Second)
	}
	// The first token's lifetime is unknown: refreshed at once. Then
	// every 30 s: 4 refreshes in 100 s.
	if n := ep.calls.Load(); n < 3 || n > 5 {
		t.Errorf("%d refreshes in 100 s of 60 s tokens; want about 4", n)
	}
}

// shortLivedGrant is a config file whose grant's token endpoint issues
// tokens that live 60 s, the first one expiring in 60 s of clock.
func shortLivedGrant(t *testing.T, clock *testkit.Clock) (*fakeTokenEndpoint, string) {
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"hch-at-%d","refresh_token":"hch-rt-%d","expires_in":60,"token_type":"Bearer"}`, n, n)
	})
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now().Add(60*time.Second)))
	return ep, path
}

// TestShortLivedTokensAcrossProcesses: six command-line loops, each call a
// new process (a new Grants over the same file, knowing nothing), asking
// for a token of 60 s every 0.5 s for 20 s: each sizes the skew from the
// issue time the grant records (obtainedAt), so the tokens are refreshed
// every half lifetime, not on every call (a 120 s skew would make every
// 60 s token due at once). At most 10 refreshes; no process ever got an
// expired token.
func TestShortLivedTokensAcrossProcesses(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	ep, path := shortLivedGrant(t, clock)
	calls := 0
	for range 40 {
		for range 6 {
			tok, err := fastStore(path, clock, nil).TokenSource("hermes").Token() // a new process
			if err != nil || !clock.Now().Before(tok.Expiry) {
				t.Fatalf("Token = %v, %v; want a valid token", tok, err)
			}
			calls++
		}
		clock.Advance(500 * time.Millisecond)
	}
	if n := ep.calls.Load(); n > 10 {
		t.Errorf("%d refreshes in %d calls over 20 s of 60 s tokens; want at most 10", n, calls)
	}
}

// TestGrantWithoutRefreshToken: a token response without a refresh token
// (RFC 6749 section 5.1) is stored as a grant that ends with its access
// token: served until it expires, then ErrReauthRequired, with no request
// to the token endpoint at any point.
func TestGrantWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	ep := newFakeTokenEndpoint(t, rotating)
	path := filepath.Join(t.TempDir(), "honcho.json")
	s := fastStore(path, clock, nil)
	tok := &oauth2.Token{AccessToken: "hch-at-short", ExpiresIn: 600}
	if _, err := s.Install(context.Background(), "hermes", tok, oauth.Grant{ClientID: "c", TokenEndpoint: ep.URL, TokenType: "Bearer"}); err != nil {
		t.Fatalf("Install: %v", err)
	}
	if data, err := os.ReadFile(path); err != nil || strings.Contains(string(data), "refreshToken") {
		t.Errorf("the file names a refresh token (%v):\n%s", err, data)
	}
	ts := s.TokenSource("hermes")
	clock.Advance(590 * time.Second) // inside any skew: still served
	if got, err := ts.Token(); err != nil || got.AccessToken != "hch-at-short" {
		t.Fatalf("Token before expiry = %v, %v; want the token", got, err)
	}
	clock.Advance(20 * time.Second)
	_, err := ts.Token()
	var re *oauth.ReauthError
	if !errors.Is(err, oauth.ErrReauthRequired) || !errors.As(err, &re) || re.Code != oauth.CodeExpired || !strings.Contains(err.Error(), "no refresh token") {
		t.Fatalf("Token after expiry: %v; want ErrReauthRequired saying the grant has no refresh token", err)
	}
	if _, err := ts.ForceRefresh(context.Background(), "hch-at-short"); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Errorf("ForceRefresh: %v; want ErrReauthRequired", err)
	}
	if n := ep.calls.Load(); n != 0 {
		t.Errorf("the token endpoint was called %d times", n)
	}
}
