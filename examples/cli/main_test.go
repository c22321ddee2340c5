package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/memnet"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
)

// cliMainEnv, set in the environment, makes the test binary the command
// itself: the tests on a pseudo-terminal run it as its own process.
const cliMainEnv = "MEMCONNECT_CLI_MAIN"

// TestMain runs the command when cliMainEnv asks for it, and the tests
// otherwise, more at once than there are CPUs: many wait on the command
// run as a child on a pseudo-terminal, or on a browser's callback.
func TestMain(m *testing.M) {
	if os.Getenv(cliMainEnv) == "1" {
		main()
	}
	testkit.RunWaiting(m)
}

// env is a process environment for run.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// result is what one run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command to completion with no standard input.
func runCLI(t *testing.T, e env, args ...string) result {
	t.Helper()
	var stdout, stderr testkit.SyncBuffer
	code := run(context.Background(), args, e.lookup, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// newEnv returns an environment whose HOME is a fresh directory.
func newEnv(t *testing.T) env {
	home := t.TempDir()
	return env{"HOME": home}
}

// grantBlock is a host block holding tok, issued by srv, expiring at exp.
func grantBlock(srv *honchofake.Server, tok *oauth2.Token, exp time.Time) map[string]any {
	return map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": exp.Unix(), "clientId": srv.ClientID(),
			"tokenEndpoint": srv.TokenURL(), "scope": "write", "tokenType": "Bearer"},
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  env
		args []string
	}{
		{"no command", nil, nil},
		{"unknown command", nil, []string{"frobnicate"}},
		{"unknown flag", nil, []string{"status", "--nope"}},
		{"positional argument", nil, []string{"status", "extra"}},
		{"profile and config", nil, []string{"token", "--profile", "work", "--config", "x.json"}},
		{"invalid profile", nil, []string{"status", "--profile", "../etc"}},
		{"uppercase profile", nil, []string{"logout", "--profile", "Work"}},
		{"bad port", nil, []string{"login", "--port", "70000"}},
		{"flag without value", nil, []string{"login", "--profile"}},
		{"bad env URL", env{"HONCHO_OAUTH_TOKEN_URL": "not a url"}, []string{"status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			for k, v := range tt.env {
				e[k] = v
			}
			r := runCLI(t, e, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if r.stderr == "" {
				t.Error("nothing on stderr")
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"status", "-h"}} {
		if r := runCLI(t, newEnv(t), args...); r.code != exitOK {
			t.Errorf("%v: exit %d", args, r.code)
		}
	}
}

func TestStatusLines(t *testing.T) {
	t.Parallel()
	valid := map[string]any{"apiKey": "hch-at-valid", "oauth": map[string]any{"refreshToken": "hch-rt-x",
		"expiresAt": time.Now().Add(57*time.Minute + 30*time.Second).Unix(), "clientId": "hermes-agent", "tokenEndpoint": "https://as.example/oauth/token"}}
	expired := map[string]any{"apiKey": "hch-at-old", "oauth": map[string]any{"refreshToken": "hch-rt-x",
		"expiresAt": time.Now().Add(-time.Minute).Unix(), "clientId": "hermes-agent", "tokenEndpoint": "https://as.example/oauth/token"}}
	tests := []struct {
		name   string
		config map[string]any // nil: no file
		args   []string
		want   string
	}{
		{"oauth", map[string]any{"hosts": map[string]any{"hermes": valid}}, nil, "Auth: OAuth (hermes-agent, token valid 57m)"},
		{"expired", map[string]any{"hosts": map[string]any{"hermes": expired}}, nil, "Auth: OAuth (hermes-agent, token expired, refreshes on next use)"},
		{"api key", map[string]any{"hosts": map[string]any{"hermes": map[string]any{"apiKey": "sk-0123456789abcd"}}}, nil, "Auth: API key (…abcd)"},
		{"root api key", map[string]any{"apiKey": "sk-0123456789wxyz"}, nil, "Auth: API key (…wxyz)"},
		{"other host", map[string]any{"hosts": map[string]any{"hermes": valid}}, []string{"--host", "elsewhere"}, "Auth: not connected"},
		{"empty file", map[string]any{}, nil, "Auth: not connected"},
		{"no file", nil, nil, "Auth: not connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			path := filepath.Join(e["HOME"], "honcho.json")
			if tt.config != nil {
				testkit.WriteJSON(t, path, tt.config)
			}
			r := runCLI(t, e, append([]string{"status", "--config", path}, tt.args...)...)
			want := exitOK
			if strings.HasSuffix(tt.want, "not connected") {
				want = exitReauth // as its help and the README say
			}
			if r.code != want {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, want, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if got := lines[len(lines)-1]; got != tt.want {
				t.Errorf("status says %q, want %q", got, tt.want)
			}
			if strings.Contains(r.stdout, "hch-at-") || strings.Contains(r.stdout, "0123456789") {
				t.Errorf("status printed a secret:\n%s", r.stdout)
			}
		})
	}
}

func TestStatusJSONAndProfiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hermes := filepath.Join(e["HOME"], "hermes-home")
	e["HERMES_HOME"] = hermes
	testkit.WriteJSON(t, filepath.Join(hermes, "profiles", "work", "honcho.json"), map[string]any{"hosts": map[string]any{
		"hermes_work": map[string]any{"apiKey": "sk-work-0123456789"},
	}})
	r := runCLI(t, e, "status", "--profile", "work", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &body); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	want := map[string]any{"provider": "honcho", "profile": "work", "supported": true, "connected": true,
		"auth": "apikey", "reauth_required": false, "token": nil, "flow": nil, "health": "ok"}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	if len(body) != len(want) {
		t.Errorf("body has keys %v", body)
	}
	if strings.Contains(r.stdout, "0123456789") {
		t.Error("the JSON holds the API key")
	}

	if r := runCLI(t, e, "status", "--profile", "missing"); r.code != exitFailed || r.stderr != "memconnect: There is no Hermes profile \"missing\": create it with Hermes first, or check --profile.\n" {
		t.Errorf("missing profile: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTokenRefreshRotatesAndPersists(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	e := newEnv(t)
	path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
	old := srv.IssueGrant("write")
	testkit.WriteJSON(t, path, map[string]any{"workspace": "w", "hosts": map[string]any{
		"hermes": grantBlock(srv, old, time.Now().Add(-time.Minute)),
		"other":  map[string]any{"apiKey": "keep-me"},
	}})

	r := runCLI(t, e, "token")
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	got := strings.TrimSpace(r.stdout)
	if got == old.AccessToken || !strings.HasPrefix(got, "hch-at-") || !srv.Active(got) {
		t.Fatalf("token printed %q, want a fresh active token", got)
	}
	if s := srv.Stats(); s.Refreshes != 1 || s.Replays != 0 {
		t.Errorf("server stats %+v, want one refresh and no replay", s)
	}
	cfg := testkit.ReadJSON(t, path)
	hb := testkit.HostBlock(cfg, "hermes")
	ob, _ := hb["oauth"].(map[string]any)
	if hb["apiKey"] != got || ob["refreshToken"] == old.RefreshToken || ob["refreshToken"] == "" {
		t.Errorf("rotation not persisted: %v", hb)
	}
	if testkit.HostBlock(cfg, "other")["apiKey"] != "keep-me" || cfg["workspace"] != "w" {
		t.Errorf("other keys lost: %v", cfg)
	}

	// A second run reuses the fresh token without a refresh.
	r = runCLI(t, e, "token")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != got || srv.Stats().Refreshes != 1 {
		t.Errorf("second run: exit %d token changed %v refreshes %d", r.code, strings.TrimSpace(r.stdout) != got, srv.Stats().Refreshes)
	}
}

func TestReauthRequiredExits3(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	e := newEnv(t)
	e["HERMES_HOME"] = filepath.Join(e["HOME"], "hh")
	if err := os.MkdirAll(filepath.Join(e["HERMES_HOME"], "profiles", "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e["HERMES_HOME"], "profiles", "work", "honcho.json")
	tok := srv.IssueGrant("write")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes_work": grantBlock(srv, tok, time.Now().Add(-time.Minute))}})
	srv.RevokeGrant(tok.RefreshToken)

	r := runCLI(t, e, "token", "--profile", "work")
	if r.code != exitReauth {
		t.Fatalf("token: exit %d, want %d; stderr:\n%s", r.code, exitReauth, r.stderr)
	}
	if r.stdout != "" || !strings.Contains(r.stderr, "memconnect login --profile work") {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, tok.RefreshToken) || strings.Contains(r.stderr, tok.AccessToken) {
		t.Error("stderr holds a token")
	}
}

func TestStatusReauthLine(t *testing.T) {
	t.Parallel()
	// The dead-grant state lives in one process; status in the same
	// process after a failed refresh must say so and exit 3.
	srv := honchofake.NewServer()
	defer srv.Close()
	e := newEnv(t)
	path := filepath.Join(e["HOME"], "honcho.json")
	tok := srv.IssueGrant("write")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": grantBlock(srv, tok, time.Now().Add(-time.Minute))}})
	srv.RevokeGrant(tok.RefreshToken)

	var stdout, stderr testkit.SyncBuffer
	c := &cli{lookupEnv: e.lookup, stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	s, err := c.setup(&common{config: path})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := s.conn.TokenSource(s.profile, s.name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.TokenContext(context.Background()); err == nil {
		t.Fatal("refresh of a revoked grant succeeded")
	}
	rep, err := s.conn.Status(context.Background(), s.profile, s.name)
	if err != nil {
		t.Fatal(err)
	}
	want := "Auth: OAuth (hermes-agent, re-authentication required — run: memconnect login)"
	if got := c.authLine(rep); got != want {
		t.Errorf("authLine = %q, want %q", got, want)
	}
}

// startLogin runs login in the background. It returns a channel of the
// lines printed on stdout and one that yields the result.
func startLogin(ctx context.Context, e env, stdin io.Reader, args ...string) (<-chan string, <-chan result, *testkit.SyncBuffer) {
	return startLoginOn(ctx, nil, e, stdin, args...)
}

// startLoginOn is startLogin with the CLI's HTTP client (nil: the default).
func startLoginOn(ctx context.Context, client *http.Client, e env, stdin io.Reader, args ...string) (<-chan string, <-chan result, *testkit.SyncBuffer) {
	pr, pw := io.Pipe()
	lines := make(chan string, 100)
	var all, stderr testkit.SyncBuffer
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(io.TeeReader(pr, &all))
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	done := make(chan result, 1)
	go func() {
		c := newCLI(e.lookup, stdin, pw, &stderr)
		c.client = client
		code := c.run(ctx, append([]string{"login"}, args...), pw, &stderr)
		pw.Close()
		done <- result{code: code, stdout: all.String(), stderr: stderr.String()}
	}()
	return lines, done, &all
}

// terminal is a stdin or stderr that says it is a terminal.
type terminal struct{ io.Reader }

func (terminal) Terminal() bool { return true }

var linkRE = regexp.MustCompile(`https?://\S+`)

// nextLink returns the first URL printed.
func nextLink(t *testing.T, lines <-chan string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("login ended without printing a link")
			}
			if m := linkRE.FindString(l); m != "" {
				return m
			}
		case <-timeout:
			t.Fatal("no link printed")
		}
	}
}

// consentLogin runs login with stdin, approves (or denies) at srv's consent
// page, follows the redirect and returns how login ended.
func consentLogin(t *testing.T, srv *honchofake.Server, e env, stdin io.Reader, approve bool, args ...string) result {
	t.Helper()
	lines, done, _ := startLogin(context.Background(), e, stdin, args...)
	target, err := srv.Consent(context.Background(), srv.Client(), nextLink(t, lines), approve)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(target.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	go func() {
		for range lines {
		}
	}()
	return waitResult(t, done)
}

func waitResult(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("login did not finish")
	}
	return result{}
}

func loginEnv(t *testing.T, srv *honchofake.Server) (env, []string) {
	e := newEnv(t)
	return e, []string{"--no-browser", "--port", "0", "--authorize-url", srv.AuthorizeURL(), "--token-url", srv.TokenURL()}
}

func TestLoginNoBrowser(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer(honchofake.WithGrantConfig(map[string]any{"peerName": "alice", "workspace": "from-consent"}))
	defer srv.Close()
	e, args := loginEnv(t, srv)
	path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
	testkit.WriteJSON(t, path, map[string]any{"workspace": "mine", "hosts": map[string]any{"other": map[string]any{"apiKey": "keep"}}})

	r := consentLogin(t, srv, e, terminal{strings.NewReader("bob\n")}, true, args...)
	q := srv.LastAuthorizeQuery()
	if q.Get("source") != "hermes-cli" || q.Get("config_path") != "~/.hermes/honcho.json" {
		t.Errorf("authorize query %v", q)
	}
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "Peer name [alice]: ") {
		t.Errorf("no peer prompt in:\n%s", r.stdout)
	}
	cfg := testkit.ReadJSON(t, path)
	if cfg["peerName"] != "bob" {
		t.Errorf("peerName = %v, want bob", cfg["peerName"])
	}
	if cfg["workspace"] != "from-consent" {
		t.Errorf("workspace = %v; want the consent's, merged as the router merges it", cfg["workspace"])
	}
	hb := testkit.HostBlock(cfg, "hermes")
	if at, _ := hb["apiKey"].(string); !srv.Active(at) {
		t.Errorf("no active grant stored: %v", hb)
	}
	if testkit.HostBlock(cfg, "other")["apiKey"] != "keep" {
		t.Error("another host was lost")
	}
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, "hch-at-") || strings.Contains(out, "hch-rt-") {
			t.Errorf("login printed a token:\n%s", out)
		}
	}

	// status, then logout revokes at the server and removes the grant.
	if r := runCLI(t, e, "status"); !strings.Contains(r.stdout, "Auth: OAuth (hermes-agent, token valid 59m)") &&
		!strings.Contains(r.stdout, "Auth: OAuth (hermes-agent, token valid 1h00m)") {
		t.Errorf("status after login:\n%s", r.stdout)
	}
	r = runCLI(t, e, "logout", "--token-url", srv.TokenURL())
	if r.code != exitOK || !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("logout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if srv.Stats().Revocations != 1 {
		t.Errorf("server saw %d revocations", srv.Stats().Revocations)
	}
	cfg = testkit.ReadJSON(t, path)
	if hb := testkit.HostBlock(cfg, "hermes"); hb["apiKey"] != nil || hb["oauth"] != nil {
		t.Errorf("grant left after logout: %v", hb)
	}
	if cfg["peerName"] != "bob" || testkit.HostBlock(cfg, "other")["apiKey"] != "keep" {
		t.Errorf("logout lost other keys: %v", cfg)
	}
	if r := runCLI(t, e, "logout"); r.code != exitOK || r.stdout != "Not signed in to Honcho; nothing to remove.\n" {
		t.Errorf("second logout: exit %d %q, want 0, saying there was nothing to remove", r.code, r.stdout)
	}
}

func TestLoginCancelFreesPort(t *testing.T) {
	// Not parallel: a parallel test's listener could take the freed port.
	srv := honchofake.NewServer()
	defer srv.Close()
	e, args := loginEnv(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines, done, _ := startLogin(ctx, e, strings.NewReader(""), args...)
	link := nextLink(t, lines)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	redirect, err := url.Parse(u.Query().Get("redirect_uri"))
	if err != nil || redirect.Hostname() != "127.0.0.1" {
		t.Fatalf("redirect_uri %q", u.Query().Get("redirect_uri"))
	}
	cancel() // Ctrl-C
	go func() {
		for range lines {
		}
	}()
	r := waitResult(t, done)
	if r.code != exitInterrupted || !strings.Contains(r.stderr, "cancelled") {
		t.Errorf("exit %d stderr %q, want %d", r.code, r.stderr, exitInterrupted)
	}
	if c, err := net.Dial("tcp", redirect.Host); err == nil {
		c.Close()
		t.Errorf("the loopback port %s still accepts connections", redirect.Host)
	}
}

func TestLoginDevice(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		n := memnet.New()
		srv := honchofake.NewServer(oauthfake.WithNetwork(n))
		defer srv.Close()
		e, args := loginEnv(t, srv)
		path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
		lines, done, _ := startLoginOn(context.Background(), n.Client(), e, strings.NewReader(""), append(args, "--device")...)
		r := approveDeviceLogin(t, srv, lines, done)
		if r.code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, srv.DeviceVerificationURL()) {
			t.Errorf("verification link not printed:\n%s", r.stdout)
		}
		// Not a terminal: a line a minute, never a carriage return.
		if n := strings.Count(r.stderr, "code expires in "); n != 1 || strings.Contains(r.stderr, "\r") {
			t.Errorf("countdown on a non-terminal stderr: %d lines, want 1 and no \\r:\n%q", n, r.stderr)
		}
		if at, _ := testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["apiKey"].(string); !srv.Active(at) {
			t.Error("no active grant stored")
		}
	})
}

