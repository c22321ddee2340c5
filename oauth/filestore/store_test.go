package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/internal/tuning"

	"golang.org/x/oauth2"
)

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	const grantBlock = `{"hosts":{"hermes":{"apiKey":"hch-at-a","oauth":{"refreshToken":"hch-rt-r","expiresAt":EXP,"clientId":"hermes-agent","tokenEndpoint":"https://t.example/token"}}}}`
	withExp := func(e string) string { return strings.Replace(grantBlock, "EXP", e, 1) }
	tests := []struct {
		name    string
		data    string
		prefix  string
		grant   bool
		expiry  int64
		apiKey  string
		source  string
		scope   string
		wantErr string
	}{
		{name: "grant with integer expiresAt", data: withExp("1767225600"), prefix: "hch-at-", grant: true, expiry: 1767225600, scope: "write"},
		{name: "float expiresAt", data: withExp("1767225600.7"), prefix: "hch-at-", grant: true, expiry: 1767225600, scope: "write"},
		{name: "string expiresAt", data: withExp(`"1767225600"`), prefix: "hch-at-", grant: true, expiry: 1767225600, scope: "write"},
		{name: "junk expiresAt is expired", data: withExp(`"soon"`), prefix: "hch-at-", grant: true, expiry: 0, scope: "write"},
		{name: "missing expiresAt is expired", data: strings.Replace(withExp("1"), `"expiresAt":1,`, "", 1), prefix: "hch-at-", grant: true, expiry: 0, scope: "write"},
		{name: "byte order mark", data: "\ufeff" + withExp("1767225600"), prefix: "hch-at-", grant: true, expiry: 1767225600, scope: "write"},
		{name: "wrong prefix is an API key", data: withExp("1"), prefix: "ory_at_", apiKey: "hch-at-a", source: "host"},
		{name: "empty prefix accepts any", data: strings.Replace(withExp("5"), "hch-at-a", "ory_at_x", 1), prefix: "", grant: true, expiry: 5, scope: "write"},
		{name: "missing refreshToken is a grant that ends", data: strings.Replace(withExp("1"), `"refreshToken":"hch-rt-r",`, "", 1), prefix: "hch-at-", grant: true, expiry: 1, scope: "write"},
		{name: "missing tokenEndpoint", data: strings.Replace(withExp("1"), `,"tokenEndpoint":"https://t.example/token"`, "", 1), prefix: "hch-at-", apiKey: "hch-at-a", source: "host"},
		{name: "missing clientId", data: strings.Replace(withExp("1"), `"clientId":"hermes-agent",`, "", 1), prefix: "hch-at-", apiKey: "hch-at-a", source: "host"},
		{name: "oauth not an object", data: `{"hosts":{"hermes":{"apiKey":"hch-at-a","oauth":"x"}}}`, prefix: "hch-at-", apiKey: "hch-at-a", source: "host"},
		{name: "root API key fallback", data: `{"apiKey":"root-key","hosts":{"hermes":{}}}`, prefix: "hch-at-", apiKey: "root-key", source: "root"},
		{name: "host API key wins", data: `{"apiKey":"root-key","hosts":{"hermes":{"apiKey":"host-key"}}}`, prefix: "hch-at-", apiKey: "host-key", source: "host"},
		{name: "non-string apiKey ignored", data: `{"apiKey":42,"hosts":"nope"}`, prefix: "hch-at-"},
		{name: "empty file", data: "  \n", prefix: "hch-at-"},
		{name: "scope and type kept", data: strings.Replace(withExp("9"), `"clientId"`, `"scope":"read","tokenType":"bearer","clientId"`, 1), prefix: "hch-at-", grant: true, expiry: 9, scope: "read"},
		{name: "invalid JSON", data: "{\n  \"apiKey\": ,\n}", prefix: "hch-at-", wantErr: "line 2"},
		{name: "array root", data: `[1,2]`, prefix: "hch-at-", wantErr: "not a JSON object"},
		{name: "null root", data: `null`, prefix: "hch-at-", wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := scanCredentials([]byte(tt.data), "hermes", testLayout(tt.prefix))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got := c.Grant != nil; got != tt.grant {
				t.Fatalf("grant = %v, want %v", got, tt.grant)
			}
			if c.Grant != nil {
				if got := c.Grant.Expiry.Unix(); got != tt.expiry {
					t.Errorf("expiry = %d, want %d", got, tt.expiry)
				}
				if c.Grant.Scope != tt.scope {
					t.Errorf("scope = %q, want %q", c.Grant.Scope, tt.scope)
				}
			}
			if c.APIKey != tt.apiKey || c.APIKeySource != tt.source {
				t.Errorf("api key = %q from %q, want %q from %q", c.APIKey, c.APIKeySource, tt.apiKey, tt.source)
			}
		})
	}
}

