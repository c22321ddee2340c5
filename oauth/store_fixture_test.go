package oauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/memconnect/memconnect/internal/testkit"
	"github.com/memconnect/memconnect/oauth/oauthtest"
	"golang.org/x/oauth2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// decodeFile parses the JSON file at path into a generic value.
func decodeFile(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s does not parse: %v\n%s", path, err, data)
	}
	return v
}

// hostOf returns hosts[host] of a decoded file.
func hostOf(t *testing.T, v map[string]any, host string) map[string]any {
	t.Helper()
	hosts, _ := v["hosts"].(map[string]any)
	b, _ := hosts[host].(map[string]any)
	return b
}

// fastStore returns a store for path with short refresh timings and a log
// sink at debug level.
func fastStore(path string, clock *testkit.Clock, log *testkit.SyncBuffer, opts ...StoreOption) *Store {
	base := []StoreOption{WithClock(clock.Now), WithLockTimeout(5 * time.Second)}
	if log != nil {
		base = append(base, WithLogger(zerolog.New(log).Level(zerolog.DebugLevel)))
	}
	s := NewStore(path, append(base, opts...)...)
	s.attemptTimeout = 2 * time.Second
	s.retryDelay = 10 * time.Millisecond
	s.budget = 5 * time.Second
	return s
}

// serverGrant starts an in-process authorization server (closed with the
// test), issues a grant and writes it, expiring at exp, as host "hermes" of
// a fresh configWithGrant file.
func serverGrant(t *testing.T, exp time.Time) (*oauthtest.Server, *oauth2.Token, string) {
	t.Helper()
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	grant := srv.IssueGrant("write")
	path := filepath.Join(t.TempDir(), "honcho.json")
	writeTestFile(t, path, configWithGrant(srv.TokenURL(), grant.AccessToken, grant.RefreshToken, exp))
	return srv, grant, path
}