// approveDeviceLogin approves the user code a device login prints, at srv,
// and returns the login's result.
func approveDeviceLogin(t *testing.T, srv *oauthfake.Server, lines <-chan string, done <-chan result) result {
	t.Helper()
	var code string
	timeout := time.After(10 * time.Second)
	for code == "" {
		select {
		case l := <-lines:
			if prev := strings.TrimSpace(l); prev != "" && !strings.Contains(prev, " ") && !strings.Contains(prev, "://") {
				code = prev
			}
		case <-timeout:
			t.Fatal("no user code printed")
		}
	}
	if err := srv.ApproveDevice(code); err != nil {
		t.Fatalf("ApproveDevice(%q): %v", code, err)
	}
	go func() {
		for range lines {
		}
	}()
	return waitResult(t, done)
}

// TestLoginDeviceMCP: login --device works for an MCP-style provider whose
// authorization server announces the device flow, with the resource
// indicator (the fake refuses a token request without it).
func TestLoginDeviceMCP(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		n := memnet.New()
		srv := oauthfake.NewMCPServer(oauthfake.WithMCPNetwork(n))
		defer srv.Close()
		e := newEnv(t)
		lines, done, _ := startLoginOn(context.Background(), n.Client(), e, strings.NewReader(""), "--no-browser", "--device", "--provider", "devmem="+srv.URL)
		r := approveDeviceLogin(t, srv.AS, lines, done)
		if r.code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		block := testkit.ReadJSON(t, filepath.Join(e["HOME"], ".hermes", "memconnect.json"))["servers"].(map[string]any)["devmem"].(map[string]any)
		if o, _ := block["oauth"].(map[string]any); o == nil || o["resource"] != srv.URL {
			t.Errorf("grant = %v; want it with its resource", block)
		}
	})
}