func TestCredentialsMissingFile(t *testing.T) {
	t.Parallel()
	s := newTestStore(filepath.Join(t.TempDir(), "honcho.json"))
	c, err := s.Credentials("hermes")
	if err != nil || c.Grant != nil || c.APIKey != "" {
		t.Fatalf("Credentials = %+v, %v; want zero, nil", c, err)
	}
	if _, err := s.TokenSource("hermes").Token(); !errors.Is(err, oauth.ErrNoGrant) {
		t.Fatalf("Token err = %v, want ErrNoGrant", err)
	}
}

func TestInstallGrant(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant("https://t.example/token", "hch-at-old", "hch-rt-old", clock.Now()))
	s := fastStore(path, clock, nil)
	tok := (&oauth2.Token{AccessToken: "hch-at-fresh", RefreshToken: "hch-rt-fresh", TokenType: "Bearer", ExpiresIn: 3600}).WithExtra(map[string]any{
		"scope": "write",
		"config": map[string]any{
			"peerName":  "bob",
			"workspace": "team",
			"apiKey":    "hch-at-evil",
			"oauth":     map[string]any{"refreshToken": "evil"},
			"sentinel":  map[string]any{"added": "yes", "apiKey": "nested-evil"},
			"hosts": map[string]any{
				"other":  map[string]any{"custom": false, "apiKey": "evil"},
				"hermes": map[string]any{"aiPeer": "hermes", "apiKey": "evil", "oauth": "evil"},
			},
		},
	})
	res, err := s.installGrant(context.Background(), "hermes", tok, installOptions{ClientID: "hermes-agent", TokenEndpoint: "https://t.example/token"})
	if err != nil {
		t.Fatal(err)
	}
	if res.PeerName != "bob" {
		t.Errorf("PeerName = %q, want bob", res.PeerName)
	}
	if want := clock.Now().Add(time.Hour); !res.Grant.Expiry.Equal(want) {
		t.Errorf("expiry = %v, want %v", res.Grant.Expiry, want)
	}
	v := testkit.ReadJSON(t, path)
	if v["apiKey"] != "root-key-1234" || v["workspace"] != "team" || v["peerName"] != "bob" {
		t.Errorf("root = %v", v)
	}
	sentinel := v["sentinel"].(map[string]any)
	if sentinel["added"] != "yes" || sentinel["apiKey"] != nil || len(sentinel["keep"].([]any)) != 5 {
		t.Errorf("sentinel = %v", sentinel)
	}
	other := testkit.HostBlock(v, "other")
	if other["apiKey"] != "other-key-5678" || other["custom"] != true {
		t.Errorf("other host touched: %v", other)
	}
	h := testkit.HostBlock(v, "hermes")
	if h["apiKey"] != "hch-at-fresh" || h["aiPeer"] != "hermes" || h["peerName"] != "alice" {
		t.Errorf("hermes host = %v", h)
	}
	oa := h["oauth"].(map[string]any)
	if oa["refreshToken"] != "hch-rt-fresh" || oa["extra"] != "kept" || oa["expiresAt"].(json.Number).String() != strconv.FormatInt(clock.Now().Add(time.Hour).Unix(), 10) {
		t.Errorf("oauth block = %v", oa)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `12345678901234567890`) || !strings.Contains(string(data), `2.50`) || !strings.Contains(string(data), `"<&>"`) {
		t.Errorf("unknown values changed:\n%s", data)
	}
	if !strings.HasPrefix(string(data), "{\n  \"apiKey\": \"root-key-1234\",\n  \"workspace\"") || !strings.HasSuffix(string(data), "}\n") {
		t.Errorf("format or key order changed:\n%s", data)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	// The installed token is served from the cache without a refresh.
	got, err := s.TokenSource("hermes").Token()
	if err != nil || got.AccessToken != "hch-at-fresh" {
		t.Fatalf("Token = %v, %v", got, err)
	}
}

func TestInstallGrantTokensOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "honcho.json")
	s := fastStore(path, testkit.NewClock(), nil)
	tok := (&oauth2.Token{AccessToken: "hch-at-x", RefreshToken: "hch-rt-x", ExpiresIn: 60}).WithExtra(map[string]any{"config": map[string]any{"peerName": "carol", "workspace": "w"}})
	res, err := s.installGrant(context.Background(), "hermes_work", tok, installOptions{ClientID: "c", TokenEndpoint: "https://t/token", TokensOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.PeerName != "carol" {
		t.Errorf("PeerName = %q, want carol even when tokens only", res.PeerName)
	}
	v := testkit.ReadJSON(t, path)
	if _, ok := v["workspace"]; ok {
		t.Errorf("config merged despite TokensOnly: %v", v)
	}
	if testkit.HostBlock(v, "hermes_work")["apiKey"] != "hch-at-x" {
		t.Errorf("grant not written: %v", v)
	}
}

func TestInstallGrantRejects(t *testing.T) {
	t.Parallel()
	s := newTestStore(filepath.Join(t.TempDir(), "honcho.json"))
	opts := installOptions{ClientID: "c", TokenEndpoint: "https://t/token"}
	tests := []struct {
		name string
		tok  *oauth2.Token
		opts installOptions
		want string
	}{
		{"no token", nil, opts, "no access token"},
		{"wrong prefix", &oauth2.Token{AccessToken: "ory_at_x", RefreshToken: "r"}, opts, "prefix"},
		{"no client", &oauth2.Token{AccessToken: "hch-at-x", RefreshToken: "r"}, installOptions{}, "client id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.installGrant(context.Background(), "hermes", tt.tok, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hch-at-x") || strings.Contains(err.Error(), "ory_at_x") {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
	if _, err := os.Stat(s.file.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected install wrote the file")
	}
}

func TestRemoveGrant(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant("https://t.example/token", "hch-at-a", "hch-rt-a", clock.Now().Add(time.Hour)))
	s := fastStore(path, clock, nil)
	ts := s.TokenSource("hermes")
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	g, err := s.Remove(context.Background(), "hermes")
	if err != nil {
		t.Fatal(err)
	}
	if g.RefreshToken != "hch-rt-a" {
		t.Errorf("removed grant refresh token = %q", g.RefreshToken)
	}
	v := testkit.ReadJSON(t, path)
	h := testkit.HostBlock(v, "hermes")
	if _, ok := h["apiKey"]; ok {
		t.Errorf("apiKey kept: %v", h)
	}
	if _, ok := h["oauth"]; ok {
		t.Errorf("oauth kept: %v", h)
	}
	if h["peerName"] != "alice" || testkit.HostBlock(v, "other")["apiKey"] != "other-key-5678" || v["apiKey"] != "root-key-1234" {
		t.Errorf("other keys lost: %v", v)
	}
	if _, err := ts.Token(); !errors.Is(err, oauth.ErrNoGrant) {
		t.Errorf("Token after remove: %v, want ErrNoGrant (cache cleared)", err)
	}
	if _, err := s.Remove(context.Background(), "other"); !errors.Is(err, oauth.ErrNoGrant) {
		t.Errorf("RemoveGrant of an API-key host = %v, want ErrNoGrant", err)
	}
	if testkit.HostBlock(testkit.ReadJSON(t, path), "other")["apiKey"] != "other-key-5678" {
		t.Errorf("API key removed")
	}
}

func TestCorruptFileNeverOverwritten(t *testing.T) {
	t.Parallel()
	contents := map[string]string{
		"bad JSON":   "{\"apiKey\": \"k\",\n  \"hosts\": {\"hermes\": {\"apiKey\": \"hch-at-a\" \n}",
		"array root": `["hch-at-a"]`,
		"null root":  "null\n",
		"trailing":   `{"a":1} {"b":2}`,
		// The path to the grant named twice: writing keeps one and loses
		// the other, so nothing is written.
		"hosts twice": `{"hosts":{"hermes":{"apiKey":"hch-at-a","oauth":{"refreshToken":"hch-rt-a","clientId":"c","tokenEndpoint":"https://t/token"}}},"hosts":{"other":{}}}`,
		"host twice":  `{"hosts":{"hermes":{"apiKey":"hch-at-a","oauth":{"refreshToken":"hch-rt-a","clientId":"c","tokenEndpoint":"https://t/token"}},"hermes":{"apiKey":"k"}}}`,
		"oauth twice": `{"hosts":{"hermes":{"apiKey":"hch-at-a","oauth":{"refreshToken":"hch-rt-a","clientId":"c","tokenEndpoint":"https://t/token"},"oauth":{}}}}`,
	}
	ops := map[string]func(s *testStore) error{
		"install": func(s *testStore) error {
			_, err := s.installGrant(context.Background(), "hermes", &oauth2.Token{AccessToken: "hch-at-n", RefreshToken: "hch-rt-n"}, installOptions{ClientID: "c", TokenEndpoint: "https://t/token"})
			return err
		},
		"remove": func(s *testStore) error { _, err := s.Remove(context.Background(), "hermes"); return err },
		"merge": func(s *testStore) error {
			return s.file.MergeConfig(context.Background(), "hermes", map[string]any{"peerName": "x"})
		},
		"token": func(s *testStore) error { _, err := s.TokenSource("hermes").Token(); return err },
		"force": func(s *testStore) error {
			_, err := s.TokenSource("hermes").ForceRefresh(context.Background(), "hch-at-a")
			return err
		},
		"credentials": func(s *testStore) error {
			_, err := s.Credentials("hermes")
			return err
		},
	}
	for cname, content := range contents {
		for oname, op := range ops {
			t.Run(cname+"/"+oname, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "honcho.json")
				testkit.WriteFile(t, path, content)
				err := op(fastStore(path, testkit.NewClock(), nil))
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *ConfigError", err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error does not name the file: %v", err)
				}
				if strings.Contains(err.Error(), "hch-at-a") {
					t.Errorf("error leaks file content: %v", err)
				}
				if strings.HasSuffix(cname, "twice") && !strings.Contains(err.Error(), "ambiguous") {
					t.Errorf("error does not say the file is ambiguous: %v", err)
				}
				got, _ := os.ReadFile(path)
				if string(got) != content {
					t.Errorf("file changed:\n%q\nwant\n%q", got, content)
				}
			})
		}
	}
}

