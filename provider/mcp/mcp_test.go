package mcp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/internal/testsupport/memnet"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/mcp"
)

// chain is a Connector for one generic provider of an oauthtest server,
// with the default profile's home in a temporary directory and the
// callback route at a fixed (never dialled) loopback base URL.
type chain struct {
	srv  *oauthfake.MCPServer
	conn *provider.Connector
	home string
	file string // the default profile's grant file
}

func newChain(t *testing.T, srvOpts []oauthfake.MCPOption, opts ...mcp.Option) *chain {
	t.Helper()
	srv := oauthfake.NewMCPServer(srvOpts...)
	t.Cleanup(srv.Close)
	reg := registry(t, srv.URL, opts...)
	home := t.TempDir()
	fm := flow.NewManager(flow.Config{LoopbackAddr: "127.0.0.1:0"})
	t.Cleanup(func() { fm.Close() })
	conn := &provider.Connector{
		Registry:        reg,
		Profiles:        provider.HermesProfiles{Root: home},
		Flows:           fm,
		CallbackBaseURL: "http://127.0.0.1:9/api/memory",
	}
	return &chain{srv: srv, conn: conn, home: home, file: filepath.Join(home, mcp.FileName)}
}

// registry holds the provider "memdev" ("Dev memory") of the server at
// url.
func registry(t *testing.T, url string, opts ...mcp.Option) *provider.Registry {
	t.Helper()
	p, err := mcp.New("memdev", "Dev memory", url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := provider.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// signIn connects the default profile through the callback route and
// returns the authorization request's query.
func (c *chain) signIn(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	rep, err := c.conn.Connect(ctx, "default", "memdev", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := c.srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	q := c.srv.AS.LastAuthorizeQuery()
	fl, err := c.conn.Callback(ctx, "default", "memdev", target.Query())
	if err != nil || fl.State != flow.StateConnected {
		t.Fatalf("callback: %+v, %v; want connected", fl, err)
	}
	return q
}

// TestGenericChain runs the whole chain: the 401 challenge, RFC 9728,
// RFC 8414, dynamic registration, PKCE with resource, the grant in the
// provider-neutral file, a refresh with resource, a call to the resource,
// and re-registration once the server forgot the client.
func TestGenericChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newChain(t, nil)
	testkit.WriteJSON(t, c.file, map[string]any{"servers": map[string]any{"other": map[string]any{"token": "their-key"}}, "mine": true})

	q := c.signIn(t)
	if got := q["resource"]; len(got) != 1 || got[0] != c.srv.URL {
		t.Errorf("authorize resource = %v, want [%s]", got, c.srv.URL)
	}
	if q["code_challenge_method"][0] != "S256" || !strings.HasPrefix(q["client_id"][0], "dyn-") || q["scope"][0] != oauthfake.MCPScope {
		t.Errorf("authorize query = %v, want PKCE S256, a registered client and scope %q from the challenge", q, oauthfake.MCPScope)
	}
	if n := c.srv.AS.Registrations(); n != 1 {
		t.Errorf("registrations = %d, want 1", n)
	}

	fi, err := os.Stat(c.file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("grant file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	cfg := testkit.ReadJSON(t, c.file)
	block := cfg["servers"].(map[string]any)["memdev"].(map[string]any)
	o, _ := block["oauth"].(map[string]any)
	reg, _ := block["registration"].(map[string]any)
	if o == nil || o["resource"] != c.srv.URL || reg == nil || reg["client_id"] != q["client_id"][0] || !strings.HasPrefix(block["token"].(string), "mcp-at-") {
		t.Errorf("grant file block = %v, want the grant with its resource and the registration", block)
	}
	if cfg["mine"] != true || cfg["servers"].(map[string]any)["other"] == nil {
		t.Errorf("grant file lost other members: %v", cfg)
	}

	rep, err := c.conn.Status(ctx, "default", "memdev")
	if err != nil || !rep.Connected || rep.Auth != provider.AuthOAuth {
		t.Fatalf("status = %+v, %v; want connected with OAuth", rep, err)
	}

	// A refresh carries the resource (the server refuses one without it).
	ts, err := c.conn.TokenSource("default", "memdev")
	if err != nil {
		t.Fatal(err)
	}
	before := c.srv.AS.Stats().TokenRequests
	if err := forceRefresh(ctx, ts); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if c.srv.AS.Stats().TokenRequests != before+1 {
		t.Errorf("token requests %d -> %d, want one refresh", before, c.srv.AS.Stats().TokenRequests)
	}
	hc := &http.Client{Transport: &oauth.Transport{Source: ts}}
	if status, _, err := authserver.Probe(ctx, hc, c.srv.URL, ""); err != nil || status != http.StatusOK {
		t.Errorf("resource call with the refreshed token = %d, %v; want 200", status, err)
	}

	// The server forgets its clients: the refresh fails with
	// invalid_client, and the next sign-in registers again.
	c.srv.AS.ForgetClients()
	if err := forceRefresh(ctx, ts); err == nil {
		t.Fatal("refresh with a forgotten client succeeded")
	}
	q2 := c.signIn(t)
	if n := c.srv.AS.Registrations(); n != 2 || q2["client_id"][0] == q["client_id"][0] {
		t.Errorf("after invalid_client: registrations = %d, client %s (was %s); want a new registration", n, q2["client_id"][0], q["client_id"][0])
	}

	// Disconnect revokes and keeps the rest of the file.
	res, err := c.conn.Disconnect(ctx, "default", "memdev")
	if err != nil || !res.Removed || !res.Revoked {
		t.Errorf("disconnect = %+v, %v; want removed and revoked", res, err)
	}
	if cfg := testkit.ReadJSON(t, c.file); cfg["mine"] != true {
		t.Errorf("disconnect lost other members: %v", cfg)
	}
}

// TestRegistrationReused: a second sign-in reuses the stored client.
func TestRegistrationReused(t *testing.T) {
	t.Parallel()
	c := newChain(t, []oauthfake.MCPOption{oauthfake.WithoutChallengeMetadata()})
	q1 := c.signIn(t)
	q2 := c.signIn(t)
	if n := c.srv.AS.Registrations(); n != 1 || q1["client_id"][0] != q2["client_id"][0] {
		t.Errorf("registrations = %d, clients %s and %s; want one client reused", n, q1["client_id"][0], q2["client_id"][0])
	}
}

// TestInvalidClientAtExchange: a code exchange answered invalid_client
// drops the registration, so that the next sign-in registers again.
func TestInvalidClientAtExchange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newChain(t, nil)
	rep, err := c.conn.Connect(ctx, "default", "memdev", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := c.srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	c.srv.AS.ForgetClients()
	if fl, _ := c.conn.Callback(ctx, "default", "memdev", target.Query()); fl.State != flow.StateError {
		t.Fatalf("callback with a forgotten client: %+v, want an error", fl)
	}
	if r := registration(t, c.file); r != nil {
		t.Fatalf("registration after invalid_client = %v, want none", r)
	}
	c.signIn(t)
	if n := c.srv.AS.Registrations(); n != 2 {
		t.Errorf("registrations = %d, want 2", n)
	}
}

// forceRefresh spends the grant's refresh token now.
func forceRefresh(ctx context.Context, ts *oauth.Source) error {
	tok, err := ts.TokenContext(ctx)
	if err != nil {
		return err
	}
	_, err = ts.ForceRefresh(ctx, tok.AccessToken)
	return err
}

func registration(t *testing.T, path string) any {
	t.Helper()
	cfg := testkit.ReadJSON(t, path)
	s, _ := cfg["servers"].(map[string]any)
	b, _ := s["memdev"].(map[string]any)
	return b["registration"]
}

// TestPreRegisteredClient: a configured client id is used as it is.
func TestPreRegisteredClient(t *testing.T) {
	t.Parallel()
	c := newChain(t, []oauthfake.MCPOption{oauthfake.WithAuthServer(oauthfake.WithClientID("pre-registered"))}, mcp.WithClientID("pre-registered"))
	q := c.signIn(t)
	if q["client_id"][0] != "pre-registered" || c.srv.AS.Registrations() != 0 {
		t.Errorf("client %s, %d registrations; want the pre-registered one", q["client_id"][0], c.srv.AS.Registrations())
	}
}

// TestAPIKey: a key the server accepts is stored as the server's token,
// one it refuses is a clear error that never holds it.
func TestAPIKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const good = "mem-key-0123456789"
	c := newChain(t, []oauthfake.MCPOption{oauthfake.WithAuthServer(oauthfake.WithAPIKey(good))}, mcp.WithAPIKeys())
	_, err := c.conn.ConnectAPIKey(ctx, "default", "memdev", "mem-key-wrong")
	if ke, ok := errors.AsType[*provider.APIKeyError](err); !ok || !strings.Contains(ke.Reason, "Dev memory refused the key (HTTP 401)") || strings.Contains(err.Error(), "mem-key-wrong") {
		t.Fatalf("a refused key: %v, want an APIKeyError saying so", err)
	}
	rep, err := c.conn.ConnectAPIKey(ctx, "default", "memdev", good)
	if err != nil || !rep.Connected || rep.Auth != provider.AuthAPIKey {
		t.Fatalf("ConnectAPIKey = %+v, %v", rep, err)
	}
	if tok := testkit.ReadJSON(t, c.file)["servers"].(map[string]any)["memdev"].(map[string]any)["token"]; tok != good {
		t.Errorf("stored token = %v, want the key", tok)
	}
	res, err := c.conn.Disconnect(ctx, "default", "memdev")
	if err != nil || !res.Removed {
		t.Errorf("disconnect = %+v, %v; want the key removed", res, err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, url, want string }{
		{"ok", "https://mcp.example.com/mcp", ""},
		{"loopback-http", "http://127.0.0.1:9/mcp", ""},
		{"Bad", "https://mcp.example.com/mcp", "provider name"},
		{"plain-http", "http://mcp.example.com/mcp", "not an https URL"},
		{"query", "https://mcp.example.com/mcp?x=1", "not an https URL"},
		{"relative", "/mcp", "not an https URL"},
	} {
		_, err := mcp.New(tt.name, "", tt.url)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("New(%q, %q) = %v, want %q", tt.name, tt.url, err, tt.want)
		}
	}
	if p := mcp.Supermemory(); p.Name() != "supermemory" || p.ServerURL() != mcp.SupermemoryURL {
		t.Errorf("Supermemory() = %s %s", p.Name(), p.ServerURL())
	}
}

// TestBadServer: discovery failures reach Connect as errors naming the
// URL, and nothing is written.
func TestBadServer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		md   func(map[string]any)
		want string
	}{
		{"resource of another origin", func(m map[string]any) { m["resource"] = "https://evil.example/mcp" }, "which is not"},
		{"no authorization server", func(m map[string]any) { delete(m, "authorization_servers") }, "no authorization_servers"},
		{"http authorization server", func(m map[string]any) { m["authorization_servers"] = []string{"http://as.example"} }, "not an https URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newChain(t, []oauthfake.MCPOption{oauthfake.WithMetadata(tt.md)})
			_, err := c.conn.Connect(context.Background(), "default", "memdev", provider.ConnectRequest{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "http") {
				t.Fatalf("Connect = %v, want an error with %q naming a URL", err, tt.want)
			}
			if _, err := os.Stat(c.file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the grant file was written: %v", err)
			}
		})
	}
}

// TestBadAuthorizationServer: metadata of the authorization server that
// cannot be used is a clear error naming the URL, and nothing is written.
func TestBadAuthorizationServer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, md, want string
	}{
		{"no authorization endpoint", `{"issuer":"{as}","token_endpoint":"{as}/token"}`, "no authorization_endpoint"},
		{"no token endpoint", `{"issuer":"{as}","authorization_endpoint":"{as}/authorize"}`, "no token_endpoint"},
		{"issuer mismatch", `{"issuer":"https://evil.example","authorization_endpoint":"{as}/authorize","token_endpoint":"{as}/token"}`, "names issuer"},
		{"plain-http endpoint", `{"issuer":"{as}","authorization_endpoint":"http://as.example/authorize","token_endpoint":"{as}/token"}`, "is not an https URL"},
		{"not JSON", `<html>`, "not a metadata document"},
		{"oversized", `{"issuer":"` + strings.Repeat("x", 1<<20) + `"}`, "larger than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var as *httptest.Server
			as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/.well-known/oauth-authorization-server" {
					http.NotFound(w, r)
					return
				}
				_, _ = w.Write([]byte(strings.ReplaceAll(tt.md, "{as}", as.URL)))
			}))
			defer as.Close()
			c := newChain(t, []oauthfake.MCPOption{oauthfake.WithMetadata(func(m map[string]any) { m["authorization_servers"] = []string{as.URL} })})
			_, err := c.conn.Connect(context.Background(), "default", "memdev", provider.ConnectRequest{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), as.URL) {
				t.Fatalf("Connect = %v, want an error with %q naming %s", err, tt.want, as.URL)
			}
			if _, err := os.Stat(c.file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the grant file was written: %v", err)
			}
		})
	}
}