// token on a profile connected with an API key prints the key, from the
// host block, the root of the config or HONCHO_API_KEY, and exits 0.
func TestTokenAPIKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		config map[string]any
		env    string
	}{
		{"host", map[string]any{"hosts": map[string]any{"hermes": map[string]any{"apiKey": "sk-host-0123456789"}}}, ""},
		{"root", map[string]any{"apiKey": "sk-root-0123456789"}, ""},
		{"env", map[string]any{}, "sk-env-0123456789"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			testkit.WriteJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json"), tt.config)
			if tt.env != "" {
				e["HONCHO_API_KEY"] = tt.env
			}
			r := runCLI(t, e, "token")
			if want := "sk-" + tt.name + "-0123456789\n"; r.code != exitOK || r.stdout != want {
				t.Errorf("token: exit %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, want)
			}
			if tt.name == "host" {
				// The profile's own key is signed out of as a key.
				if r := runCLI(t, e, "logout"); r.code != exitOK || r.stdout != "Signed out of Honcho: the API key was removed from the config.\n" {
					t.Errorf("logout of an API key: exit %d %q", r.code, r.stdout)
				}
			}
		})
	}
}

// TestTokenNotRefreshable: when the server cannot be reached, the library
// fails open, but the CLI does not print a token that is already expired.
func TestTokenNotRefreshable(t *testing.T) {
	t.Parallel()
	srv, tok, e, _ := expiredGrant(t)
	// The token endpoint refuses the request without rejecting the grant:
	// a transient failure, which is not retried since it is no 5xx.
	srv.FailNextTokenRequests(1, http.StatusBadRequest, "invalid_request")

	r := runCLI(t, e, "token")
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitFailed, r.stderr)
	}
	if r.stdout != "" || !strings.Contains(r.stderr, "could not be refreshed") {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, tok.AccessToken) || strings.Contains(r.stderr, tok.RefreshToken) {
		t.Error("stderr holds a token")
	}
}

