package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/provider/mcp"
)

// startHydraDCR starts Hydra with dynamic client registration (RFC 7591)
// open at /oauth2/register, announced in its discovery document (Hydra
// names it there only when told where it is).
func startHydraDCR(t *testing.T) *Hydra {
	t.Helper()
	return StartHydra(t,
		WithHydraConfig("oidc.dynamic_client_registration.enabled", true),
		func(cfg map[string]any) {
			public := cfg["urls"].(map[string]any)["self"].(map[string]any)["public"].(string)
			setDotted(cfg, "webfinger.oidc_discovery.client_registration_url", public+"oauth2/register")
		})
}

// resourceServer is a memory server behind Hydra, as an MCP server is: /mcp
// answers 401 with a Bearer challenge naming its protected resource
// metadata (RFC 9728), which names Hydra, and 200 for a token Hydra says
// is active.
func resourceServer(t *testing.T, h *Hydra) *httptest.Server {
	t.Helper()
	var rs *httptest.Server
	rs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/mcp":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"resource":"` + rs.URL + `/mcp","authorization_servers":["` + h.Issuer + `"],"scopes_supported":["memory"]}`))
		case "/mcp":
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if active, _, err := h.introspect(r.Context(), tok); err != nil || !active || tok == "" {
				w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+rs.URL+`/.well-known/oauth-protected-resource/mcp", scope="memory"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":0,"result":{}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(rs.Close)
	return rs
}

// TestGenericProviderOnHydra: a memory server behind Ory Hydra with dynamic
// client registration, picked on the Connect page: the router discovers
// the resource and Hydra from the 401, registers a client, Chromium
// consents, the grant lands in memconnect.json; a refresh rotates it, the
// resource accepts the token, and Disconnect revokes it.
func TestGenericProviderOnHydra(t *testing.T) {
	h := startHydraDCR(t)
	rs := resourceServer(t, h)
	home := hermesHome(t)
	client := &http.Client{Timeout: 10 * time.Second}
	mem, err := mcp.New("hydramem", "Hydra memory", rs.URL+"/mcp", mcp.WithHTTPClient(client))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := provider.NewRegistry(honcho.New(hydraHonchoOptions(h)...), mem)
	if err != nil {
		t.Fatal(err)
	}
	ds := startDesktop(t, h, home, true, func(c *memconnect.Config) { c.Registry = reg })
	callback := strings.Replace(ds.CallbackURL, "/honcho/", "/hydramem/", 1)

	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	openPage(t, ctx, ds, "the Connect link", idle)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`(() => { const s = document.getElementById("provider-select"); s.value = "hydramem"; s.dispatchEvent(new Event("change")); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	waitPage(t, ctx, "Hydra memory's Connect link", func(st pageState) bool {
		return st.Provider == "hydramem" && st.Connect == "Connect" && st.State == "Sign-in needed"
	})
	newWindow := chromedp.WaitNewTarget(ctx, func(info *target.Info) bool { return info.Type == "page" })
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("connect-button"))); err != nil {
		t.Fatalf("click Connect: %v", err)
	}
	select {
	case <-newWindow:
	case <-time.After(pageTimeout):
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPageState))
		t.Fatalf("Connect opened no new window; the page shows %+v", st)
	}
	st := waitPage(t, ctx, "connected to Hydra memory", func(st pageState) bool {
		return st.Provider == "hydramem" && st.State == "Connected · renews automatically" && st.Disconnect
	})
	if st.Status != "Connected to Hydra memory." {
		t.Errorf("live region = %q", st.Status)
	}
	screenshot(t, ctx, "mcp-1-connected.png")

	// The registration and the grant are in the provider-neutral file.
	cfg := testkit.ReadJSON(t, home+"/"+mcp.FileName)
	block, _ := cfg["servers"].(map[string]any)["hydramem"].(map[string]any)
	regn, _ := block["registration"].(map[string]any)
	o, _ := block["oauth"].(map[string]any)
	clientID, _ := regn["client_id"].(string)
	uris, _ := regn["redirect_uris"].([]any)
	if clientID == "" || o == nil || o["clientId"] != clientID || o["resource"] != rs.URL+"/mcp" || len(uris) == 0 || uris[0] != callback {
		t.Fatalf("memconnect.json block = %v, want a registered client for %s and its grant with the resource", block, callback)
	}
	access, _ := block["token"].(string)
	if active, cid := h.Introspect(t, access); !active || cid != clientID {
		t.Errorf("stored access token: active=%v client=%q, want active for %q", active, cid, clientID)
	}

	// A refresh through the same file, from another Connector (another
	// process would do the same), and a call to the resource.
	conn := &provider.Connector{Registry: reg, Profiles: provider.HermesProfiles{Root: home}, HTTPClient: client}
	ts, err := conn.TokenSource("default", "hydramem")
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	before := o["refreshToken"].(string)
	tok, err := ts.ForceRefresh(bg, access)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok.AccessToken == access {
		t.Error("the refresh kept the access token")
	}
	assertActive(t, h, "the spent refresh token", before, false)
	if status, _, err := authserver.Probe(bg, &http.Client{Transport: &oauth.Transport{Source: ts}}, rs.URL+"/mcp", ""); err != nil || status != http.StatusOK {
		t.Errorf("the resource answered %d (%v) with the refreshed token, want 200", status, err)
	}

	// Disconnect on the page revokes at Hydra.
	disconnectOnPage(t, ctx)
	waitPage(t, ctx, "disconnected", func(st pageState) bool {
		return st.Provider == "hydramem" && st.Connect == "Connect" && st.Status == "Disconnected from Hydra memory."
	})
	assertActive(t, h, "access token after Disconnect", tok.AccessToken, false)
}