// TestForgottenClientAtTheAuthorizePage: a server that forgot the client
// shows the person an error page instead of redirecting; the person
// cancels (or the sign-in expires), and the next sign-in registers again
// instead of sending them to the same page.
func TestForgottenClientAtTheAuthorizePage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newChain(t, nil)
	first := c.signIn(t)
	if _, err := c.conn.Disconnect(ctx, "default", "memdev"); err != nil {
		t.Fatal(err)
	}
	c.srv.AS.ForgetClients()
	rep, err := c.conn.Connect(ctx, "default", "memdev", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true); err == nil || !strings.Contains(err.Error(), "Unknown application") {
		t.Fatalf("consent with a forgotten client: %v, want the server's unknown-application page", err)
	}
	if _, err := c.conn.Cancel(ctx, "default", "memdev"); err != nil {
		t.Fatal(err)
	}
	again := c.signIn(t)
	if again["client_id"][0] == first["client_id"][0] || c.srv.AS.Registrations() != 2 {
		t.Errorf("client %s (was %s), %d registrations; want a new registration", again["client_id"][0], first["client_id"][0], c.srv.AS.Registrations())
	}
}

// TestOfflineAccessAsksForConsent: a sign-in that asks for offline_access
// sends prompt=consent (OpenID Connect Core section 11), and one that does
// not, does not.
func TestOfflineAccessAsksForConsent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		scopes []string
		prompt string
	}{
		{[]string{"memory", "offline_access"}, "consent"},
		{[]string{"memory"}, ""},
	} {
		t.Run(strings.Join(tt.scopes, "+"), func(t *testing.T) {
			c := newChain(t, nil, mcp.WithScopes(tt.scopes...))
			rep, err := c.conn.Connect(context.Background(), "default", "memdev", provider.ConnectRequest{})
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(rep.Flow.AuthorizeURL)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Query().Get("prompt"); got != tt.prompt {
				t.Errorf("prompt = %q, want %q (authorize URL %s)", got, tt.prompt, rep.Flow.AuthorizeURL)
			}
		})
	}
}