// A grant another process found rejected: status and token say that a
// sign-in is needed and exit 3, without calling the server.
func TestReauthRecordedByAnotherProcess(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	tok := srv.IssueGrant("write")
	e := newEnv(t)
	block := grantBlock(srv, tok, time.Now().Add(-time.Minute))
	sum := sha256.Sum256([]byte(tok.RefreshToken))
	block["oauthRejected"] = map[string]any{"refreshTokenSha256": hex.EncodeToString(sum[:]), "error": "invalid_grant"}
	testkit.WriteJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json"), map[string]any{"hosts": map[string]any{"hermes": block}})
	for _, cmd := range []string{"status", "token"} {
		r := runCLI(t, e, cmd)
		if r.code != exitReauth || !strings.Contains(r.stdout+r.stderr, "login") {
			t.Errorf("%s: exit %d, want %d and a hint to log in; stdout %q stderr %q", cmd, r.code, exitReauth, r.stdout, r.stderr)
		}
	}
	if n := srv.Stats().TokenRequests; n != 0 {
		t.Errorf("%d token requests; a recorded rejection needs none", n)
	}
}

// A refresh answered with a token that had already expired (a negative
// expires_in) is stored, and token says what happened and exits 1.
func TestTokenAlreadyExpiredByTheServer(t *testing.T) {
	t.Parallel()
	srv, _, e, path := expiredGrant(t)
	srv.SetTokenHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"hch-at-stale","refresh_token":"hch-rt-next","token_type":"Bearer","expires_in":-30}`)
		return true
	})
	r := runCLI(t, e, "token")
	if r.code != exitFailed || r.stdout != "" || !strings.Contains(r.stderr, "already expired") {
		t.Fatalf("exit %d stdout %q stderr %q; want 1 and a word on the expired token", r.code, r.stdout, r.stderr)
	}
	oa := testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["oauth"].(map[string]any)
	if oa["refreshToken"] != "hch-rt-next" {
		t.Errorf("the rotation was not stored: %v", oa)
	}
}

// A run never ends with exit 0 holding a rotation only in its memory: when
// the new grant cannot be written (here the file was broken by someone who
// did not take the lock, while the refresh was under way), token prints
// nothing and fails, and the rotation waits in the journal.
func TestTokenRotationNotStoredFails(t *testing.T) {
	t.Parallel()
	srv, tok, e, path := expiredGrant(t)
	srv.SetTokenHook(func(w http.ResponseWriter, r *http.Request) bool {
		os.WriteFile(path, []byte("{not json"), 0o600)
		return false // the server rotates as usual
	})
	r := runCLI(t, e, "token")
	if r.code == exitOK || r.stdout != "" || !strings.Contains(r.stderr, "not stored") {
		t.Fatalf("exit %d stdout %q stderr %q; want a failure saying the grant is not stored", r.code, r.stdout, r.stderr)
	}
	if srv.Stats().Refreshes != 1 {
		t.Fatalf("refreshes = %d", srv.Stats().Refreshes)
	}
	j, err := os.ReadFile(path + ".rotation")
	if err != nil || !strings.Contains(string(j), "refresh_token") {
		t.Errorf("the rotation is not in the journal: %v", err)
	}
	if strings.Contains(r.stderr, tok.RefreshToken) {
		t.Error("stderr holds a token")
	}
}

// token and status read a server's shared store with --store: a script on
// a server gets a fresh token of the grant the instances share.
func TestStoreFlag(t *testing.T) {
	t.Parallel()
	url := fixture.PostgresURL(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	key := "k1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	k, err := pgstore.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	tok := srv.IssueGrant("write")
	if _, err := oauth.NewGrants(st).Install(t.Context(), "honcho/default", tok, oauth.Grant{ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL()}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	r := runCLI(t, e, "token", "--store", url, "--store-key", key)
	if r.code != exitOK || strings.TrimSpace(r.stdout) != tok.AccessToken {
		t.Fatalf("token --store: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI(t, e, "status", "--json", "--store", url, "--store-key", key)
	if r.code != exitOK || !strings.Contains(r.stdout, `"connected": true`) || !strings.Contains(r.stdout, `"auth": "oauth"`) {
		t.Fatalf("status --store: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, e, "token", "--store", url); r.code != exitUsage || !strings.Contains(r.stderr, "--store-key") {
		t.Errorf("--store without a key: exit %d, stderr %q", r.code, r.stderr)
	}
	// status names the store it read, not a config file it did not.
	r = runCLI(t, e, "status", "--store", url, "--store-key", key)
	if first, _, _ := strings.Cut(r.stdout, "\n"); r.code != exitOK || !strings.Contains(first, "PostgreSQL database ") || strings.Contains(first, "honcho.json") {
		t.Errorf("status --store: exit %d, first line %q", r.code, first)
	}
	// logout --store removes the shared grant (and revokes it); a second
	// run has nothing to remove; nothing else was touched.
	other := srv.IssueGrant("write")
	if _, err := oauth.NewGrants(st).Install(t.Context(), "honcho/work", other, oauth.Grant{ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL()}); err != nil {
		t.Fatal(err)
	}
	e["MEMCONNECT_STORE"], e["MEMCONNECT_STORE_KEY"] = url, key
	r = runCLI(t, e, "logout", "--token-url", srv.TokenURL())
	if r.code != exitOK || !strings.Contains(r.stdout, "removed from the shared store") {
		t.Fatalf("logout --store: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if c, err := st.Credentials(t.Context(), "honcho/default"); err != nil || c.Grant != nil {
		t.Fatalf("after logout --store: %+v, %v; want the grant gone", c.Grant, err)
	}
	if r := runCLI(t, e, "logout"); r.code != exitOK || r.stdout != "Not signed in to Honcho; nothing to remove.\n" {
		t.Errorf("a second logout --store: exit %d %q", r.code, r.stdout)
	}
	if c, err := st.Credentials(t.Context(), "honcho/work"); err != nil || c.Grant == nil || c.Grant.AccessToken != other.AccessToken {
		t.Errorf("another profile's grant after logout: %+v, %v; want it untouched", c.Grant, err)
	}
	delete(e, "MEMCONNECT_STORE")
	delete(e, "MEMCONNECT_STORE_KEY")
	// A store URL at which no database answers: said so, naming where,
	// never the password, and not as a schema to migrate.
	r = runCLI(t, e, "token", "--store", "postgres://memconnect:pw-secret-123@127.0.0.1:1/memconnect?connect_timeout=5", "--store-key", key)
	if r.code == exitOK || !strings.Contains(r.stderr, "127.0.0.1:1") || strings.Contains(r.stderr, "pw-secret-123") || strings.Contains(r.stderr, "migrat") {
		t.Errorf("a store that does not answer: exit %d, stderr %q; want the database named, no password, no migration", r.code, r.stderr)
	}
	// A key with the right ID and other bytes is named as the likely cause.
	wrong := "k1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("w", 32)))
	r = runCLI(t, e, "token", "--store", url, "--store-key", wrong, "--profile", "work")
	if r.code != exitFailed || !strings.Contains(r.stderr, "This key does not open what key k1 sealed: is it the right key?") || strings.Contains(r.stderr, "changed") {
		t.Errorf("a wrong key named k1: exit %d, stderr %q", r.code, r.stderr)
	}
}

// expiredGrant is a Hermes home whose default profile holds an expired
// grant of a fresh server: the server, the grant's token, the environment
// and the config file.
func expiredGrant(t *testing.T) (*honchofake.Server, *oauth2.Token, env, string) {
	t.Helper()
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	tok := srv.IssueGrant("write")
	e := newEnv(t)
	path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": grantBlock(srv, tok, time.Now().Add(-time.Minute))}})
	return srv, tok, e, path
}

// Without a terminal login asks nothing: a peer name the user set stays,
// and the consent's name is taken only when none is set.
func TestLoginNonInteractive(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, set, want string
	}{
		{"name set", "carol", "carol"},
		{"none set", "", "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := honchofake.NewServer(honchofake.WithGrantConfig(map[string]any{"peerName": "alice"}))
			defer srv.Close()
			e, args := loginEnv(t, srv)
			path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
			cfg := map[string]any{"workspace": "mine"}
			if tt.set != "" {
				cfg["peerName"] = tt.set
			}
			testkit.WriteJSON(t, path, cfg)
			r := consentLogin(t, srv, e, strings.NewReader("bob\n"), true, args...)
			if r.code != exitOK || strings.Contains(r.stdout, "Peer name [") {
				t.Fatalf("exit %d; want 0 and no prompt:\n%s%s", r.code, r.stdout, r.stderr)
			}
			if got := testkit.ReadJSON(t, path)["peerName"]; got != tt.want {
				t.Errorf("peerName = %v, want %s", got, tt.want)
			}
		})
	}
}

// Errors read as sentences, with no log line before them; -v adds the
// detail.
func TestErrorsAsSentences(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	e, args := loginEnv(t, srv)
	r := consentLogin(t, srv, e, strings.NewReader(""), false, args...)
	if r.code != exitFailed || !strings.HasSuffix(r.stderr, "\nmemconnect: Sign-in was denied.\n") || strings.Contains(r.stderr, "flow:") || strings.Contains(r.stderr, "oauth:") {
		t.Errorf("denied login: exit %d, stderr:\n%s\nwant 1 and the sentence alone", r.code, r.stderr)
	}
	r = consentLogin(t, srv, e, strings.NewReader(""), false, append(args, "-v")...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "memconnect: -v: flow: access_denied: Sign-in was denied") || !strings.HasSuffix(r.stderr, "\nmemconnect: Sign-in was denied.\n") {
		t.Errorf("denied login with -v: stderr:\n%s\nwant the chain, then the sentence", r.stderr)
	}
	// A token that cannot be refreshed says so in one sentence; the
	// library's warning is behind -v.
	home := e["HOME"]
	testkit.WriteJSON(t, filepath.Join(home, ".hermes", "honcho.json"), map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": "hch-at-x", "oauth": map[string]any{"refreshToken": "hch-rt-x", "expiresAt": time.Now().Add(-time.Hour).Unix(),
			"clientId": srv.ClientID(), "tokenEndpoint": srv.TokenURL(), "scope": "write"}}}})
	srv.FailNextTokenRequests(2, http.StatusBadRequest, "temporarily_unavailable")
	r = runCLI(t, e, "token")
	if r.code != exitFailed || strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "WRN") {
		t.Errorf("token: exit %d, stderr:\n%s\nwant one sentence", r.code, r.stderr)
	}
	if r = runCLI(t, e, "token", "-v"); !strings.Contains(r.stderr, "WRN") {
		t.Errorf("token -v: stderr:\n%s\nwant the warning", r.stderr)
	}
}

// The exit codes are those --help lists.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	help := runCLI(t, e, "--help")
	for _, tt := range []struct {
		args  []string
		code  int
		match string
	}{
		{[]string{"token"}, exitReauth, "memconnect: Not signed in to Honcho. Sign in: memconnect login\n"},
		{[]string{"status"}, exitReauth, ""},
		{[]string{"logout"}, exitOK, ""},
		{[]string{"status", "--nope"}, exitUsage, "-nope"},
	} {
		r := runCLI(t, e, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.match) {
			t.Errorf("%v: exit %d %q, want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.match)
		}
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^  %d +\S`, tt.code)).MatchString(help.stdout) {
			t.Errorf("--help does not list exit status %d:\n%s", tt.code, help.stdout)
		}
	}
	if !strings.Contains(help.stdout, "130  interrupted") {
		t.Errorf("--help does not list 130:\n%s", help.stdout)
	}
}