func TestSymlinkStaysALink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "honcho.json")
	testkit.WriteFile(t, real, `{"keep":true}`)
	link := filepath.Join(dir, "home", "honcho.json")
	if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../dotfiles/honcho.json", link); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(link)
	tok := &oauth2.Token{AccessToken: "hch-at-s", RefreshToken: "hch-rt-s", ExpiresIn: 3600}
	if _, err := s.installGrant(context.Background(), "hermes", tok, installOptions{ClientID: "c", TokenEndpoint: "https://t/token"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced by a file: %v %v", fi.Mode(), err)
	}
	v := testkit.ReadJSON(t, real)
	if v["keep"] != true || testkit.HostBlock(v, "hermes")["apiKey"] != "hch-at-s" {
		t.Errorf("target not updated: %v", v)
	}
	rfi, _ := os.Stat(real)
	if rfi.Mode().Perm() != 0o600 {
		t.Errorf("target mode = %v, want 0600", rfi.Mode().Perm())
	}
	if _, err := os.Stat(link + ".lock"); err != nil {
		t.Errorf("lock file not beside the configured path: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(real))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

// A temp file a dead writer left is removed by the next write; a fresh
// one, of a writer at work (two holders, after the lock file was deleted),
// is left for its rename.
func TestStaleTempFilesRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "honcho.json")
	stale := filepath.Join(dir, ".honcho.json.tmp-123")
	fresh := filepath.Join(dir, ".honcho.json.tmp-456")
	testkit.WriteFile(t, stale, "half a write")
	testkit.WriteFile(t, fresh, "a write under way")
	old := time.Now().Add(-2 * staleTempAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(path)
	if err := s.file.MergeConfig(context.Background(), "hermes", map[string]any{"workspace": "w"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temp file of another writer was removed: %v", err)
	}
}

func TestLockTimeout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "honcho.json")
	holder := newTestStore(path)
	unlock, err := holder.file.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	waiter := newTestStore(path, withLockTimeout(50*time.Millisecond))
	err = waiter.file.MergeConfig(context.Background(), "hermes", map[string]any{"a": 1})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error (the file lock is held)", err)
	}
}

