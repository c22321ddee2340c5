package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// The OAuth client memconnect is registered as at Hydra in these tests, and
// the scopes it asks for. offline_access is what makes Hydra issue a refresh
// token; "write" is the Honcho scope.
const (
	e2eClientID = "memconnect-e2e"
	e2eScope    = "offline_access write"
)

// loopbackRedirect is the redirect URI the Honcho client is registered with
// (honcho.LoopbackAddr + "/callback"). Hydra lets a loopback IP
// redirect URI change its port (RFC 8252 section 7.3), so registering it
// also admits the listener's fallback to an OS-assigned port.
const loopbackRedirect = "http://" + honcho.LoopbackAddr + "/callback"

// hydraHonchoOptions configures the Honcho provider for h: its endpoints, our
// client, the scopes, and Hydra's access-token prefix. The revocation
// endpoint is left out on purpose: memconnect discovers it from the issuer's
// OpenID Connect metadata, which is part of what the tests prove.
func hydraHonchoOptions(h *Hydra) []honcho.Option {
	return []honcho.Option{
		honcho.WithAuthorizeURL(h.AuthURL),
		honcho.WithTokenURL(h.TokenURL),
		honcho.WithIssuer(h.Issuer),
		honcho.WithClientID(e2eClientID),
		honcho.WithScopes(strings.Fields(e2eScope)...),
		honcho.WithAccessTokenPrefix("ory_at_"),
	}
}

// hermesHome makes a Hermes home (the default profile) in a fresh temporary
// directory and returns it.
func hermesHome(t testing.TB) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), ".hermes")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return home
}

// newConnector returns a provider.Connector for the Honcho provider at h
// over the Hermes home, as a program using the library builds it. flows may
// be nil for one that starts no flow.
func newConnector(h *Hydra, home string, flows *flow.Manager) (*provider.Connector, error) {
	reg, err := provider.NewRegistry(honcho.New(hydraHonchoOptions(h)...))
	if err != nil {
		return nil, err
	}
	return &provider.Connector{
		Registry:   reg,
		Profiles:   provider.HermesProfiles{Root: home},
		Flows:      flows,
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
	}, nil
}