// Each command's -h says what it does and lists only the flags it takes.
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cmd         string
		does        string
		has, hasNot []string
	}{
		{"login", "connect the profile to a memory provider", []string{"-device", "-port", "-authorize-url", "-api-key", "-provider", "-v"}, []string{"-store", "-json", "-revocation-url"}},
		{"status", "show how the profile authenticates", []string{"-json", "-store"}, []string{"-authorize-url", "-device", "-port"}},
		{"token", "print a fresh access token", []string{"-store", "-profile", "-server", "-session-token"}, []string{"-authorize-url", "-json", "-revocation-url"}},
		{"logout", "revoke the grant", []string{"-revocation-url", "-store"}, []string{"-device", "-authorize-url"}},
	} {
		r := runCLI(t, newEnv(t), tt.cmd, "-h")
		if r.code != exitOK || !strings.HasPrefix(r.stderr, "usage: memconnect "+tt.cmd) || !strings.Contains(r.stderr, tt.does) {
			t.Errorf("%s -h: exit %d:\n%s", tt.cmd, r.code, r.stderr)
		}
		listed := func(f string) bool { return regexp.MustCompile(`(?m)^  ` + f + `\s`).MatchString(r.stderr) }
		for _, f := range tt.has {
			if !listed(f) {
				t.Errorf("%s -h lacks %s", tt.cmd, f)
			}
		}
		for _, f := range tt.hasNot {
			if listed(f) {
				t.Errorf("%s -h lists %s, which it does not use", tt.cmd, f)
			}
		}
	}
}

