package e2e

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// TestConnectorDisconnectRevokesAtHydra: provider.Connector.Disconnect revokes
// the grant at Hydra (RFC 7009, the endpoint found through Hydra's OpenID
// Connect metadata) and removes it from honcho.json, keeping every other key
// and host block the file held before the grant arrived.
func TestConnectorDisconnectRevokesAtHydra(t *testing.T) {
	h := StartHydra(t)
	h.CreatePublicClient(t, e2eClientID, loopbackRedirect)
	home := hermesHome(t)
	path := configPath(home)
	writeConfig(t, path, `{"workspace": "w1", "peerName": "alice",
  "hosts": {"other": {"apiKey": "other-key-1234", "custom": [1, 2, 3]},
            "hermes": {"workspace": "kept"}}}`)
	svc := newSignInConnector(t, h, home)
	g := connectWithConnector(t, svc, home)
	assertActive(t, h, "refresh token", g.RefreshToken, true)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := svc.Disconnect(ctx, provider.DefaultProfile, honcho.Name)
	if err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	if !res.Revoked || res.RevokeError != "" {
		t.Errorf("disconnect: %+v, want revoked at the server", res)
	}
	assertActive(t, h, "refresh token after disconnect", g.RefreshToken, false)
	assertActive(t, h, "access token after disconnect", g.AccessToken, false)

	root, err := readConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	hermes := testkit.HostBlock(root, honcho.DefaultHost)
	if _, ok := hermes["apiKey"]; ok {
		t.Errorf("hermes block still has apiKey: keys %v", keys(hermes))
	}
	if _, ok := hermes["oauth"]; ok {
		t.Errorf("hermes block still has oauth: keys %v", keys(hermes))
	}
	if hermes["workspace"] != "kept" || root["workspace"] != "w1" || root["peerName"] != "alice" {
		t.Errorf("keys lost: %v", root)
	}
	if other := testkit.HostBlock(root, "other"); other["apiKey"] != "other-key-1234" || len(other) != 2 {
		t.Errorf("other host changed: %v", other)
	}

	rep, err := svc.Status(ctx, provider.DefaultProfile, honcho.Name)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected || rep.Auth != "" || rep.Token != nil {
		b, _ := json.Marshal(rep)
		t.Errorf("status after disconnect = %s, want not connected", b)
	}
}

func writeConfig(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
