package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/provider/honcho"
)

// TestRefreshRotatesAtHydra forces the stored access token to look expired
// and runs `memconnect token`: the command must spend the refresh token once,
// store the rotated pair, and print the new access token. Hydra must agree:
// the superseded refresh token is dead, the new tokens are live.
func TestRefreshRotatesAtHydra(t *testing.T) {
	h := StartHydra(t)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect)
	cli := cliBinary(t)
	home := hermesHome(t)
	old := connectWithConnector(t, newSignInConnector(t, h, home), home)
	path := configPath(home)
	if old.ClientID != e2eClientID || old.TokenEndpoint != h.TokenURL {
		t.Fatalf("stored grant: client %q endpoint %q, want %q %q", old.ClientID, old.TokenEndpoint, e2eClientID, h.TokenURL)
	}
	assertActive(t, h, "first access token", old.AccessToken, true)
	assertActive(t, h, "first refresh token", old.RefreshToken, true)

	forceExpiry(t, path, honcho.DefaultHost)
	start := time.Now()
	cmd := exec.Command(cli, "token")
	cmd.Env = cliEnv(h, t.TempDir(), home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("memconnect token: %v\nstderr:\n%s", err, stderr.String())
	}
	printed := strings.TrimSpace(string(out))

	now := readGrant(t, path, honcho.DefaultHost)
	if now.RefreshToken == old.RefreshToken {
		t.Fatal("the refresh token did not rotate")
	}
	if now.AccessToken == old.AccessToken {
		t.Fatal("the access token did not change")
	}
	if printed != now.AccessToken {
		t.Errorf("memconnect token printed %q, want the stored access token %q", redact(printed), redact(now.AccessToken))
	}
	if !strings.HasPrefix(now.AccessToken, "ory_at_") || !strings.HasPrefix(now.RefreshToken, "ory_rt_") {
		t.Errorf("stored tokens %q %q, want Hydra's ory_at_/ory_rt_", redact(now.AccessToken), redact(now.RefreshToken))
	}
	// Hydra's access token lifetime is 1 h by default.
	if exp := time.Unix(now.ExpiresAt, 0); exp.Before(start.Add(50*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Errorf("stored expiresAt %v, want about an hour from now", exp)
	}
	if strings.Contains(stderr.String(), "ory_") {
		t.Errorf("stderr holds a token:\n%s", stderr.String())
	}

	assertActive(t, h, "superseded refresh token", old.RefreshToken, false)
	assertActive(t, h, "superseded access token", old.AccessToken, false)
	assertActive(t, h, "new access token", now.AccessToken, true)
	assertActive(t, h, "new refresh token", now.RefreshToken, true)

	// A second run finds a fresh token and spends nothing.
	cmd = exec.Command(cli, "token")
	cmd.Env = cliEnv(h, t.TempDir(), home)
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("second memconnect token: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != now.AccessToken {
		t.Errorf("second run printed another token")
	}
	if again := readGrant(t, path, honcho.DefaultHost); again.RefreshToken != now.RefreshToken {
		t.Errorf("second run rotated the grant again")
	}
}
