package memconnect_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"golang.org/x/oauth2"
)

// writeGrant writes tok as profile work's grant, expiring at exp and
// obtained at obtained.
func writeGrant(t *testing.T, e *fixture.Env, tok *oauth2.Token, exp, obtained time.Time) {
	t.Helper()
	testkit.WriteJSON(t, filepath.Join(e.Root, "profiles", "work", "honcho.json"), map[string]any{"hosts": map[string]any{"hermes_work": map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": exp.Unix(), "obtainedAt": obtained.Unix(),
			"clientId": e.AS.ClientID(), "tokenEndpoint": e.AS.TokenURL(), "scope": "write", "tokenType": "Bearer"},
	}}})
}

// TestTokenRoute: POST token gives an agent the profile's token: the one
// stored while it is fresh, a refreshed one when it is due or forced (one
// refresh for ten forced calls at once), the API key of a profile that has
// one; 404 not_connected and 409 reauth_required otherwise. Never in a log,
// never cached.
func TestTokenRoute(t *testing.T) {
	t.Parallel()
	const static = "host-token-0123456789"
	clock := testkit.NewClock()
	hook := &hookRecorder{deny: []string{"denied"}}
	e := fixture.NewEnv(t, fixture.WithClock(clock), fixture.WithSessionToken(static), fixture.WithSessionKeys(bytes.Repeat([]byte("k"), 32)),
		fixture.WithAuthorize(hook.authorize))
	now := clock.Now()
	tok := e.AS.IssueGrant("write")
	writeGrant(t, e, tok, now.Add(time.Hour), now)
	token := func(profile, body string, header map[string]string) (fixture.Exchange, map[string]any) {
		t.Helper()
		x := e.Do(fixture.Request{Method: "POST", Path: "/profiles/" + profile + "/providers/honcho/token", Body: body, Header: header})
		var m map[string]any
		_ = json.Unmarshal(x.Body, &m)
		return x, m
	}

	x, m := token("work", "", nil)
	if x.Status != 200 || m["access_token"] != tok.AccessToken || m["token_type"] != "Bearer" || m["scope"] != "write" ||
		m["expires_at"] != now.Add(time.Hour).UTC().Format(time.RFC3339) || m["refresh_after"] != now.Add(time.Hour-2*time.Minute).UTC().Format(time.RFC3339) {
		t.Fatalf("fresh: %d %s", x.Status, x.Body)
	}
	if cc := x.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q; want no-store", cc)
	}
	if a := hook.last(); a.Action != handlers.ActionToken || a.Profile != "work" {
		t.Errorf("the hook saw %+v; want the token action", a)
	}
	if e.AS.Stats().Refreshes != 0 {
		t.Fatal("a fresh token was refreshed")
	}

	clock.Advance(time.Hour - time.Minute) // due
	x, m = token("work", `{"force":false}`, nil)
	if x.Status != 200 || m["access_token"] == tok.AccessToken || e.AS.Stats().Refreshes != 1 {
		t.Fatalf("due: %d %s, %+v; want one refresh", x.Status, x.Body, e.AS.Stats())
	}
	due := m["access_token"]

	// Ten forced calls at once: one refresh, one token for all.
	var wg sync.WaitGroup
	got := make(chan any, 10)
	for range 10 {
		wg.Go(func() {
			_, m := token("work", `{"force":true}`, nil)
			got <- m["access_token"]
		})
	}
	wg.Wait()
	close(got)
	var forced any
	for a := range got {
		if forced == nil {
			forced = a
		}
		if a != forced || a == due {
			t.Errorf("forced calls got %v and %v (due was %v); want one new token for all", forced, a, due)
		}
	}
	if st := e.AS.Stats(); st.Refreshes != 2 || st.Replays != 0 {
		t.Errorf("after ten forced calls: %+v; want one more refresh, no replay", st)
	}
	// Within the interval a force brings the same token; after it, a new one.
	if _, m := token("work", `{"force":true}`, nil); m["access_token"] != forced || e.AS.Stats().Refreshes != 2 {
		t.Errorf("a force within 10 s: %v, %+v; want the last forced token, no refresh", m["access_token"], e.AS.Stats())
	}
	clock.Advance(11 * time.Second)
	if _, m := token("work", `{"force":true}`, nil); m["access_token"] == forced || e.AS.Stats().Refreshes != 3 {
		t.Errorf("a force after 10 s: %v, %+v; want a refresh", m["access_token"], e.AS.Stats())
	}

	if x, m := token("apikey", "", nil); x.Status != 200 || m["access_token"] != "plain-api-key-0123456789" || m["token_type"] != "api_key" || m["expires_at"] != nil {
		t.Errorf("API key: %d %s", x.Status, x.Body)
	}
	session, _, err := e.Router.MintConnectSession("work", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, profile, body string
		header              map[string]string
		status              int
		code                string
	}{
		{"not connected", "default", "", nil, 404, "not_connected"},
		{"connect session", "work", "", map[string]string{"Authorization": "Bearer " + session}, 403, "forbidden"},
		{"no credential", "work", "", map[string]string{"Authorization": ""}, 401, "unauthorized"},
		{"the hook denies", "denied", "", nil, 403, "forbidden"},
		{"unknown field", "work", `{"forse":true}`, nil, 400, "invalid_request"},
	} {
		x, m := token(tt.profile, tt.body, tt.header)
		if x.Status != tt.status || m["error"] != tt.code {
			t.Errorf("%s: %d %s; want %d %s", tt.name, x.Status, x.Body, tt.status, tt.code)
		}
	}

	e.AS.RevokeGrant(tok.AccessToken) // the grant, whichever of its tokens
	clock.Advance(2 * time.Hour)
	if x, m := token("work", "", nil); x.Status != 409 || m["error"] != "reauth_required" || !strings.Contains(m["message"].(string), "connect again") {
		t.Errorf("a revoked grant: %d %s; want 409 reauth_required", x.Status, x.Body)
	}
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken, forced.(string), "plain-api-key-0123456789"} {
		if strings.Contains(e.Logs.String(), secret) {
			t.Errorf("the log holds a token")
		}
	}
}

