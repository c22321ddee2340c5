package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// Hydra is an Ory Hydra v2.3.0 server that [StartHydra] runs for one test:
// `hydra serve all --dev` with an in-memory database, its public and admin
// APIs on loopback ports, and login/consent handled by an app of ours that
// signs in [HydraSubject] and grants what the client asks for.
//
// Facts of this Hydra version that tests rely on: tokens look like
// `ory_at_…` and `ory_rt_…`; refresh tokens rotate on every use with no grace
// period, and replaying a used one answers 400 invalid_grant and revokes
// every token of the grant; introspection is served only on the admin port;
// discovery is at /.well-known/openid-configuration (there is no
// oauth-authorization-server document and no device flow).
//
// The fields are read-only after StartHydra returns. The methods are safe for
// concurrent use, but those that take a [testing.TB] follow its rules.
type Hydra struct {
	// Issuer is the issuer URL, exactly as Hydra reports it in its
	// metadata (with a trailing slash).
	Issuer string
	// PublicURL and AdminURL are the base URLs of the two APIs, without a
	// trailing slash, e.g. http://127.0.0.1:40123.
	PublicURL string
	AdminURL  string
	// AuthURL, TokenURL and RevokeURL are the public OAuth 2.0 endpoints
	// (RFC 6749 section 3, RFC 7009).
	AuthURL   string
	TokenURL  string
	RevokeURL string
	// LoginConsentURL is the base URL of the login/consent app.
	LoginConsentURL string
	// LogPath is the file that receives Hydra's stdout and stderr. Its tail
	// is logged when the test fails.
	LogPath string

	admin *http.Client
	app   *consentApp
}

// HydraSubject is the subject that the login app signs in for every login
// request.
const HydraSubject = "e2e-user"

// HydraOption changes the configuration that [StartHydra] writes.
type HydraOption func(cfg map[string]any)

// WithHydraConfig sets one Hydra configuration key, given in dotted form as
// in Hydra's configuration reference, for example
// WithHydraConfig("ttl.access_token", "5s"). It overrides the harness's own
// value for that key.
func WithHydraConfig(key string, value any) HydraOption {
	return func(cfg map[string]any) { setDotted(cfg, key, value) }
}

// errHydraExited marks a Hydra process that exited before it was ready,
// most often because another process took one of its ports meanwhile.
var errHydraExited = errors.New("hydra exited before it was ready")

// hydraReadyTimeout bounds how long StartHydra waits for /health/ready. A
// warm start takes well under a second.
const hydraReadyTimeout = 20 * time.Second

// StartHydra starts a Hydra server for the test and stops it when the test
// ends. The binary comes from $MEMCONNECT_HYDRA or scripts/build-hydra.sh
// (which builds it on first use). StartHydra skips the test under -short and
// fails it when Hydra is missing or does not become ready.
func StartHydra(t testing.TB, opts ...HydraOption) *Hydra {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipping test that needs Ory Hydra in -short mode")
	}
	bin := hydraBinary(t)
	dir := t.TempDir()
	var err error
	// The free ports are picked by listening on :0 and closing, so another
	// process can take one before Hydra binds it. Then Hydra exits; try again.
	for attempt := 1; attempt <= 3; attempt++ {
		var h *Hydra
		if h, err = startHydra(t, bin, dir, attempt, opts); err == nil {
			return h
		}
		if !errors.Is(err, errHydraExited) {
			break
		}
	}
	t.Fatalf("e2e: %v", err)
	return nil
}

// startHydra makes one attempt to start Hydra. On success it registers the
// cleanup that stops Hydra and the login/consent app.
func startHydra(t testing.TB, bin, dir string, attempt int, opts []HydraOption) (*Hydra, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	publicURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	adminURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	admin := &http.Client{Timeout: 10 * time.Second}
	app := newConsentApp(adminURL, admin)
	appSrv := httptest.NewServer(app)

	h := &Hydra{
		Issuer:          publicURL + "/",
		PublicURL:       publicURL,
		AdminURL:        adminURL,
		AuthURL:         publicURL + "/oauth2/auth",
		TokenURL:        publicURL + "/oauth2/token",
		RevokeURL:       publicURL + "/oauth2/revoke",
		LoginConsentURL: appSrv.URL,
		LogPath:         filepath.Join(dir, fmt.Sprintf("hydra-%d.log", attempt)),
		admin:           admin,
		app:             app,
	}

	cfg := h.config(ports[0], ports[1])
	for _, o := range opts {
		o(cfg)
	}
	cfgPath := filepath.Join(dir, fmt.Sprintf("hydra-%d.json", attempt))
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		appSrv.Close()
		return nil, err
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		appSrv.Close()
		return nil, err
	}
	logFile, err := os.Create(h.LogPath)
	if err != nil {
		appSrv.Close()
		return nil, err
	}

	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "-c", cfgPath)
	cmd.Dir = dir
	cmd.Env = hydraEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		appSrv.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill() // in-memory database: nothing to shut down cleanly
		<-exited
		logFile.Close()
		appSrv.Close()
	}

	if err := waitHydraReady(h, exited); err != nil {
		stop()
		if errors.Is(err, errHydraExited) {
			err = fmt.Errorf("%w (%v)", err, waitErr)
		}
		return nil, fmt.Errorf("hydra on %s/%s: %w\n--- %s ---\n%s", publicURL, adminURL, err, h.LogPath, readTail(h.LogPath))
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("e2e: tail of %s:\n%s", h.LogPath, readTail(h.LogPath))
		}
	})
	return h, nil
}

