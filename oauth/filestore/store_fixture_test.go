package filestore

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/internal/tuning"

	"github.com/rs/zerolog"
)

// fakeTokenEndpoint is a token endpoint whose answers a test scripts.
type fakeTokenEndpoint struct {
	*httptest.Server
	calls   atomic.Int32
	mu      sync.Mutex
	handler func(n int, w http.ResponseWriter, r *http.Request)
}

func newFakeTokenEndpoint(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) *fakeTokenEndpoint {
	t.Helper()
	f := &fakeTokenEndpoint{handler: h}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.calls.Add(1))
		f.mu.Lock()
		h := f.handler
		f.mu.Unlock()
		h(n, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// rotating answers every refresh with fresh tokens numbered by call.
func rotating(n int, w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("client_id") == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"hch-at-new%d","refresh_token":"hch-rt-new%d","expires_in":3600,"token_type":"Bearer","scope":"write"}`, n, n)
}

func writeOAuthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q}`, code)
}

// configWithGrant is a honcho.json with a sentinel root key, a second host and
// a grant for host "hermes" expiring at exp.
func configWithGrant(tokenURL, access, refresh string, exp time.Time) string {
	return fmt.Sprintf(`{
  "apiKey": "root-key-1234",
  "workspace": "hermes",
  "sentinel": {"keep": [1, 2.50, 12345678901234567890, null, "<&>"]},
  "hosts": {
    "other": {"apiKey": "other-key-5678", "custom": true},
    "hermes": {
      "apiKey": %q,
      "peerName": "alice",
      "oauth": {"refreshToken": %q, "expiresAt": %d, "clientId": "hermes-agent",
                "tokenEndpoint": %q, "scope": "write", "tokenType": "Bearer", "extra": "kept"}
    }
  }
}
`, access, refresh, exp.Unix(), tokenURL)
}

// testLayout is honcho.json's layout with the access-token prefix
// "hch-at-", as the Honcho provider supplies it.
func testLayout(prefix string) *Layout {
	return &Layout{Section: "hosts", AccessToken: "apiKey", Fields: "oauth", AccessTokenPrefix: prefix, DefaultScope: "write", RootAPIKey: true, Verdict: "oauthRejected"}
}

// testStore is a Store and the Grants over it, wired as a provider
// wires them, with the helpers the tests use.
type testStore struct {
	*oauth.Grants
	file *Store
}

// newTestStore returns the store of path with honcho.json's layout and
// prefix "hch-at-"; the engine's lock timeout is the file lock's too.
func newTestStore(path string, opts ...oauth.Option) *testStore {
	f := New(path, *testLayout("hch-at-"))
	o := tuning.Defaults()
	for _, opt := range opts {
		opt(&o)
	}
	f.lockTimeout = o.LockTimeout
	return &testStore{Grants: oauth.NewGrants(f, opts...), file: f}
}

// withLockTimeout bounds how long an operation waits for the locks.
func withLockTimeout(d time.Duration) oauth.Option { return tuning.LockTimeout(d) }

// Credentials is the file's unlocked read of host.
func (s *testStore) Credentials(host string) (oauth.Credentials, error) {
	return s.file.Credentials(context.Background(), host)
}

// installOptions and installed are what installGrant takes and returns.
type installOptions struct {
	ClientID, TokenEndpoint string
	TokensOnly              bool // skip the merge of the response's config
}

type installed struct {
	Grant    *oauth.Grant
	PeerName string
}

// installGrant stores tok as host's grant and merges the response's
// "config" into the file, as a provider's Complete does.
func (s *testStore) installGrant(ctx context.Context, host string, tok *oauth2.Token, o installOptions) (*installed, error) {
	var cfg map[string]any
	if tok != nil {
		cfg, _ = tok.Extra("config").(map[string]any)
	}
	var opts []oauth.InstallOption
	if cfg != nil && !o.TokensOnly {
		opts = append(opts, oauth.InstallConfig(cfg))
	}
	g, err := s.Install(ctx, host, tok, oauth.Grant{ClientID: o.ClientID, TokenEndpoint: o.TokenEndpoint, Scope: "write", TokenType: "Bearer"}, opts...)
	if err != nil {
		return nil, err
	}
	res := &installed{Grant: g}
	res.PeerName, _ = cfg["peerName"].(string)
	return res, nil
}

// fastStore returns a store for path with short refresh timings and a log
// sink at debug level.
func fastStore(path string, clock *testkit.Clock, log *testkit.SyncBuffer, opts ...oauth.Option) *testStore {
	base := []oauth.Option{oauth.WithClock(clock), withLockTimeout(5 * time.Second), tuning.Timings(2*time.Second, 10*time.Millisecond, 5*time.Second)}
	if log != nil {
		base = append(base, oauth.WithLogger(zerolog.New(log).Level(zerolog.DebugLevel)))
	}
	return newTestStore(path, append(base, opts...)...)
}

// serverGrant starts an in-process authorization server (closed with the
// test), issues a grant and writes it, expiring at exp, as host "hermes" of
// a fresh configWithGrant file.
func serverGrant(t *testing.T, exp time.Time) (*honchofake.Server, *oauth2.Token, string) {
	t.Helper()
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	grant := srv.IssueGrant("write")
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(srv.TokenURL(), grant.AccessToken, grant.RefreshToken, exp))
	return srv, grant, path
}