// TestDeviceFlow: an MCP-style server whose authorization server announces
// the device flow lists it, and a device sign-in runs with the resource
// indicator (the fake refuses a token request without it).
func TestDeviceFlow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		ctx := context.Background()
		n := memnet.New()
		c := newChain(t, []oauthfake.MCPOption{oauthfake.WithMCPNetwork(n)}, mcp.WithHTTPClient(n.Client()))
		c.conn.HTTPClient = n.Client()
		c.conn.Flows = c.conn.NewFlows(flow.Config{}) // on the network in memory
		t.Cleanup(func() { c.conn.Flows.Close() })
		p, _ := c.conn.Registry.Lookup("memdev")
		if got := c.conn.MethodsContext(ctx, []provider.Provider{p})[0]; !slices.Contains(got, provider.AuthDevice) {
			t.Fatalf("methods = %v; want the device flow listed", got)
		}
		rep, err := c.conn.Connect(ctx, "default", "memdev", provider.ConnectRequest{Method: flow.MethodDevice})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Flow == nil || rep.Flow.Method != flow.MethodDevice || rep.Flow.UserCode == "" {
			t.Fatalf("Connect = %+v; want a pending device flow", rep.Flow)
		}
		if err := c.srv.AS.ApproveDevice(rep.Flow.UserCode); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		fl, err := c.conn.Wait(wctx, "default", "memdev")
		if err != nil || fl.State != flow.StateConnected {
			t.Fatalf("Wait = %+v, %v; want connected", fl, err)
		}
		block := testkit.ReadJSON(t, c.file)["servers"].(map[string]any)["memdev"].(map[string]any)
		if o, _ := block["oauth"].(map[string]any); o == nil || o["resource"] != c.srv.URL {
			t.Errorf("grant = %v; want it with its resource", block)
		}
	})
}