// newSignInConnector returns newConnector's Connector with a flow manager whose
// loopback listener binds an OS-assigned port, closed when the test ends.
func newSignInConnector(t testing.TB, h *Hydra, home string) *provider.Connector {
	t.Helper()
	flows := flow.NewManager(flow.Config{LoopbackAddr: "127.0.0.1:0"})
	t.Cleanup(func() { flows.Close() })
	conn, err := newConnector(h, home, flows)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// connectWithConnector signs the default profile in through a loopback browser
// flow of svc, following the authorization URL through Hydra with a cookie
// jar as a browser would, and returns the stored grant.
func connectWithConnector(t *testing.T, svc *provider.Connector, home string) storedGrant {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rep, err := svc.Connect(ctx, provider.DefaultProfile, honcho.Name, provider.ConnectRequest{
		Method:   flow.MethodBrowser,
		Redirect: flow.RedirectLoopback,
		Source:   "e2e",
	})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if rep.Flow == nil || rep.Flow.State != flow.StatePending || rep.Flow.AuthorizeURL == "" {
		t.Fatalf("connect: flow = %+v, want a pending flow with an authorize URL", rep.Flow)
	}
	if q := authorize(t, rep.Flow.AuthorizeURL); q.Get("code") == "" {
		t.Fatalf("authorize: the callback got no code: error=%q", q.Get("error"))
	}
	f, err := svc.Wait(ctx, provider.DefaultProfile, honcho.Name)
	if err != nil || f.State != flow.StateConnected {
		t.Fatalf("wait: state %q detail %q err %v, want connected", f.State, f.Detail, err)
	}
	return readGrant(t, configPath(home), honcho.DefaultHost)
}

// configPath is the default profile's honcho.json in a Hermes home.
func configPath(home string) string { return filepath.Join(home, honcho.ConfigFileName) }

// storedGrant is a host block's OAuth grant as it is on disk.
type storedGrant struct {
	AccessToken   string
	RefreshToken  string
	ExpiresAt     int64
	ClientID      string
	TokenEndpoint string
}

// readGrant reads host's grant from the honcho.json at path, failing the
// test when there is none.
func readGrant(t testing.TB, path, host string) storedGrant {
	t.Helper()
	g, err := readGrantFile(path, host)
	if err != nil {
		t.Fatalf("read grant: %v", err)
	}
	return g
}

func readGrantFile(path, host string) (storedGrant, error) {
	var g storedGrant
	root, err := readConfig(path)
	if err != nil {
		return g, err
	}
	block := testkit.HostBlock(root, host)
	oa, _ := block["oauth"].(map[string]any)
	if oa == nil {
		return g, fmt.Errorf("%s: host %q holds no oauth block: keys %v", path, host, keys(block))
	}
	g.AccessToken, _ = block["apiKey"].(string)
	g.RefreshToken, _ = oa["refreshToken"].(string)
	g.ClientID, _ = oa["clientId"].(string)
	g.TokenEndpoint, _ = oa["tokenEndpoint"].(string)
	exp, _ := oa["expiresAt"].(json.Number)
	if g.ExpiresAt, err = strconv.ParseInt(string(exp), 10, 64); err != nil {
		return g, fmt.Errorf("%s: expiresAt %q is not an integer", path, exp)
	}
	if g.AccessToken == "" || g.RefreshToken == "" {
		return g, fmt.Errorf("%s: host %q has no access or refresh token", path, host)
	}
	return g, nil
}

// readConfig decodes a honcho.json, keeping numbers as json.Number so that
// a rewrite keeps them exactly.
func readConfig(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return root, nil
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// forceExpiry makes host's access token in the honcho.json at path look
// expired (expiresAt one minute ago), as a clock jump would. It edits the
// file the way memconnect and the Python agent do: under an exclusive flock
// on "<path>.lock", through a temporary file in the same directory that is
// synced and renamed over the original. Every other key is kept.
func forceExpiry(t testing.TB, path, host string) {
	t.Helper()
	if err := editConfig(t.Context(), path, func(root map[string]any) error {
		oa, _ := testkit.HostBlock(root, host)["oauth"].(map[string]any)
		if oa == nil {
			return fmt.Errorf("host %q holds no oauth block", host)
		}
		oa["expiresAt"] = json.Number(strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10))
		return nil
	}); err != nil {
		t.Fatalf("force expiry: %v", err)
	}
}

// editConfig applies edit to the honcho.json at path under its file lock
// and replaces the file atomically.
func editConfig(ctx context.Context, path string, edit func(root map[string]any) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lock := flock.New(path+".lock", flock.SetPermissions(0o600))
	locked, err := lock.TryLockContext(ctx, 5*time.Millisecond)
	if err != nil || !locked {
		return fmt.Errorf("lock %s.lock: locked=%v: %w", path, locked, err)
	}
	defer lock.Unlock()

	root, err := readConfig(path)
	if err != nil {
		return err
	}
	if err := edit(root); err != nil {
		return err
	}
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// writeFileAtomic writes b to a temporary file next to path (mode 0600),
// syncs it, renames it over path and syncs the directory.
func writeFileAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".e2e-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err == nil {
		if _, err = f.Write(b); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// cliBuild is the memconnect command, built once per test binary run.
var cliBuild struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	err  error
}

// cliBinary builds examples/cli once per run of the test binary (with the
// e2e module's build list, from the working tree through its replace) and
// returns the path of the executable.
func cliBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipping test that builds the CLI in -short mode")
	}
	cliBuild.once.Do(func() {
		cliBuild.dir, cliBuild.err = os.MkdirTemp("", "memconnect-e2e-cli-")
		if cliBuild.err != nil {
			return
		}
		p := filepath.Join(cliBuild.dir, "memconnect")
		cmd := exec.Command("go", "build", "-o", p, "github.com/memconnect/memconnect/examples/cli")
		if out, err := cmd.CombinedOutput(); err != nil {
			cliBuild.err = fmt.Errorf("go build examples/cli: %v\n%s", err, out)
			return
		}
		cliBuild.path = p
	})
	if cliBuild.err != nil {
		t.Fatalf("e2e: %v", cliBuild.err)
	}
	return cliBuild.path
}

// cliEnv is the environment of a memconnect command run against h: HOME is
// a fresh directory, HERMES_HOME is home, and the HONCHO_OAUTH_* variables
// point at Hydra with our client. Nothing else of the test's environment
// leaks in (a stray HONCHO_* variable would change what is tested).
func cliEnv(h *Hydra, userHome, home string) []string {
	env := []string{
		"HOME=" + userHome,
		"HERMES_HOME=" + home,
		honcho.EnvAuthorizeURL + "=" + h.AuthURL,
		honcho.EnvTokenURL + "=" + h.TokenURL,
		honcho.EnvClientID + "=" + e2eClientID,
		honcho.EnvScope + "=" + e2eScope,
		honcho.EnvTokenPrefix + "=ory_at_",
	}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// assertActive checks Hydra's introspection of a token (RFC 7662).
func assertActive(t *testing.T, h *Hydra, what, token string, want bool) {
	t.Helper()
	active, clientID := h.Introspect(t, token)
	switch {
	case active != want:
		t.Errorf("introspect %s: active = %v, want %v", what, active, want)
	case active && clientID != e2eClientID:
		t.Errorf("introspect %s: client_id = %q, want %q", what, clientID, e2eClientID)
	}
}
