package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// oidcResource is a memory server whose tokens the oidc-provider issues:
// /mcp answers 401 with a challenge naming its protected resource metadata
// (RFC 9728), which names the provider.
type oidcResource struct {
	*httptest.Server
	mu     sync.Mutex // guards issuer
	issuer string
}

func newOIDCResource(t *testing.T) *oidcResource {
	t.Helper()
	rs := &oidcResource{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		issuer := rs.issuer
		rs.mu.Unlock()
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/mcp":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"resource":"` + rs.URL + `/mcp","authorization_servers":["` + issuer + `"],"scopes_supported":["memory"]}`))
		case "/mcp":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+rs.URL+`/.well-known/oauth-protected-resource/mcp", scope="memory"`)
			w.WriteHeader(http.StatusUnauthorized)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(rs.Close)
	return rs
}

// TestOIDCProvider: a certified OpenID provider nobody here wrote, behind
// an MCP-style memory server, through the router: discovery (OpenID
// discovery, RFC 9728), dynamic registration as a native client, a browser
// sign-in with PKCE, the resource indicator and the iss of RFC 9207,
// refresh-token rotation with the resource, the device flow, revocation on
// disconnect; and through the CLI, a loopback sign-in on a port other than
// the registered one.
func TestOIDCProvider(t *testing.T) {
	rs := newOIDCResource(t)
	op := StartOIDC(t, rs.URL+"/mcp")
	rs.mu.Lock()
	rs.issuer = op.Issuer
	rs.mu.Unlock()

	base, conn := startMCPRouter(t, "oidc", "OIDC memory", rs.URL+"/mcp")
	ctx := t.Context()

	// Discovery lists the device flow the provider announces.
	resp, err := http.Get(base + "/providers")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"auth_methods":["browser","device"]`) {
		t.Errorf("providers = %s; want browser and device", body)
	}

	// A browser sign-in through the router's callback.
	rep, err := conn.Connect(ctx, "default", "oidc", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	q := mustQuery(t, rep.Flow.AuthorizeURL)
	if q.Get("resource") != rs.URL+"/mcp" || q.Get("prompt") != "consent" || !strings.Contains(q.Get("scope"), "offline_access") {
		t.Errorf("authorize query = %v; want the resource, offline_access and prompt=consent", q)
	}
	back := op.Consent(t, rep.Flow.AuthorizeURL)
	if back == nil || back.Query().Get("iss") != op.Issuer || back.Query().Get("code") == "" {
		t.Fatalf("the provider sent back %v; want a code and its iss", back)
	}
	resp, err = http.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Connected") {
		t.Fatalf("callback = %d %s", resp.StatusCode, body)
	}
	st, err := conn.Status(ctx, "default", "oidc")
	if err != nil || !st.Connected {
		t.Fatalf("status = %+v, %v; want connected", st, err)
	}

	// Refresh tokens rotate, with the resource.
	ts, err := conn.TokenSource("default", "oidc")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{tok.AccessToken: true}
	for range 2 {
		if tok, err = ts.ForceRefresh(ctx, tok.AccessToken); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if seen[tok.AccessToken] {
			t.Fatalf("a refresh gave a token seen before")
		}
		seen[tok.AccessToken] = true
	}

	// Disconnect revokes at the provider.
	res, err := conn.Disconnect(ctx, "default", "oidc")
	if err != nil || !res.Removed || !res.Revoked {
		t.Fatalf("disconnect = %+v, %v; want removed and revoked", res, err)
	}

	// The device flow, with the resource.
	rep, err = conn.Connect(ctx, "default", "oidc", provider.ConnectRequest{Method: flow.MethodDevice})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Flow == nil || rep.Flow.UserCode == "" {
		t.Fatalf("device connect = %+v; want a user code", rep.Flow)
	}
	if u := op.Consent(t, rep.Flow.AuthorizeURL); u != nil {
		t.Fatalf("the device sign-in left the provider for %s", u)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if fl, err := conn.Wait(wctx, "default", "oidc"); err != nil || fl.State != flow.StateConnected {
		t.Fatalf("device flow = %+v, %v; want connected", fl, err)
	}
	if _, err := conn.Disconnect(ctx, "default", "oidc"); err != nil {
		t.Fatal(err)
	}

	// The CLI: a loopback sign-in on an OS-assigned port, not the
	// registered 8765, which a native client may use (RFC 8252 section 7.3).
	cli := startLoginProcess(t, "--no-browser", "--port", "0", "--provider", "oidc="+rs.URL+"/mcp")
	link := cli.link(t, op.Issuer)
	redirect, _ := url.Parse(mustQuery(t, link).Get("redirect_uri"))
	if redirect.Hostname() != "127.0.0.1" || redirect.Port() == "8765" {
		t.Errorf("redirect_uri = %s; want a loopback port other than the registered one", redirect)
	}
	back = op.Consent(t, link)
	if back == nil || back.Host != redirect.Host {
		t.Fatalf("the provider sent the browser to %v; want %s", back, redirect)
	}
	cli.finish(t, back.String(), "Connected to oidc")
}
func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}