// TestGenericProviderLoopbackPortMoves: when the loopback port asked for is
// taken, the listener binds another first, and the client is registered
// for the URI it actually listens on, port included, so the sign-in
// completes at Hydra (and at a server that needs the exact port).
func TestGenericProviderLoopbackPortMoves(t *testing.T) {
	h := startHydraDCR(t)
	rs := resourceServer(t, h)
	home := hermesHome(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	client := &http.Client{Timeout: 10 * time.Second}
	mem, err := mcp.New("hydramem", "Hydra memory", rs.URL+"/mcp", mcp.WithHTTPClient(client))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := provider.NewRegistry(mem)
	if err != nil {
		t.Fatal(err)
	}
	flows := flow.NewManager(flow.Config{LoopbackAddr: taken.Addr().String()})
	t.Cleanup(func() { flows.Close() })
	conn := &provider.Connector{Registry: reg, Profiles: provider.HermesProfiles{Root: home}, Flows: flows, HTTPClient: client}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rep, err := conn.Connect(ctx, "default", "hydramem", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	asked := "http://" + taken.Addr().String() + "/callback"
	if rep.Flow == nil || rep.Flow.RedirectURI == asked {
		t.Fatalf("flow = %+v, want a loopback redirect on another port than the taken %s", rep.Flow, asked)
	}
	registered := rep.Flow.RedirectURI
	if q := authorize(t, rep.Flow.AuthorizeURL); q.Get("code") == "" {
		t.Fatalf("Hydra refused the moved loopback port: error=%q %q", q.Get("error"), q.Get("error_description"))
	}
	if f, err := conn.Wait(ctx, "default", "hydramem"); err != nil || f.State != flow.StateConnected {
		t.Fatalf("wait: %+v, %v; want connected", f, err)
	}
	cfg := testkit.ReadJSON(t, home+"/"+mcp.FileName)
	uris := cfg["servers"].(map[string]any)["hydramem"].(map[string]any)["registration"].(map[string]any)["redirect_uris"].([]any)
	if len(uris) != 1 || uris[0] != registered {
		t.Errorf("registered redirect URIs = %v, want [%s]", uris, registered)
	}
}
