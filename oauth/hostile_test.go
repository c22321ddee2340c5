package oauth

import (
	"context"
	"encoding/json"
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

// redirecting answers every request with 307 to target (the same path).
func redirecting(t *testing.T, target string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNoSecretFollowsARedirect: a registration, revocation or token
// endpoint that redirects to another origin gets an error naming it, and
// the other origin receives nothing; a host's client is not changed.
func TestNoSecretFollowsARedirect(t *testing.T) {
	th := newThief(t)
	srv := redirecting(t, th.URL)
	host := &http.Client{} // a host's client: follows redirects by default
	ctx := context.Background()

	checkRedirect := func(t *testing.T, err error, step string) {
		t.Helper()
		var ue *UpstreamError
		var re *outbound.RedirectError
		if !errors.As(err, &ue) || ue.Step != step || !errors.As(err, &re) {
			t.Fatalf("err = %v; want an *UpstreamError of step %q wrapping a redirect", err, step)
		}
		if !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "never follows a redirect") {
			t.Errorf("err = %v; want it to name %s and the rule", err, srv.URL)
		}
	}

	t.Run("registration", func(t *testing.T) {
		_, err := Register(ctx, host, srv.URL+"/register", ClientMetadata{RedirectURIs: []string{"http://127.0.0.1:8765/callback"}})
		checkRedirect(t, err, StepRegistration)
	})
	t.Run("revocation", func(t *testing.T) {
		err := Revoke(ctx, host, srv.URL+"/revoke", "client", "hch-rt-secret", "refresh_token")
		checkRedirect(t, err, StepRevocation)
		if strings.Contains(err.Error(), "hch-rt-secret") {
			t.Errorf("err = %v holds the token", err)
		}
	})
	t.Run("refresh", func(t *testing.T) {
		clock := testkit.NewClock()
		path := filepath.Join(t.TempDir(), "honcho.json")
		testkit.WriteFile(t, path, configWithGrant(srv.URL+"/token", "hch-at-old", "hch-rt-old", clock.Now().Add(time.Minute)))
		log := &testkit.SyncBuffer{}
		s := fastStore(path, clock, log, WithHTTPClient(host))
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

// TestMetadataRedirects: a metadata GET follows a redirect to the same
// origin, and refuses one to another origin.
func TestMetadataRedirects(t *testing.T) {
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/moved/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%s/a","token_endpoint":"%s/t"}`, issuer, issuer, issuer)
	})
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved/.well-known/oauth-authorization-server", http.StatusFound)
	})
	same := httptest.NewServer(mux)
	defer same.Close()
	issuer = same.URL
	if md, err := Discover(context.Background(), nil, same.URL); err != nil || md.TokenEndpoint != same.URL+"/t" {
		t.Fatalf("same-origin redirect: Discover = %+v, %v", md, err)
	}

	other := redirecting(t, same.URL+"/moved")
	_, err := Discover(context.Background(), nil, other.URL)
	var re *outbound.RedirectError
	if !errors.As(err, &re) || re.Secret {
		t.Fatalf("cross-origin redirect: err = %v; want a metadata *RedirectError", err)
	}
}