// TestGrantWithoutRefreshToken: a server that issues no refresh token (the
// MCP TypeScript SDK's example does not) is connected all the same; status
// says the grant cannot be renewed, and once it expires that a sign-in is
// needed.
func TestGrantWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := testkit.ClockAt(time.Now())
	c := newChain(t, []oauthfake.MCPOption{oauthfake.WithAuthServer(oauthfake.WithoutRefreshTokens())})
	c.conn.Clock = now
	c.signIn(t)
	rep, err := c.conn.Status(ctx, "default", "memdev")
	if err != nil || !rep.Connected || rep.Token == nil || rep.Token.Refreshable || rep.ReauthRequired {
		t.Fatalf("status = %+v (token %+v), %v; want connected, not refreshable", rep, rep.Token, err)
	}
	now.Advance(rep.Token.ExpiresAt.Add(time.Second).Sub(now.Now()))
	rep, err = c.conn.Status(ctx, "default", "memdev")
	if err != nil || !rep.ReauthRequired {
		t.Fatalf("status after expiry = %+v, %v; want reauth_required", rep, err)
	}
}

// TestIssuerMoved: a server whose metadata now name another authorization
// server makes the grant of the first one need a new sign-in (its refresh
// token goes to no other issuer).
func TestIssuerMoved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	var other string // when set, the authorization server the metadata name
	var mu sync.Mutex
	c := newChain(t, []oauthfake.MCPOption{oauthfake.WithMetadata(func(m map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if other != "" {
			m["authorization_servers"] = []string{other}
		}
	})}, mcp.WithClock(clock.Func(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })))
	c.signIn(t)
	if rep, err := c.conn.Status(ctx, "default", "memdev"); err != nil || rep.ReauthRequired {
		t.Fatalf("status = %+v, %v; want connected", rep, err)
	}
	as2 := oauthfake.NewServer()
	t.Cleanup(as2.Close)
	mu.Lock()
	other, now = as2.URL, now.Add(time.Hour) // past the discovery's reuse
	mu.Unlock()
	p, _ := c.conn.Registry.Lookup("memdev")
	c.conn.MethodsContext(ctx, []provider.Provider{p}) // discovers again
	if rep, err := c.conn.Status(ctx, "default", "memdev"); err != nil || !rep.ReauthRequired {
		t.Fatalf("status after the move = %+v, %v; want reauth_required", rep, err)
	}
}

