package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/testkit"
	"github.com/memconnect/memconnect/oauth/oauthtest"
)

// runWithStdin runs the command to completion with stdin.
func runWithStdin(t *testing.T, e env, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr testkit.SyncBuffer
	code := run(t.Context(), args, e.lookup, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// TestLoginAPIKey: login --api-key reads the key from stdin, checks it
// with the server, stores it and never prints it; logout removes it.
func TestLoginAPIKey(t *testing.T) {
	const good = "mem-key-0123456789"
	srv := oauthtest.NewMCPServer(oauthtest.WithAuthServer(oauthtest.WithAPIKey(good)))
	defer srv.Close()
	e := newEnv(t)
	prov := "memdev=" + srv.URL
	file := filepath.Join(e["HOME"], ".hermes", "memconnect.json")

	tests := []struct {
		name, stdin string
		code        int
		say         string // in stdout+stderr
	}{
		{"no key", "", exitUsage, "no key on stdin"},
		{"refused", "mem-key-wrong\n", exitFailed, "The API key was not stored: memdev refused the key (HTTP 401)"},
		{"two words", "mem key\n", exitFailed, "white space"},
		{"accepted", good + "\n", exitOK, "Connected to memdev with an API key, stored in ~/.hermes/memconnect.json."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runWithStdin(t, e, tt.stdin, "login", "--provider", prov, "--api-key")
			out := r.stdout + r.stderr
			if r.code != tt.code || !strings.Contains(out, tt.say) {
				t.Errorf("exit %d, want %d with %q:\n%s", r.code, tt.code, tt.say, out)
			}
			if strings.Contains(out, "mem-key") {
				t.Errorf("the key was printed:\n%s", out)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), good) {
		t.Fatalf("memconnect.json = %s, %v; want the key", b, err)
	}
	if r := runCLI(t, e, "status", "--provider", prov); r.code != exitOK || !strings.Contains(r.stdout, "Auth: API key") || !strings.Contains(r.stdout, "(server memdev)") {
		t.Errorf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, e, "logout", "--provider", prov); r.code != exitOK || !strings.Contains(r.stdout, "Signed out of memdev") {
		t.Errorf("logout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(file); strings.Contains(string(b), good) {
		t.Errorf("the key is still in memconnect.json after logout: %s", b)
	}
}

// TestLoginAPIKeyHoncho: the Honcho key goes to the host block's apiKey.
func TestLoginAPIKeyHoncho(t *testing.T) {
	e := newEnv(t)
	if r := runWithStdin(t, e, "hch-v2-key-0123\n", "login", "--api-key"); r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	cfg := testkit.ReadJSON(t, filepath.Join(e["HOME"], ".hermes", "honcho.json"))
	if b := testkit.HostBlock(cfg, "hermes"); b["apiKey"] != "hch-v2-key-0123" || b["oauth"] != nil {
		t.Errorf("host block = %v", b)
	}
	if r := runWithStdin(t, e, "k\n", "login", "--api-key", "--device"); r.code != exitUsage {
		t.Errorf("--api-key --device: exit %d, want usage", r.code)
	}
}

// TestLoginGenericProvider signs in to an MCP-style server with
// --provider NAME=URL: discovery, registration, consent, then a token.
func TestLoginGenericProvider(t *testing.T) {
	srv := oauthtest.NewMCPServer()
	defer srv.Close()
	e := newEnv(t)
	prov := "memdev=" + srv.URL
	r := consentLogin(t, srv.AS, e, strings.NewReader(""), true, "--provider", prov, "--no-browser", "--port", "0")
	if r.code != exitOK || !strings.Contains(r.stdout, "Connected to memdev.") {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if tok := runCLI(t, e, "token", "--provider", prov); tok.code != exitOK || !strings.HasPrefix(tok.stdout, "mcp-at-") {
		t.Errorf("token: exit %d %q %s", tok.code, tok.stdout, tok.stderr)
	}
	if r := runCLI(t, e, "status", "--provider", "supermemory"); r.code != exitOK || !strings.Contains(r.stdout, "Supermemory, profile default") || !strings.Contains(r.stdout, "Auth: not connected") {
		t.Errorf("status --provider supermemory: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, bad := range []string{"nope", "Bad=https://x.example/mcp", "memdev=http://x.example/mcp"} {
		if r := runCLI(t, e, "status", "--provider", bad); r.code != exitUsage || !strings.Contains(r.stderr, "--provider") {
			t.Errorf("--provider %s: exit %d %s", bad, r.code, r.stderr)
		}
	}
	if r := runCLI(t, e, "status", "--provider", "supermemory", "--host", "x"); r.code != exitUsage {
		t.Errorf("--host with supermemory: exit %d", r.code)
	}
}