// TestStepDeadlines: a server that never answers, or trickles its answer
// a byte at a time, fails the step at its deadline as an *UpstreamError
// naming the server and the step.
func TestStepDeadlines(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that a client going away is noticed
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for _, b := range []byte(`{"issuer":"x","padding":"` + strings.Repeat("x", 1000) + `"}`) {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(20 * time.Millisecond):
			case <-release:
				return
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(trickle.Close)
	t.Cleanup(func() { close(release) }) // before the servers close

	tests := []struct {
		name string
		step string
		call func(ctx context.Context) error
	}{
		{"server metadata never answers", StepServerMetadata, func(ctx context.Context) error {
			_, err := Discover(ctx, nil, hang.URL)
			return err
		}},
		{"server metadata trickles", StepServerMetadata, func(ctx context.Context) error {
			_, err := Discover(ctx, nil, trickle.URL)
			return err
		}},
		{"probe never answers", StepProbe, func(ctx context.Context) error {
			_, _, err := DiscoverResource(ctx, nil, hang.URL+"/mcp")
			return err
		}},
		{"registration never answers", StepRegistration, func(ctx context.Context) error {
			_, err := Register(ctx, nil, hang.URL+"/register", ClientMetadata{RedirectURIs: []string{"http://127.0.0.1/cb"}})
			return err
		}},
		{"revocation never answers", StepRevocation, func(ctx context.Context) error {
			return Revoke(ctx, nil, hang.URL+"/revoke", "c", "tok", "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each waits for its deadline
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tt.call(ctx) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the step did not end at its deadline")
			}
			var ue *UpstreamError
			if !errors.As(err, &ue) || ue.Step != tt.step || !ue.Timeout() {
				t.Fatalf("err = %v; want a timed-out *UpstreamError of step %q", err, tt.step)
			}
			if !strings.Contains(err.Error(), "127.0.0.1") || !strings.Contains(ue.Reason(), "did not answer in time") {
				t.Errorf("err = %v; want the server and the timeout named", err)
			}
		})
	}
}

// TestRegisteredClientIDChecked: a registration answer's client_id must be
// a printable string of sane length.
func TestRegisteredClientIDChecked(t *testing.T) {
	tests := []struct {
		name, id, want string
	}{
		{"missing", ``, "names no client_id"},
		{"null", `null`, "names no client_id"},
		{"number", `12345`, "not a string"},
		{"empty", `""`, "empty"},
		{"blank", `"   "`, "empty"},
		{"long", `"` + strings.Repeat("a", 256) + `"`, "longer than 255"},
		{"control", `"abc\u0007"`, "U+0007"},
		{"newline", `"abc\ndef"`, "U+000A"},
		{"bidi", `"abc\u202edef"`, "U+202E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				if tt.id == "" {
					fmt.Fprint(w, `{"redirect_uris":["http://127.0.0.1/cb"]}`)
					return
				}
				fmt.Fprintf(w, `{"client_id":%s,"redirect_uris":["http://127.0.0.1/cb"]}`, tt.id)
			}))
			defer srv.Close()
			ci, err := Register(context.Background(), nil, srv.URL, ClientMetadata{RedirectURIs: []string{"http://127.0.0.1/cb"}})
			var ue *UpstreamError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Register = %+v, %v; want an *UpstreamError saying %q", ci, err, tt.want)
			}
		})
	}
}

// TestWiderScopeWarned: a refresh answer with a wider scope than the
// grant's is stored as the server answered, with a warning naming the
// added scopes.
func TestWiderScopeWarned(t *testing.T) {
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

// TestLoopbackClientsRegisterAsNative: a client whose redirect URIs are
// all loopback registers with application_type "native", so that the
// server accepts any loopback port; one with a web redirect does not.
func TestLoopbackClientsRegisterAsNative(t *testing.T) {
	for _, tt := range []struct {
		uris []string
		want string
	}{
		{[]string{"http://127.0.0.1:8765/callback"}, "native"},
		{[]string{"http://127.0.0.1:8765/callback", "http://[::1]:9/cb"}, "native"},
		{[]string{"https://memory.example/api/memory/callback", "http://127.0.0.1:8765/callback"}, ""},
	} {
		t.Run(strings.Join(tt.uris, " "), func(t *testing.T) {
			var got map[string]any
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewDecoder(r.Body).Decode(&got)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				uris, _ := json.Marshal(tt.uris)
				fmt.Fprintf(w, `{"client_id":"c1","redirect_uris":%s}`, uris)
			}))
			defer srv.Close()
			if _, err := Register(context.Background(), nil, srv.URL, ClientMetadata{RedirectURIs: tt.uris}); err != nil {
				t.Fatal(err)
			}
			if at, _ := got["application_type"].(string); at != tt.want {
				t.Errorf("application_type = %q, want %q", at, tt.want)
			}
		})
	}
}

// TestGrantWithoutRefreshToken: a token response without a refresh token
// (RFC 6749 section 5.1) is stored as a grant that ends with its access
// token: served until it expires, then ErrReauthRequired, with no request
// to the token endpoint at any point.
func TestGrantWithoutRefreshToken(t *testing.T) {
	clock := testkit.NewClock()
	ep := newFakeTokenEndpoint(t, rotating)
	path := filepath.Join(t.TempDir(), "honcho.json")
	s := fastStore(path, clock, nil)
	tok := &oauth2.Token{AccessToken: "hch-at-short", ExpiresIn: 600}
	if _, err := s.Install(context.Background(), "hermes", tok, Grant{ClientID: "c", TokenEndpoint: ep.URL, TokenType: "Bearer"}); err != nil {
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
	var re *ReauthError
	if !errors.Is(err, ErrReauthRequired) || !errors.As(err, &re) || re.Code != CodeExpired || !strings.Contains(err.Error(), "no refresh token") {
		t.Fatalf("Token after expiry: %v; want ErrReauthRequired saying the grant has no refresh token", err)
	}
	if _, err := ts.ForceRefresh(context.Background(), "hch-at-short"); !errors.Is(err, ErrReauthRequired) {
		t.Errorf("ForceRefresh: %v; want ErrReauthRequired", err)
	}
	if n := ep.calls.Load(); n != 0 {
		t.Errorf("the token endpoint was called %d times", n)
	}
}