// config returns Hydra's configuration for the given ports as a tree of
// JSON values. Keys are those of Hydra v2.3.0's config schema
// (spec/config.json).
func (h *Hydra) config(publicPort, adminPort int) map[string]any {
	return map[string]any{
		"dsn": "memory",
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": publicPort},
			"admin":  map[string]any{"host": "127.0.0.1", "port": adminPort},
		},
		"urls": map[string]any{
			"self": map[string]any{
				"issuer": h.Issuer,
				"public": h.PublicURL + "/",
				"admin":  h.AdminURL + "/",
			},
			"login":   h.LoginConsentURL + "/login",
			"consent": h.LoginConsentURL + "/consent",
			"error":   h.LoginConsentURL + "/error",
		},
		"secrets": map[string]any{"system": []string{rand.Text() + rand.Text()}},
		"oauth2": map[string]any{
			"grant": map[string]any{
				// Hydra's default, spelled out: a used refresh token is dead at once.
				"refresh_token": map[string]any{"rotation_grace_period": "0s"},
			},
		},
		"log": map[string]any{"level": "warn", "format": "text"},
	}
}

// hydraEnv returns the environment for Hydra: only what a process needs.
// Hydra reads every configuration key from the environment too (DSN,
// LOG_LEVEL, URLS_SELF_ISSUER, …), so a stray variable must not leak in.
func hydraEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// waitHydraReady polls both /health/ready endpoints until they answer 200,
// Hydra exits, or hydraReadyTimeout passes.
func waitHydraReady(h *Hydra, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), hydraReadyTimeout)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	ready := func() bool {
		for _, base := range []string{h.AdminURL, h.PublicURL} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/ready", nil)
			if err != nil {
				return false
			}
			resp, err := c.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-exited:
			return errHydraExited
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v", hydraReadyTimeout)
		case <-tick.C:
		}
	}
}

// Endpoint returns Hydra's endpoints for a [oauth2.Config]. It sends the
// client id in the form body, as a public client (RFC 6749 section 2.3.1
// token_endpoint_auth_method "none") must.
func (h *Hydra) Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{AuthURL: h.AuthURL, TokenURL: h.TokenURL, AuthStyle: oauth2.AuthStyleInParams}
}

// DenyConsent makes the consent app reject (deny true) or accept (deny
// false, the default) every later consent request. A rejected request ends at
// the client's redirect URI with error=access_denied.
func (h *Hydra) DenyConsent(deny bool) { h.app.deny.Store(deny) }

// HoldLogin makes the login app keep every later login request waiting, so
// that a browser sent to Hydra's authorization endpoint stays there (a flow
// stays pending) until release is called. arrived is closed when the first
// login request is waiting: proof that the browser reached Hydra. release
// may be called more than once; the test's end calls it too.
func (h *Hydra) HoldLogin(t testing.TB) (arrived <-chan struct{}, release func()) {
	hold := &loginHold{arrived: make(chan struct{}), release: make(chan struct{})}
	h.app.mu.Lock()
	h.app.hold = hold
	h.app.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			h.app.mu.Lock()
			if h.app.hold == hold {
				h.app.hold = nil
			}
			h.app.mu.Unlock()
			close(hold.release)
		})
	}
	t.Cleanup(release)
	return hold.arrived, release
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// setDotted sets cfg[a][b][c] = v for key "a.b.c", making maps on the way.
func setDotted(cfg map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	m := cfg
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

// readTail returns the last few KiB of a log file, for failure messages.
func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(tail(b, 8192))
}