// Without a terminal, login over a sign-in that works refuses and says
// how to replace it; --force replaces it without asking.
func TestLoginAlreadySignedIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := filepath.Join(e["HOME"], ".hermes", "honcho.json")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": map[string]any{"apiKey": "hch-v2-old-0123456789"}}})
	var stdout, stderr testkit.SyncBuffer
	code := run(context.Background(), []string{"login", "--api-key"}, e.lookup, strings.NewReader("hch-v2-new-0123456789\n"), &stdout, &stderr)
	if want := "memconnect: This profile is already signed in to Honcho with an API key. Nothing was changed; to replace the sign-in, run the same command with --force.\n"; code != exitFailed || stderr.String() != want {
		t.Errorf("exit %d %q, want %d %q", code, stderr.String(), exitFailed, want)
	}
	if got := testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["apiKey"]; got != "hch-v2-old-0123456789" {
		t.Errorf("apiKey = %v, want the old one kept", got)
	}
	code = run(context.Background(), []string{"login", "--api-key", "--force"}, e.lookup, strings.NewReader("hch-v2-new-0123456789\n"), &stdout, &stderr)
	if got := testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["apiKey"]; code != exitOK || got != "hch-v2-new-0123456789" {
		t.Errorf("--force: exit %d, apiKey %v", code, got)
	}
}

