package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/provider/honcho"
)

// TestCLILoginStatusLogout signs in with `memconnect login --no-browser
// --port 0`, following the printed link through Hydra's login and consent
// as a browser would; then `memconnect status --json` reports the grant and
// `memconnect logout` revokes it at Hydra (the revocation endpoint found by
// discovery) and removes it from honcho.json.
func TestCLILoginStatusLogout(t *testing.T) {
	h := StartHydra(t)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect)
	cli := cliBinary(t)
	home := hermesHome(t)
	env := cliEnv(h, t.TempDir(), home)

	redirect := cliLogin(t, h, cli, env, "--port", "0")
	if redirect.Hostname() != "127.0.0.1" || redirect.Path != "/callback" || redirect.Port() == "" || redirect.Port() == "0" {
		t.Errorf("redirect_uri = %s, want http://127.0.0.1:<port>/callback", redirect)
	}
	g := readGrant(t, configPath(home), honcho.DefaultHost)
	if g.ClientID != e2eClientID || g.TokenEndpoint != h.TokenURL {
		t.Errorf("stored grant: client %q endpoint %q, want %q %q", g.ClientID, g.TokenEndpoint, e2eClientID, h.TokenURL)
	}
	assertActive(t, h, "access token", g.AccessToken, true)
	assertActive(t, h, "refresh token", g.RefreshToken, true)

	out := runCLIOK(t, cli, env, "status", "--json")
	var st struct {
		Connected bool   `json:"connected"`
		Auth      string `json:"auth"`
		Token     struct {
			ClientID  string `json:"client_id"`
			Scope     string `json:"scope"`
			ExpiresIn int64  `json:"expires_in"`
		} `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if !st.Connected || st.Auth != "oauth" || st.Token.ClientID != e2eClientID || st.Token.ExpiresIn <= 0 {
		t.Errorf("status --json = %s, want connected with oauth and client %q", out, e2eClientID)
	}
	if !hasScopes(st.Token.Scope, "offline_access", "write") {
		t.Errorf("status scope = %q, want offline_access and write", st.Token.Scope)
	}
	if strings.Contains(out, "ory_") {
		t.Errorf("status printed a token:\n%s", out)
	}

	out = runCLIOK(t, cli, env, "logout")
	if !strings.Contains(out, "revoked at the server") {
		t.Errorf("logout said %q, want that the grant was revoked at the server", out)
	}
	assertActive(t, h, "refresh token after logout", g.RefreshToken, false)
	assertActive(t, h, "access token after logout", g.AccessToken, false)
	if _, err := readGrantFile(configPath(home), honcho.DefaultHost); err == nil {
		t.Error("the grant is still in honcho.json after logout")
	}
}

// TestCLILoginFallsBackWhen8765IsTaken: with the registered port 8765 taken,
// `memconnect login` listens on an OS-assigned port instead, and Hydra, which
// lets a loopback IP redirect URI change its port (RFC 8252 section 7.3),
// accepts it. This is the one test that touches port 8765: it holds the port
// if it can; if something else holds it, the fallback is tested all the same.
func TestCLILoginFallsBackWhen8765IsTaken(t *testing.T) {
	h := StartHydra(t)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect)
	cli := cliBinary(t)
	home := hermesHome(t)
	if ln, err := net.Listen("tcp", oauth8765); err == nil {
		t.Cleanup(func() { ln.Close() })
	} else {
		t.Logf("%s is already taken (%v); testing the fallback anyway", oauth8765, err)
	}
	redirect := cliLogin(t, h, cli, cliEnv(h, t.TempDir(), home)) // the default --port 8765
	if redirect.Port() == "8765" || redirect.Hostname() != "127.0.0.1" {
		t.Errorf("redirect_uri = %s, want 127.0.0.1 on a port other than 8765", redirect)
	}
	assertActive(t, h, "access token", readGrant(t, configPath(home), honcho.DefaultHost).AccessToken, true)
}

// oauth8765 is the loopback address the Honcho client is registered with.
const oauth8765 = "127.0.0.1:8765"

// cliLogin runs `memconnect login --no-browser` with extra flags, follows the
// link it prints through Hydra with a cookie-jar client, and waits for the
// command to succeed. It returns the redirect URI of the link.
func cliLogin(t *testing.T, h *Hydra, cli string, env []string, flags ...string) *url.URL {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append([]string{"login", "--no-browser"}, flags...)...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	defer func() {
		if !waited {
			cancel()
			_ = cmd.Wait()
		}
	}()

	// The link is the first line that parses as an http URL.
	var printed strings.Builder
	r := bufio.NewReader(stdout)
	var link *url.URL
	for link == nil {
		line, err := r.ReadString('\n')
		printed.WriteString(line)
		if u, perr := url.Parse(strings.TrimSpace(line)); perr == nil && (u.Scheme == "http" || u.Scheme == "https") {
			link = u
		}
		if err != nil && link == nil {
			t.Fatalf("login printed no link: %v\nstdout:\n%s\nstderr:\n%s", err, printed.String(), stderr.String())
		}
	}
	if got := link.Scheme + "://" + link.Host + link.Path; got != h.AuthURL {
		t.Fatalf("link %s is not Hydra's authorization endpoint %s", got, h.AuthURL)
	}
	q := link.Query()
	if q.Get("client_id") != e2eClientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		t.Errorf("link query = %v, want our client and PKCE S256", q)
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		t.Fatalf("redirect_uri: %v", err)
	}

	if cb := authorize(t, link.String()); cb.Get("code") == "" {
		t.Fatalf("the callback got no code: %v", cb)
	}
	rest, _ := io.ReadAll(r)
	printed.Write(rest)
	err = cmd.Wait()
	waited = true
	if err != nil {
		t.Fatalf("memconnect login: %v\nstdout:\n%s\nstderr:\n%s", err, printed.String(), stderr.String())
	}
	if !strings.Contains(printed.String(), "Connected to Honcho.") {
		t.Errorf("login stdout = %q, want it to say Connected to Honcho.", printed.String())
	}
	return redirect
}

// runCLIOK runs a memconnect command that must succeed and returns its stdout.
func runCLIOK(t *testing.T, cli string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("memconnect %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}