// TestCredentialsCache: a settled, unchanged file is answered from memory;
// a replaced file, or one written less than a second ago, is read again.
func TestCredentialsCache(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "honcho.json")
	old := time.Now().Add(-time.Hour)
	write := func(access string, mtime time.Time, replace bool) {
		t.Helper()
		content := configWithGrant("https://t/token", access, "hch-rt-r", old.Add(2*time.Hour))
		if replace {
			if err := writeFileAtomic(path, []byte(content)); err != nil {
				t.Fatal(err)
			}
		} else {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600) // in place: same inode
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(content)
			f.Close()
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestStore(path)
	read := func() string {
		t.Helper()
		c, err := s.Credentials("hermes")
		if err != nil || c.Grant == nil {
			t.Fatalf("Credentials = %+v, %v", c, err)
		}
		c.Grant.AccessToken = "changed by the caller" // must not reach the cache
		c2, _ := s.Credentials("hermes")
		return c2.Grant.AccessToken
	}
	write("hch-at-aaaa", old, true)
	if got := read(); got != "hch-at-aaaa" {
		t.Fatalf("first read = %q", got)
	}
	// Same inode, size and mtime: the cache answers (this is what makes a
	// status request cost one stat).
	write("hch-at-bbbb", old, false)
	if got := read(); got != "hch-at-aaaa" {
		t.Fatalf("settled unchanged file re-read: %q", got)
	}
	// A rename (every writer's way) is a new file.
	write("hch-at-cccc", old, true)
	if got := read(); got != "hch-at-cccc" {
		t.Fatalf("replaced file not re-read: %q", got)
	}
	// A file modified just now is never trusted from memory, even when an
	// in-place edit keeps inode, size and (coarse) mtime.
	now := time.Now()
	write("hch-at-dddd", now, false)
	if got := read(); got != "hch-at-dddd" {
		t.Fatalf("fresh file: %q", got)
	}
	write("hch-at-eeee", now, false)
	if got := read(); got != "hch-at-eeee" {
		t.Fatalf("racily clean file served from memory: %q", got)
	}
}

