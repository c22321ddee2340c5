package memconnect_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// TestReadmePythonAgent runs README's Python agent, as written, with
// python3 against a live router: it prints the profile's token, got with
// the router's session token alone.
func TestReadmePythonAgent(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this machine")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```python\n")
	code, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no python block")
	}
	const static = "host-token-0123456789"
	e := fixture.NewEnv(t, fixture.WithSessionToken(static))
	tok := e.AS.IssueGrant("write")
	testkit.WriteJSON(t, filepath.Join(e.Root, "profiles", "work", "honcho.json"), map[string]any{"hosts": map[string]any{"hermes_work": map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": time.Now().Add(time.Hour).Unix(),
			"clientId": e.AS.ClientID(), "tokenEndpoint": e.AS.TokenURL(), "scope": "write", "tokenType": "Bearer"},
	}}})
	script := filepath.Join(t.TempDir(), "agent.py")
	testkit.WriteFile(t, script, code)
	cmd := exec.CommandContext(t.Context(), python, script)
	cmd.Env = append(os.Environ(), "MEMCONNECT_SERVER="+e.Base, "MEMCONNECT_SESSION_TOKEN="+static, "MEMCONNECT_PROFILE=work")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != tok.AccessToken {
		t.Fatalf("python3 agent: %v\n%s", err, out)
	}
}