// TestDisconnectWithoutRevocation: a server that offers no revocation
// endpoint (FastMCP's OAuthProxy): DELETE connection removes the grant
// and says, in revoke_error, valid_until and a sentence, that the server
// was not asked to revoke it and until when its access token works.
func TestDisconnectWithoutRevocation(t *testing.T) {
	t.Parallel()
	h := fixture.NewHermes(t)
	noMetadata := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(noMetadata.Close)
	reg, err := provider.NewRegistry(honcho.New(honcho.WithAuthorizeURL(h.AS.AuthorizeURL()), honcho.WithTokenURL(h.AS.TokenURL()),
		honcho.WithIssuer(noMetadata.URL), honcho.WithUserHome(h.UserHome)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), HTTPClient: h.AS.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv := fixture.NewServer(t)
	srv.Start(fixture.HostRouter(r))
	tok := h.AS.IssueGrant("write")
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	testkit.WriteJSON(t, filepath.Join(h.Root, "honcho.json"), map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": exp.Unix(),
			"clientId": h.AS.ClientID(), "tokenEndpoint": h.AS.TokenURL(), "scope": "write", "tokenType": "Bearer"},
	}}})
	req, _ := http.NewRequest("DELETE", srv.Base+"/profiles/default/providers/honcho/connection", nil)
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 200 || m["removed"] != true || m["revoked"] != false || m["revoke_error"] == nil ||
		m["valid_until"] != exp.UTC().Format(time.RFC3339) || !strings.Contains(fmt.Sprint(m["message"]), "Honcho offers no way to revoke it") {
		t.Fatalf("DELETE = %d %v; want removed, not revoked, saying why and until when", resp.StatusCode, m)
	}
	if !h.AS.Active(tok.AccessToken) {
		t.Error("the server's grant is gone; this server cannot revoke")
	}
}