// TestTokenFromServer: token --server asks a router's token route with its
// session token: no store key, no config file. A profile without a grant
// exits 3 and says to sign in; a wrong session token is an error naming
// the server's answer.
func TestTokenFromServer(t *testing.T) {
	t.Parallel()
	const static = "host-token-0123456789"
	fx := fixture.NewEnv(t, fixture.WithSessionToken(static))
	tok := fx.AS.IssueGrant("write")
	testkit.WriteJSON(t, filepath.Join(fx.Root, "profiles", "work", "honcho.json"), map[string]any{"hosts": map[string]any{
		"hermes_work": grantBlock(fx.AS, tok, time.Now().Add(time.Hour))}})
	e := newEnv(t)
	r := runCLI(t, e, "token", "--server", fx.Base, "--session-token", static, "--profile", "work")
	if r.code != exitOK || r.stdout != tok.AccessToken+"\n" {
		t.Fatalf("token --server: exit %d %q %q; want the access token", r.code, r.stdout, r.stderr)
	}
	e["MEMCONNECT_SERVER"], e["MEMCONNECT_SESSION_TOKEN"] = fx.Base, static
	if r := runCLI(t, e, "token", "--profile", "default"); r.code != exitReauth || !strings.Contains(r.stderr, "memconnect login") {
		t.Errorf("not connected: exit %d %q; want 3 and the way to sign in", r.code, r.stderr)
	}
	if r := runCLI(t, e, "token", "--profile", "work", "--session-token", "wrong"); r.code == exitOK || !strings.Contains(r.stderr, "401") {
		t.Errorf("a wrong session token: exit %d %q; want an error with the server's 401", r.code, r.stderr)
	}
	if fx.AS.Stats().Refreshes != 0 {
		t.Error("a fresh token was refreshed")
	}
}

