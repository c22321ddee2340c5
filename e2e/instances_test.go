package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// storeKey seals the tokens of the instances' shared store.
var storeKey = "k1:" + strings.Repeat("A", 43) + "="

// serverBuild is examples/server, built once per run of the test binary.
var serverBuild struct {
	once sync.Once
	path string
	err  error
}

func serverBinary(t testing.TB) string {
	t.Helper()
	serverBuild.once.Do(func() {
		dir := cliBinaryDir(t)
		p := filepath.Join(dir, "server")
		out, err := exec.Command("go", "build", "-o", p, "github.com/memconnect/memconnect/examples/server").CombinedOutput()
		if err != nil {
			serverBuild.err = fmt.Errorf("go build examples/server: %v\n%s", err, out)
			return
		}
		serverBuild.path = p
	})
	if serverBuild.err != nil {
		t.Fatalf("e2e: %v", serverBuild.err)
	}
	return serverBuild.path
}

// cliBinaryDir is the directory the builds of this run go to, removed by
// TestMain.
func cliBinaryDir(t testing.TB) string {
	return filepath.Dir(cliBinary(t))
}

// runServer runs examples/server with env and args until the test ends,
// and returns its standard output.
func runServer(t *testing.T, env []string, args ...string) io.Reader {
	t.Helper()
	cmd := exec.Command(serverBinary(t), args...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	return stdout
}

// startInstance runs examples/server on the shared store and returns its
// base URL; the process is stopped when the test ends.
func startInstance(t *testing.T, h *Hydra, storeURL, home, callbackBase string) string {
	t.Helper()
	stdout := runServer(t, append(cliEnv(h, t.TempDir(), home), "MEMCONNECT_STORE=", "MEMCONNECT_STORE_KEY="),
		"-addr", "127.0.0.1:0", "-home", home, "-store", storeURL, "-store-key", storeKey, "-callback-base-url", callbackBase)
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`)
	for lines.Scan() {
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			go io.Copy(io.Discard, stdout)
			return m[1]
		}
	}
	t.Fatalf("examples/server did not say where it listens: %v", lines.Err())
	return ""
}

// countingClient counts the refresh_token grants it sends.
type countingClient struct {
	base     http.RoundTripper
	refreshs atomic.Int32
}

func (c *countingClient) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.Body != nil && r.GetBody != nil {
		if b, err := r.GetBody(); err == nil {
			body, _ := io.ReadAll(b)
			if strings.Contains(string(body), "grant_type=refresh_token") {
				c.refreshs.Add(1)
			}
		}
	}
	return c.base.RoundTrip(r)
}

// Three examples/server processes on one PostgreSQL, behind a proxy, with
// Ory Hydra as the authorization server: a sign-in started on A completes
// when its callback lands on B, and C reports it; three instances of eight
// callers force twenty refreshes without tripping Hydra's reuse detection,
// one refresh-token grant per rotation; an instance killed while it holds
// the lease lets the others carry on once the lease ends, with no replay;
// a disconnect through any instance revokes at Hydra.
func TestInstancesOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: needs Hydra and PostgreSQL")
	}
	storeURL := fixture.PostgresURL(t, true)
	h := StartHydra(t)
	var a, b, c string
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		target := a // the load balancer: callbacks happen to land on B
		if strings.HasSuffix(r.In.URL.Path, "/callback") {
			target = b
		}
		u, _ := url.Parse(target)
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}})
	t.Cleanup(proxy.Close)
	callbackBase := proxy.URL + "/api/memory"
	h.CreatePublicClient(t, e2eClientID, callbackBase+"/profiles/default/providers/honcho/callback")

	if out, err := exec.Command(serverBinary(t), "-store", storeURL, "-migrate").CombinedOutput(); err != nil {
		t.Fatalf("-migrate: %v\n%s", err, out)
	}
	home := hermesHome(t)
	a, b, c = startInstance(t, h, storeURL, home, callbackBase), startInstance(t, h, storeURL, home, callbackBase), startInstance(t, h, storeURL, home, callbackBase)

	// Connect through A; the callback lands on B; C reports it.
	resp, err := http.Post(a+"/api/memory/profiles/default/providers/honcho/connect", "application/json", strings.NewReader(`{"source":"e2e"}`))
	if err != nil {
		t.Fatal(err)
	}
	var rep provider.StatusReport
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || rep.Flow == nil || !strings.HasPrefix(rep.Flow.RedirectURI, proxy.URL) {
		t.Fatalf("connect on A = %d %+v", resp.StatusCode, rep.Flow)
	}
	if q := authorize(t, rep.Flow.AuthorizeURL); q.Get("code") == "" {
		t.Fatalf("the callback got no code: %v", q)
	}
	status := func(base string) provider.StatusReport {
		t.Helper()
		resp, err := http.Get(base + "/api/memory/profiles/default/providers/honcho/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep provider.StatusReport
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if st := status(c); !st.Connected || st.Auth != provider.AuthOAuth || st.Flow == nil || st.Flow.State != "connected" {
		t.Fatalf("status on C = %+v flow %+v; want connected", st, st.Flow)
	}

	// Three instances, eight callers each, twenty forced refreshes.
	pool, err := pgxpool.New(t.Context(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	key, err := pgstore.ParseKey(storeKey)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := provider.NewRegistry(honcho.New(hydraHonchoOptions(h)...))
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingClient{base: http.DefaultTransport}
	// Each round's Connectors are new, as new processes are: no cache
	// carries over, so every round's callers meet in the store.
	connectors := func() []*provider.Connector {
		var conns []*provider.Connector
		for i := range 3 {
			st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{key}, Owner: fmt.Sprint("r", i)})
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, &provider.Connector{Registry: reg, Profiles: provider.HermesProfiles{Root: home}, GrantStore: st,
				HTTPClient: &http.Client{Transport: counting, Timeout: 15 * time.Second}})
		}
		return conns
	}
	var rotations atomic.Int32
	for round := range 20 {
		var wg sync.WaitGroup
		seen := sync.Map{}
		for _, conn := range connectors() {
			for range 8 {
				wg.Go(func() {
					ts, err := conn.TokenSource("default", honcho.Name, oauth.OnTokenChange(func(*oauth2.Token) { rotations.Add(1) }))
					if err != nil {
						t.Error(err)
						return
					}
					tok, err := ts.TokenContext(t.Context())
					if err != nil {
						t.Errorf("round %d: %v", round, err)
						return
					}
					seen.Store(tok.AccessToken, true)
				})
			}
		}
		wg.Wait()
		n := 0
		seen.Range(func(any, any) bool { n++; return true })
		if n != 1 {
			t.Fatalf("round %d: %d distinct tokens", round, n)
		}
		// The next round's callers find the token in the refresh window.
		if _, err := pool.Exec(t.Context(), `UPDATE memconnect_grants SET expires_at = now() + interval '1 minute', obtained_at = now() - interval '59 minutes'`); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := int(counting.refreshs.Load()), int(rotations.Load()); got != want || got < 19 {
		t.Errorf("%d refresh-token grants for %d rotations; want one each, and about 20", got, want)
	}
	grant := func() (string, string) {
		st, _ := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{key}})
		cr, err := st.Credentials(t.Context(), "honcho/default")
		if err != nil || cr.Grant == nil {
			t.Fatalf("no grant in the store: %v", err)
		}
		return cr.Grant.AccessToken, cr.Grant.RefreshToken
	}
	at, rt := grant()
	assertActive(t, h, "the access token after 20 rotations", at, true)
	assertActive(t, h, "the refresh token after 20 rotations", rt, true)

	// An instance killed while it holds the lease.
	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), childEnv+"=lease-holder", childStoreEnv+"="+storeURL)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "leased\n" {
		holder.Process.Kill()
		holder.Wait()
		t.Fatalf("the lease holder did not take the lease: %q", line)
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	if _, err := pool.Exec(t.Context(), `UPDATE memconnect_grants SET expires_at = now() + interval '1 minute', obtained_at = now() - interval '59 minutes'`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ts, err := connectors()[0].TokenSource("default", honcho.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.TokenContext(ctx); err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	at, rt = grant()
	assertActive(t, h, "the access token after the holder died", at, true)
	assertActive(t, h, "the refresh token after the holder died", rt, true)

	// Disconnect through C revokes at Hydra.
	req, _ := http.NewRequest(http.MethodDelete, c+"/api/memory/profiles/default/providers/honcho/connection", nil)
	dresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(dresp.Body)
	dresp.Body.Close()
	if dresp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"revoked":true`) {
		t.Fatalf("disconnect on C = %d %s", dresp.StatusCode, body)
	}
	assertActive(t, h, "the refresh token after the disconnect", rt, false)
	if st := status(a); st.Connected {
		t.Errorf("A still reports the profile connected")
	}
}

// childStoreEnv is the store URL of a lease-holder child.
const childStoreEnv = "MEMCONNECT_E2E_STORE"

// runLeaseHolder takes the lease on the default profile's Honcho grant with
// a two-second lease, says "leased" and waits to be killed.
func runLeaseHolder() int {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv(childStoreEnv))
	if err != nil {
		return 1
	}
	key, _ := pgstore.ParseKey(storeKey)
	st, err := pgstore.New(ctx, pool, pgstore.Config{SpillDir: os.TempDir(), Keys: []pgstore.Key{key}, Owner: "doomed", LeaseTTL: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := st.Lock(ctx, "honcho/default"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("leased")
	select {}
}