// TestStepUp: a resource that answers 403 insufficient_scope through
// oauth.Transport is an *oauth.InsufficientScopeError with the scopes it
// asks for; status shows them, and the next sign-in asks for what the grant
// had and what is needed.
func TestStepUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newChain(t, nil)
	c.signIn(t)
	ts, err := c.conn.TokenSource("default", "memdev")
	if err != nil {
		t.Fatal(err)
	}
	res := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="memory.write admin"`)
		w.WriteHeader(http.StatusForbidden)
	}))
	defer res.Close()
	client := &http.Client{Transport: &oauth.Transport{Source: ts}}
	_, err = client.Get(res.URL + "/tools")
	var ise *oauth.InsufficientScopeError
	if !errors.As(err, &ise) || strings.Join(ise.Scopes, " ") != "memory.write admin" {
		t.Fatalf("request: %v; want an *InsufficientScopeError with the scopes asked for", err)
	}
	rep, err := c.conn.Status(ctx, "default", "memdev")
	if err != nil || strings.Join(rep.NeedsScopes, " ") != "memory.write admin" {
		t.Fatalf("status = %+v, %v; want needs_scopes", rep, err)
	}
	granted := rep.Token.Scope
	rep, err = c.conn.Connect(ctx, "default", "memdev", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	asked := strings.Fields(mustQueryScope(t, rep.Flow.AuthorizeURL))
	for _, want := range append(strings.Fields(granted), "memory.write", "admin") {
		if !slices.Contains(asked, want) {
			t.Errorf("the sign-in asks for %v; want %q among them", asked, want)
		}
	}
}

func mustQueryScope(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("scope")
}

// recordingTransport keeps the bodies of the registration requests it
// passes on.
type recordingTransport struct {
	mu     sync.Mutex
	bodies []string
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.Body != nil && strings.HasSuffix(r.URL.Path, "/register") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		rt.mu.Lock()
		rt.bodies = append(rt.bodies, string(b))
		rt.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// WithClientName names the client in a dynamic registration (RFC 7591
// client_name); WithoutOAuth makes a provider that takes API keys only.
func TestClientNameAndKeyOnly(t *testing.T) {
	t.Parallel()
	rt := &recordingTransport{}
	c := newChain(t, nil, mcp.WithClientName("Hermes desktop"), mcp.WithHTTPClient(&http.Client{Transport: rt}))
	c.signIn(t)
	rt.mu.Lock()
	bodies := rt.bodies
	rt.mu.Unlock()
	if len(bodies) != 1 || !strings.Contains(bodies[0], `"client_name":"Hermes desktop"`) {
		t.Errorf("registrations sent: %q, want one naming the client", bodies)
	}

	const good = "mem-key-0123456789"
	k := newChain(t, []oauthfake.MCPOption{oauthfake.WithAuthServer(oauthfake.WithAPIKey(good))}, mcp.WithoutOAuth())
	p, _ := k.conn.Registry.Lookup("memdev")
	if ms := p.AuthMethods(); len(ms) != 1 || ms[0] != provider.AuthKey {
		t.Errorf("AuthMethods() = %v, want the API key only", ms)
	}
	if _, err := k.conn.Connect(t.Context(), "default", "memdev", provider.ConnectRequest{}); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("Connect of a key-only provider: %v, want ErrUnsupported", err)
	}
	if rep, err := k.conn.ConnectAPIKey(t.Context(), "default", "memdev", good); err != nil || rep.Auth != provider.AuthAPIKey {
		t.Errorf("ConnectAPIKey = %+v, %v", rep, err)
	}
}
