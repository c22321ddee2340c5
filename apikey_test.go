package memconnect_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// TestAPIKeySignIn: a key sent to connect replaces the profile's grant
// (revoked), is stored as the host block's apiKey, is never echoed or
// logged, makes status "apikey", and disconnect removes it alone.
func TestAPIKeySignIn(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t)
	path := filepath.Join(e.Root, "profiles", "work", "honcho.json")
	tok := e.AS.IssueGrant("write")
	testkit.WriteJSON(t, path, map[string]any{
		"workspace": "hermes",
		"hosts": map[string]any{
			"other": map[string]any{"apiKey": "other-key-5678"},
			"hermes_work": map[string]any{
				"apiKey":   tok.AccessToken,
				"peerName": "alice",
				"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": time.Now().Add(time.Hour).Unix(),
					"clientId": e.AS.ClientID(), "tokenEndpoint": e.AS.TokenURL()},
			},
		},
	})

	x := e.Do(fixture.Request{Method: "POST", Path: "/profiles/work/providers/honcho/connect",
		Body: `{"method":"apikey","api_key":"` + fixture.GoodAPIKey + `"}`})
	if x.Status != http.StatusOK {
		t.Fatalf("connect = %d %s", x.Status, x.Body)
	}
	if st := x.JSON(t); st["connected"] != true || st["auth"] != "apikey" || st["token"] != nil {
		t.Errorf("connect answered %s, want connected with auth apikey and no token", x.Body)
	}
	if rep := e.Status("work", "honcho"); !rep.Connected || rep.Auth != "apikey" {
		t.Errorf("status = %+v, want connected with an API key", rep)
	}
	if e.AS.Active(tok.RefreshToken) {
		t.Error("the replaced grant's refresh token is still active: it was not revoked")
	}
	cfg := testkit.ReadJSON(t, path)
	b := testkit.HostBlock(cfg, "hermes_work")
	if b["apiKey"] != fixture.GoodAPIKey || b["oauth"] != nil || b["peerName"] != "alice" {
		t.Errorf("host block = %v, want the key, no oauth block, peerName kept", b)
	}

	x = e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/work/providers/honcho/connection"})
	if x.Status != http.StatusOK || !strings.Contains(string(x.Body), `"removed":true`) {
		t.Fatalf("disconnect = %d %s, want removed", x.Status, x.Body)
	}
	cfg = testkit.ReadJSON(t, path)
	if b := testkit.HostBlock(cfg, "hermes_work"); b["apiKey"] != nil || b["peerName"] != "alice" {
		t.Errorf("after disconnect the host block = %v, want no key and peerName kept", b)
	}
	if o := testkit.HostBlock(cfg, "other"); o["apiKey"] != "other-key-5678" || cfg["workspace"] != "hermes" {
		t.Errorf("after disconnect the file lost other keys: %v", cfg)
	}
	if rep := e.Status("work", "honcho"); rep.Connected {
		t.Errorf("status after disconnect = %+v, want not connected", rep)
	}

	for _, x := range e.Exchanges() {
		if strings.Contains(string(x.Body), fixture.GoodAPIKey) {
			t.Errorf("%s %s answered the key: %s", x.Req.Method, x.Req.URL.Path, x.Body)
		}
	}
	if logs := e.Logs.String(); strings.Contains(logs, fixture.GoodAPIKey) {
		t.Errorf("the log holds the key:\n%s", logs)
	}
}