// A sign-in's grant and the server's config object land in the file in one
// locked write: both, or neither.
func TestInstallConfigOneWrite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, `{"workspace":"mine","hosts":{"other":{"apiKey":"keep"}}}`)
	s := newTestStore(path)
	writes := 0
	s.file.writeFile = func(path string, data []byte) error { writes++; return writeFileAtomic(path, data) }
	tok := (&oauth2.Token{AccessToken: "hch-at-one", RefreshToken: "hch-rt-one", Expiry: time.Now().Add(time.Hour)}).
		WithExtra(map[string]any{"config": map[string]any{"peerName": "alice"}})
	if _, err := s.installGrant(t.Context(), "hermes", tok, installOptions{ClientID: "c", TokenEndpoint: "https://as.example/token"}); err != nil {
		t.Fatal(err)
	}
	if writes != 1 {
		t.Errorf("the sign-in wrote the file %d times, want once", writes)
	}
	c, err := s.Credentials("hermes")
	if err != nil || c.Grant == nil || c.Grant.RefreshToken != "hch-rt-one" {
		t.Fatalf("grant after install: %+v, %v", c, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(mustRead(t, path), &cfg); err != nil || cfg["peerName"] != "alice" || cfg["workspace"] != "mine" {
		t.Errorf("config after install: %v (%v)", cfg, err)
	}

	// A write that fails leaves neither.
	s.file.writeFile = func(string, []byte) error { return errors.New("disk full") }
	tok2 := (&oauth2.Token{AccessToken: "hch-at-two", RefreshToken: "hch-rt-two", Expiry: time.Now().Add(time.Hour)}).
		WithExtra(map[string]any{"config": map[string]any{"peerName": "bob"}})
	if _, err := s.installGrant(t.Context(), "hermes", tok2, installOptions{ClientID: "c", TokenEndpoint: "https://as.example/token"}); err == nil {
		t.Fatal("install with a failing write succeeded")
	}
	if err := json.Unmarshal(mustRead(t, path), &cfg); err != nil || cfg["peerName"] != "alice" {
		t.Errorf("a failed install changed the config: %v (%v)", cfg, err)
	}
}

// A store that wraps another's lock (to count or log) keeps the one-write
// sign-in by being a ConfigMerger too: Install asks for the interface, not
// for the file store's own type.
func TestInstallConfigThroughAWrappedLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, `{"workspace":"mine"}`)
	w := &mergingStore{GrantStore: newTestStore(path).file}
	tok := &oauth2.Token{AccessToken: "hch-at-one", RefreshToken: "hch-rt-one", Expiry: time.Now().Add(time.Hour)}
	base := oauth.Grant{ClientID: "c", TokenEndpoint: "https://as.example/token"}
	if _, err := oauth.NewGrants(w).Install(t.Context(), "hermes", tok, base, oauth.InstallConfig(map[string]any{"peerName": "alice"})); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(mustRead(t, path), &cfg); err != nil || cfg["peerName"] != "alice" || cfg["workspace"] != "mine" || w.merged != 1 {
		t.Errorf("config after install: %v (%v), merged %d times; want peerName alice, merged once", cfg, err, w.merged)
	}
}

// mergingStore wraps a store whose locks are ConfigMergers.
type mergingStore struct {
	oauth.GrantStore
	merged int
}

func (s *mergingStore) Lock(ctx context.Context, key string) (oauth.LockedGrant, error) {
	lg, err := s.GrantStore.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return &mergingLock{LockedGrant: lg, s: s}, nil
}

type mergingLock struct {
	oauth.LockedGrant
	s *mergingStore
}

func (l *mergingLock) CommitWithConfig(ctx context.Context, prev, next *oauth.Grant, patch map[string]any) error {
	l.s.merged++
	return l.LockedGrant.(oauth.ConfigMerger).CommitWithConfig(ctx, prev, next, patch)
}

// mustRead returns the file at path.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A store whose Prepare fails with an error that quotes the refresh token
// (a driver echoing its parameters, say) has it redacted in the log and in
// the reported outcome alike.
func TestPrepareErrorRedacted(t *testing.T) {
	t.Parallel()
	ep := newFakeTokenEndpoint(t, rotating)
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old-secret", time.Now().Add(-time.Minute)))
	var logs bytes.Buffer
	st := &echoingStore{GrantStore: newTestStore(path).file}
	var reported []string
	gs := oauth.NewGrants(st, oauth.WithLogger(zerolog.New(&logs)))
	_, err := gs.TokenSource("hermes", oauth.OnRefresh(func(r oauth.RefreshReport) { reported = append(reported, r.Error) })).Token()
	if err == nil {
		t.Fatal("Token succeeded with an expired grant and a failing Prepare")
	}
	if strings.Contains(logs.String(), "hch-rt-old-secret") || strings.Contains(strings.Join(reported, " "), "hch-rt-old-secret") {
		t.Errorf("the refresh token reached the log or the report:\n%s\n%v", logs.String(), reported)
	}
	if !strings.Contains(logs.String(), "token not refreshed") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
}

// echoingStore's locks fail Prepare quoting the refresh token.
type echoingStore struct{ oauth.GrantStore }