// TestLogoutWithoutRevocation: logout from a server that cannot revoke
// says in one line that the sign-in was removed here only, and until when
// its access token works.
func TestLogoutWithoutRevocation(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	noMetadata := httptest.NewServer(http.NotFoundHandler())
	defer noMetadata.Close()
	e := newEnv(t)
	e["HONCHO_OAUTH_ISSUER"] = noMetadata.URL
	exp := time.Now().Add(time.Hour)
	testkit.WriteJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json"), map[string]any{
		"hosts": map[string]any{"hermes": grantBlock(srv, srv.IssueGrant("write"), exp)}})
	r := runCLI(t, e, "logout", "--token-url", srv.TokenURL())
	want := "The sign-in was removed here, but Honcho offers no way to revoke it: its access token works until " +
		exp.UTC().Format("2006-01-02 15:04") + " UTC, and its refresh token until Honcho expires it.\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("logout: exit %d\n%q\nwant\n%q", r.code, r.stdout, want)
	}
}

// TestCLIAndRouterWriteTheSameMembers: one account's sign-in through the
// CLI and through the router leaves the same members in honcho.json (the
// consent's config merged alike; the CLI asks for the peer name itself and
// keeps the consent's when nobody can answer).
func TestCLIAndRouterWriteTheSameMembers(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer(honchofake.WithGrantConfig(map[string]any{"peerName": "alice", "workspace": "ws", "environment": "production"}))
	defer srv.Close()
	e, args := loginEnv(t, srv)
	if r := consentLogin(t, srv, e, strings.NewReader(""), true, args...); r.code != exitOK {
		t.Fatalf("CLI login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	byCLI := testkit.ReadJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json"))

	root := t.TempDir()
	reg, err := provider.NewRegistry(honcho.New(honcho.WithAuthorizeURL(srv.AuthorizeURL()), honcho.WithTokenURL(srv.TokenURL()), honcho.WithUserHome(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	fm := flow.NewManager(flow.Config{LoopbackAddr: "127.0.0.1:0"})
	defer fm.Close()
	conn := &provider.Connector{Registry: reg, Profiles: provider.HermesProfiles{Root: root}, Flows: fm, CallbackBaseURL: "http://127.0.0.1:9/api/memory"}
	rep, err := conn.Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := srv.Consent(t.Context(), srv.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	if fl, err := conn.Callback(t.Context(), "default", "honcho", target.Query()); err != nil || fl.State != flow.StateConnected {
		t.Fatalf("router sign-in: %+v, %v", fl, err)
	}
	byRouter := testkit.ReadJSON(t, filepath.Join(root, "honcho.json"))
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
	if !slices.Equal(keys(byCLI), keys(byRouter)) || !slices.Equal(keys(testkit.HostBlock(byCLI, "hermes")), keys(testkit.HostBlock(byRouter, "hermes"))) {
		t.Errorf("the CLI wrote %v (host %v); the router %v (host %v)", keys(byCLI), keys(testkit.HostBlock(byCLI, "hermes")),
			keys(byRouter), keys(testkit.HostBlock(byRouter, "hermes")))
	}
	for _, k := range []string{"peerName", "workspace", "environment"} {
		if byCLI[k] != byRouter[k] {
			t.Errorf("%s: the CLI wrote %v, the router %v", k, byCLI[k], byRouter[k])
		}
	}
}

// TestLoginSaysThePortMoved: with the loopback port asked for taken, login
// says it listens on another one.
func TestLoginSaysThePortMoved(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	e, args := loginEnv(t, srv)
	for i, a := range args {
		if a == "--port" {
			args[i+1] = port
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	lines, done, _ := startLogin(ctx, e, strings.NewReader(""), args...)
	nextLink(t, lines)
	cancel()
	go func() {
		for range lines {
		}
	}()
	if r := waitResult(t, done); !strings.Contains(r.stderr, "Port "+port+" is taken, so the sign-in listens on port ") {
		t.Errorf("stderr = %q; want the moved port said", r.stderr)
	}
}