func (s *echoingStore) Lock(ctx context.Context, key string) (oauth.LockedGrant, error) {
	lg, err := s.GrantStore.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return echoingLock{lg}, nil
}

type echoingLock struct{ oauth.LockedGrant }

func (echoingLock) Prepare(ctx context.Context, prev *oauth.Grant) (func([]byte, string) error, error) {
	return nil, fmt.Errorf("journal insert failed for %s", prev.RefreshToken)
}

// TestStoreErrorsRedacted: a store whose errors quote the tokens they
// were given (a driver echoing its parameters) never gets a token into the
// log or the refresh report, on every path that logs a store error: the
// journal write, the commit, and the withdrawal of a spend that did not
// happen.
func TestStoreErrorsRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fail    string // the method that fails, quoting its tokens
		offline bool   // the token endpoint cannot be reached
		logged  string
	}{
		{"journal write", "record", false, "could not write the rotation journal"},
		{"commit", "commit", false, "could not be stored"},
		{"withdrawn spend", "abandon", true, "could not withdraw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newFakeTokenEndpoint(t, rotating)
			url := ep.URL
			if tt.offline {
				ep.Close()
			}
			path := filepath.Join(t.TempDir(), "honcho.json")
			testkit.WriteFile(t, path, configWithGrant(url, "hch-at-old-secret", "hch-rt-old-secret", time.Now().Add(time.Minute)))
			var logs testkit.SyncBuffer
			st := &faultyStore{GrantStore: newTestStore(path).file, fail: tt.fail}
			var reported []string
			gs := oauth.NewGrants(st, oauth.WithLogger(zerolog.New(&logs)), tuning.Timings(2*time.Second, time.Millisecond, 0))
			_, _ = gs.TokenSource("hermes", oauth.OnRefresh(func(r oauth.RefreshReport) { reported = append(reported, r.Error) })).ForceRefresh(t.Context(), "hch-at-old-secret")
			all := logs.String() + strings.Join(reported, " ")
			for _, secret := range []string{"hch-rt-old-secret", "hch-at-old-secret", "hch-at-new1", "hch-rt-new1"} {
				if strings.Contains(all, secret) {
					t.Errorf("%s reached the log or the report:\n%s\n%v", secret, logs.String(), reported)
				}
			}
			if !st.failed.Load() || !strings.Contains(logs.String(), tt.logged) {
				t.Errorf("the store's failure (%v) was not logged (%q):\n%s", st.failed.Load(), tt.logged, logs.String())
			}
		})
	}
}

// faultyStore's locks fail one method, quoting every token they were given.
type faultyStore struct {
	oauth.GrantStore
	fail   string
	failed atomic.Bool
}

func (s *faultyStore) Lock(ctx context.Context, key string) (oauth.LockedGrant, error) {
	lg, err := s.GrantStore.Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return &faultyLock{LockedGrant: lg, s: s}, nil
}

type faultyLock struct {
	oauth.LockedGrant
	s *faultyStore
}

func (l *faultyLock) Prepare(ctx context.Context, prev *oauth.Grant) (func([]byte, string) error, error) {
	record, err := l.LockedGrant.Prepare(ctx, prev)
	if err != nil || l.s.fail != "record" {
		return record, err
	}
	return func(body []byte, _ string) error {
		l.s.failed.Store(true)
		return fmt.Errorf("journal insert of %s failed for %s", body, prev.RefreshToken)
	}, nil
}

func (l *faultyLock) Commit(ctx context.Context, prev, next *oauth.Grant) error {
	if l.s.fail == "commit" && prev != nil {
		l.s.failed.Store(true)
		return fmt.Errorf("update failed: %s %s -> %s %s", prev.AccessToken, prev.RefreshToken, next.AccessToken, next.RefreshToken)
	}
	return l.LockedGrant.Commit(ctx, prev, next)
}

func (l *faultyLock) Abandon(ctx context.Context, prev *oauth.Grant) error {
	if l.s.fail == "abandon" {
		l.s.failed.Store(true)
		return fmt.Errorf("delete of the spend of %s failed", prev.RefreshToken)
	}
	return nil
}
