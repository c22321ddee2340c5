package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// connFixture is a Connector wired to an in-process authorization server,
// with a Hermes layout in a temporary user home.
type connFixture struct {
	srv      *honchofake.Server
	conn     *provider.Connector
	userHome string
	root     string // $HERMES_HOME
}

// newFixture starts the server with srvOpts and adds the options extra
// returns for it to the Honcho provider's.
func newFixture(t *testing.T, srvOpts []honchofake.Option, extra func(*honchofake.Server) []honcho.Option) *connFixture {
	t.Helper()
	h := fixture.NewHermes(t, srvOpts...)
	opts := []honcho.Option{
		honcho.WithAuthorizeURL(h.AS.AuthorizeURL()),
		honcho.WithTokenURL(h.AS.TokenURL()),
		honcho.WithUserHome(h.UserHome),
	}
	if extra != nil {
		opts = append(opts, extra(h.AS)...)
	}
	reg, err := provider.NewRegistry(honcho.New(opts...), fixture.FakeProvider{ID: "nooauth"})
	if err != nil {
		t.Fatal(err)
	}
	return &connFixture{srv: h.AS, conn: h.Connector(t, reg), userHome: h.UserHome, root: h.Root}
}

func TestConnectorConnectCallbackStatusDisconnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, []honchofake.Option{honchofake.WithGrantConfig(map[string]any{"peerName": "alice", "workspace": "ws-new"})}, nil)
	path := filepath.Join(f.root, "honcho.json")
	testkit.WriteJSON(t, path, map[string]any{
		"workspace": "ws-old",
		"custom":    map[string]any{"keep": true},
		"hosts": map[string]any{
			"other":  map[string]any{"apiKey": "other-key-0123456789", "workspace": "theirs"},
			"hermes": map[string]any{"sessions": map[string]any{"a": "b"}},
		},
	})

	f.conn.CallbackBaseURL = "http://127.0.0.1:9/api/memory"
	const callback = "http://127.0.0.1:9/api/memory/profiles/default/providers/honcho/callback"
	rep, err := f.conn.Connect(ctx, "current", "honcho", provider.ConnectRequest{Source: "hermes-desktop"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Provider != "honcho" || rep.Profile != "default" || !rep.Supported || rep.Connected {
		t.Errorf("Connect report = %+v", rep)
	}
	if rep.Flow == nil || rep.Flow.State != flow.StatePending || rep.Flow.Method != flow.MethodBrowser || rep.Flow.RedirectURI != callback {
		t.Fatalf("Connect flow = %+v, want a pending browser flow to %s", rep.Flow, callback)
	}

	target, err := f.srv.Consent(ctx, f.srv.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	q := f.srv.LastAuthorizeQuery()
	if q.Get("source") != "hermes-desktop" || q.Get("config_path") != "~/.hermes/honcho.json" || q.Get("client_id") != "hermes-agent" || q.Get("scope") != "write" {
		t.Errorf("authorize query = %v", q)
	}
	if q.Get("code_challenge_method") != "S256" {
		t.Errorf("authorize query without PKCE S256: %v", q)
	}

	fl, err := f.conn.Callback(ctx, "default", "honcho", target.Query())
	if err != nil {
		t.Fatal(err)
	}
	if fl.State != flow.StateConnected {
		t.Fatalf("Callback flow = %+v, want connected", fl)
	}

	st, err := f.conn.Status(ctx, "default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Connected || st.Auth != provider.AuthOAuth || st.ReauthRequired || st.Token == nil ||
		st.Token.ClientID != "hermes-agent" || st.Token.Scope != "write" {
		t.Fatalf("Status = %+v (token %+v), want connected with oauth", st, st.Token)
	}
	if st.Token.ExpiresIn < 3500 || st.Token.ExpiresIn > 3600 {
		t.Errorf("ExpiresIn = %d, want about an hour", st.Token.ExpiresIn)
	}
	if st.Flow == nil || st.Flow.State != flow.StateConnected {
		t.Errorf("Status flow = %+v, want connected", st.Flow)
	}
	body, _ := json.Marshal(st)
	if strings.Contains(string(body), "hch-at-") || strings.Contains(string(body), "hch-rt-") {
		t.Errorf("status body holds a token: %s", body)
	}

	cfg := testkit.ReadJSON(t, path)
	hb := testkit.HostBlock(cfg, "hermes")
	access, _ := hb["apiKey"].(string)
	ob, _ := hb["oauth"].(map[string]any)
	refresh, _ := ob["refreshToken"].(string)
	if !f.srv.Active(access) || refresh == "" || ob["clientId"] != "hermes-agent" || ob["tokenEndpoint"] != f.srv.TokenURL() {
		t.Fatalf("stored host block = %v", hb)
	}
	if cfg["workspace"] != "ws-new" || cfg["peerName"] != "alice" {
		t.Errorf("consent config not merged: workspace %v peerName %v", cfg["workspace"], cfg["peerName"])
	}
	if hb["sessions"] == nil || testkit.HostBlock(cfg, "other")["apiKey"] != "other-key-0123456789" || cfg["custom"] == nil {
		t.Errorf("other keys were lost: %v", cfg)
	}

	res, err := f.conn.Disconnect(ctx, "default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Revoked || res.RevokeError != "" {
		t.Errorf("Disconnect = %+v, want revoked", res)
	}
	if got := f.srv.Stats().Revocations; got != 1 {
		t.Errorf("server saw %d revocations, want 1", got)
	}
	if f.srv.Active(refresh) || f.srv.Active(access) {
		t.Error("the grant is still active at the server")
	}
	cfg = testkit.ReadJSON(t, path)
	hb = testkit.HostBlock(cfg, "hermes")
	if _, ok := hb["apiKey"]; ok {
		t.Errorf("apiKey left in the host block: %v", hb)
	}
	if _, ok := hb["oauth"]; ok {
		t.Errorf("oauth left in the host block: %v", hb)
	}
	if hb["sessions"] == nil || testkit.HostBlock(cfg, "other")["apiKey"] != "other-key-0123456789" || testkit.HostBlock(cfg, "other")["workspace"] != "theirs" ||
		cfg["custom"] == nil || cfg["workspace"] != "ws-new" {
		t.Errorf("Disconnect lost other keys: %v", cfg)
	}

	st, err = f.conn.Status(ctx, "default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if st.Connected || st.Auth != "" || st.Token != nil {
		t.Errorf("Status after disconnect = %+v", st)
	}
	if res, err := f.conn.Disconnect(ctx, "default", "honcho"); err != nil || res.Removed {
		t.Errorf("second Disconnect = %+v, %v; want nothing removed and no error", res, err)
	}
}

func TestConnectorLoopbackTokensOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, []honchofake.Option{honchofake.WithGrantConfig(map[string]any{"peerName": "alice", "workspace": "ws-new"})}, nil)
	shared := filepath.Join(f.root, "honcho.json")
	testkit.WriteJSON(t, shared, map[string]any{"workspace": "ws-shared"})

	installed := make(chan *oauth2.Token, 1)
	f.conn.OnInstalled = func(_ connid.ID, tok *oauth2.Token) { installed <- tok }
	rep, err := f.conn.Connect(ctx, "work", "honcho", provider.ConnectRequest{
		Source: "hermes-cli", Redirect: flow.RedirectLoopback, TokensOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Flow == nil || !strings.HasPrefix(rep.Flow.RedirectURI, "http://127.0.0.1:") {
		t.Fatalf("flow = %+v, want a loopback redirect", rep.Flow)
	}
	if got := f.srv.LastAuthorizeQuery(); got != nil {
		t.Fatalf("authorize called before consent: %v", got)
	}
	target, err := f.srv.Consent(ctx, f.srv.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	if q := f.srv.LastAuthorizeQuery(); q.Get("config_path") != "~/.hermes/profiles/work/honcho.json" || q.Get("source") != "hermes-cli" {
		t.Errorf("authorize query = %v", q)
	}
	resp, err := http.Get(target.String()) // the browser following the redirect
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Connected to Honcho") {
		t.Errorf("loopback page %d %s, want 200 naming the provider", resp.StatusCode, page)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fl, err := f.conn.Wait(waitCtx, "work", "honcho")
	if err != nil || fl.State != flow.StateConnected {
		t.Fatalf("Wait = %+v, %v", fl, err)
	}
	select {
	case tok := <-installed:
		if cfg, _ := tok.Extra("config").(map[string]any); cfg["peerName"] != "alice" {
			t.Errorf("config of the token response = %v, want peerName alice", cfg)
		}
	default:
		t.Error("OnInstalled was not called before the flow connected")
	}

	own := filepath.Join(f.root, "profiles", "work", "honcho.json")
	cfg := testkit.ReadJSON(t, own)
	if hb := testkit.HostBlock(cfg, "hermes_work"); hb == nil || !f.srv.Active(hb["apiKey"].(string)) {
		t.Errorf("grant not written to %s under hermes_work: %v", own, cfg)
	}
	if _, ok := cfg["workspace"]; ok {
		t.Errorf("TokensOnly merged the consent config: %v", cfg)
	}
	if testkit.ReadJSON(t, shared)["workspace"] != "ws-shared" || testkit.HostBlock(testkit.ReadJSON(t, shared), "hermes_work") != nil {
		t.Error("the default profile's file changed")
	}
	if loc, err := (honcho.New(honcho.WithUserHome(f.userHome))).GrantLocation(provider.Profile{Name: "work", Home: filepath.Dir(own), DefaultHome: f.root}); err != nil || loc.ReadPath != own {
		t.Errorf("after connecting, the grant is read from %s, want %s", loc.ReadPath, own)
	}

	// The token source shares the store that wrote the grant.
	ts, err := f.conn.TokenSource("work", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.TokenContext(ctx)
	if err != nil || tok.AccessToken != testkit.HostBlock(cfg, "hermes_work")["apiKey"] {
		t.Errorf("TokenContext = %v, %v", tok != nil, err)
	}
}

func TestConnectorDeviceFlow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		ctx := context.Background()
		f := newFixture(t, []honchofake.Option{oauthfake.WithInMemoryNetwork()}, nil)
		rep, err := f.conn.Connect(ctx, "default", "honcho", provider.ConnectRequest{Method: flow.MethodDevice})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Flow == nil || rep.Flow.Method != flow.MethodDevice || rep.Flow.UserCode == "" || rep.Flow.VerificationURI == "" {
			t.Fatalf("device flow = %+v", rep.Flow)
		}
		if err := f.srv.ApproveDevice(rep.Flow.UserCode); err != nil {
			t.Fatal(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		fl, err := f.conn.Wait(waitCtx, "default", "honcho")
		if err != nil || fl.State != flow.StateConnected {
			t.Fatalf("Wait = %+v, %v", fl, err)
		}
		st, err := f.conn.Status(ctx, "default", "honcho")
		if err != nil || st.Auth != provider.AuthOAuth {
			t.Fatalf("Status = %+v, %v", st, err)
		}
		if f.srv.Stats().DeviceGrants != 1 {
			t.Errorf("DeviceGrants = %d", f.srv.Stats().DeviceGrants)
		}
	})
}

func TestConnectorErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil, nil)
	browser := provider.ConnectRequest{Redirect: flow.RedirectCallback}
	f.conn.CallbackBaseURL = "http://127.0.0.1:9/api/memory"
	tests := []struct {
		name     string
		profile  string
		provider string
		req      provider.ConnectRequest
		want     error
	}{
		{"unknown provider", "default", "mem9", browser, provider.ErrUnknownProvider},
		{"unknown provider wins over a bad profile", "../x", "mem9", browser, provider.ErrUnknownProvider},
		{"invalid profile", "../x", "honcho", browser, provider.ErrInvalidProfile},
		{"uppercase profile", "Work", "honcho", browser, provider.ErrInvalidProfile},
		{"missing profile", "nope", "honcho", browser, provider.ErrProfileNotFound},
		{"provider without oauth", "default", "nooauth", browser, provider.ErrUnsupported},
		{"unknown method", "default", "honcho", provider.ConnectRequest{Method: "telepathy"}, provider.ErrUnsupported},
		{"device with a redirect", "default", "honcho", provider.ConnectRequest{Method: flow.MethodDevice, Redirect: flow.RedirectLoopback}, flow.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.conn.Connect(ctx, tt.profile, tt.provider, tt.req)
			if !errors.Is(err, tt.want) {
				t.Errorf("Connect error = %v, want %v", err, tt.want)
			}
			if tt.provider != "nooauth" && !errors.Is(tt.want, provider.ErrUnsupported) && !errors.Is(tt.want, flow.ErrInvalidRequest) {
				if _, err := f.conn.Status(ctx, tt.profile, tt.provider); !errors.Is(err, tt.want) {
					t.Errorf("Status error = %v, want %v", err, tt.want)
				}
			}
		})
	}

	t.Run("conflict", func(t *testing.T) {
		if _, err := f.conn.Connect(ctx, "default", "honcho", browser); err != nil {
			t.Fatal(err)
		}
		again, err := f.conn.Connect(ctx, "default", "honcho", browser)
		if err != nil || again.Flow == nil || again.Flow.State != flow.StatePending {
			t.Fatalf("second identical Connect = %+v, %v; want the pending flow", again.Flow, err)
		}
		if _, err := f.conn.Connect(ctx, "default", "honcho", provider.ConnectRequest{Method: flow.MethodDevice}); !errors.Is(err, provider.ErrConflict) {
			t.Errorf("device Connect during a browser flow: error = %v, want ErrConflict", err)
		}
		rep, err := f.conn.Cancel(ctx, "default", "honcho")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Flow != nil && rep.Flow.State == flow.StatePending {
			t.Errorf("flow still pending after Cancel: %+v", rep.Flow)
		}
		if _, err := f.conn.Cancel(ctx, "default", "honcho"); err != nil {
			t.Errorf("Cancel with nothing pending: %v", err)
		}
	})

	t.Run("status of a provider without oauth", func(t *testing.T) {
		rep, err := f.conn.Status(ctx, "default", "nooauth")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Supported || rep.Flow != nil {
			t.Errorf("Status = %+v", rep)
		}
	})
}

func TestConnectorDisconnectRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	noMetadata := httptest.NewServer(http.NotFoundHandler())
	defer noMetadata.Close()

	tests := []struct {
		name        string
		opts        func(*honchofake.Server) []honcho.Option
		wantRevoked bool
		wantErr     bool
		wantServer  int    // revocations the authorization server saw
		sentence    string // NotRevokedSentence has it
	}{
		{"discovered from the issuer", nil, true, false, 1, ""},
		{"explicit endpoint", func(srv *honchofake.Server) []honcho.Option {
			return []honcho.Option{honcho.WithIssuer(noMetadata.URL), honcho.WithRevocationURL(srv.RevocationURL())}
		}, true, false, 1, ""},
		{"endpoint fails", func(*honchofake.Server) []honcho.Option {
			return []honcho.Option{honcho.WithRevocationURL(failing.URL)}
		}, false, true, 0, "Honcho did not revoke it"},
		// The server cannot revoke: said so, with when the token ends.
		{"no endpoint known", func(*honchofake.Server) []honcho.Option {
			return []honcho.Option{honcho.WithIssuer(noMetadata.URL)}
		}, false, true, 0, "Honcho offers no way to revoke it: its access token works until"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, tt.opts)
			tok := seedGrant(t, f, filepath.Join(f.root, "honcho.json"))
			res, err := f.conn.Disconnect(ctx, "default", "honcho")
			if err != nil {
				t.Fatal(err)
			}
			if res.Revoked != tt.wantRevoked || (res.RevokeError != "") != tt.wantErr {
				t.Errorf("Disconnect = %+v", res)
			}
			if got := res.NotRevokedSentence("Honcho"); (tt.sentence == "") != (got == "") || !strings.Contains(got, tt.sentence) {
				t.Errorf("NotRevokedSentence = %q; want it with %q", got, tt.sentence)
			}
			if !tt.wantRevoked && !res.ValidUntil.Equal(tok.Expiry.Truncate(time.Second)) {
				t.Errorf("ValidUntil = %v; want the access token's expiry %v", res.ValidUntil, tok.Expiry)
			}
			if strings.Contains(res.RevokeError, tok.RefreshToken) || strings.Contains(res.RevokeError, tok.AccessToken) {
				t.Errorf("RevokeError holds a token: %s", res.RevokeError)
			}
			if got := f.srv.Stats().Revocations; got != tt.wantServer {
				t.Errorf("server saw %d revocations, want %d", got, tt.wantServer)
			}
			if hb := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(f.root, "honcho.json")), "hermes"); hb["apiKey"] != nil || hb["oauth"] != nil {
				t.Errorf("grant not removed: %v", hb)
			}
		})
	}
}

// seedGrant writes a fresh grant of f's server into path for host "hermes".
func seedGrant(t *testing.T, f *connFixture, path string) *oauth2.Token {
	t.Helper()
	tok := f.srv.IssueGrant("write")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": tok.Expiry.Unix(),
			"clientId": f.srv.ClientID(), "tokenEndpoint": f.srv.TokenURL(), "scope": "write", "tokenType": "Bearer"},
	}}})
	return tok
}

func TestConnectorReauthSharedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil, nil)
	path := filepath.Join(f.root, "honcho.json")
	tok := f.srv.IssueGrant("write")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": time.Now().Add(-time.Hour).Unix(),
			"clientId": f.srv.ClientID(), "tokenEndpoint": f.srv.TokenURL()},
	}}})
	f.srv.RevokeGrant(tok.RefreshToken)

	ts, err := f.conn.TokenSource("default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.TokenContext(ctx); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("TokenContext error = %v, want ErrReauthRequired", err)
	}
	rep, err := f.conn.Status(ctx, "default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.ReauthRequired || rep.Token == nil || rep.Token.ExpiresIn != 0 {
		t.Errorf("Status = %+v, want reauth_required with an expired token", rep)
	}
}

// TestConnectorDeviceFlowNeedsMetadata: device support is read from the
// issuer's RFC 8414 metadata and fails closed, even when a device endpoint
// is configured by hand.
func TestConnectorDeviceFlowNeedsMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		device bool                                     // the server's device flow (and its metadata entry)
		extra  func(*honchofake.Server) []honcho.Option // provider options beyond the fixture's
	}{
		{"metadata without the device grant", false, func(s *honchofake.Server) []honcho.Option {
			return []honcho.Option{honcho.WithDeviceAuthURL(s.URL + "/oauth/device_authorization")}
		}},
		{"no metadata at the issuer", true, func(s *honchofake.Server) []honcho.Option {
			return []honcho.Option{honcho.WithIssuer(s.URL + "/nowhere")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, []honchofake.Option{honchofake.WithDeviceFlow(tt.device)}, tt.extra)
			_, err := f.conn.Connect(context.Background(), "default", "honcho", provider.ConnectRequest{Method: flow.MethodDevice})
			if !errors.Is(err, provider.ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			if f.srv.Stats().TokenRequests != 0 {
				t.Errorf("a device flow reached the token endpoint")
			}
		})
	}
}

// TestConnectorDiscoveryFillsEndpoints: endpoints the provider leaves empty
// come from the issuer's metadata, looked up once and reused.
func TestConnectorDiscoveryFillsEndpoints(t *testing.T) {
	t.Parallel()
	var lookups int
	f := newFixture(t, nil, nil)
	hp := honcho.New(honcho.WithIssuer(f.srv.URL), honcho.WithUserHome(f.userHome))
	reg, err := provider.NewRegistry(bareEndpoints{hp})
	if err != nil {
		t.Fatal(err)
	}
	f.conn.Registry = reg
	f.conn.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/") {
			lookups++
		}
		return f.srv.Client().Transport.RoundTrip(r)
	})}
	for range 2 {
		rep, err := f.conn.Connect(context.Background(), "default", "honcho", provider.ConnectRequest{Method: flow.MethodBrowser, Redirect: flow.RedirectLoopback})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rep.Flow.AuthorizeURL, f.srv.AuthorizeURL()+"?") {
			t.Fatalf("authorize URL %q not from metadata", rep.Flow.AuthorizeURL)
		}
	}
	if lookups != 1 {
		t.Errorf("metadata fetched %d times, want 1 (cached)", lookups)
	}
}

// TestConnectorDiscoveryFailureRetried: a metadata lookup that failed (a
// network blip) is not kept like one that succeeded: it is asked again
// after seconds, then after twice as long, and once it answers the
// device flow is offered.
func TestConnectorDiscoveryFailureRetried(t *testing.T) {
	t.Parallel()
	var lookups int
	down := true
	clock := testkit.NewClock()
	f := newFixture(t, []honchofake.Option{honchofake.WithDeviceFlow(true)}, nil)
	f.conn.Clock = clock
	base := f.conn.HTTPClient
	if base == nil {
		base = f.srv.Client()
	}
	f.conn.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/") {
			if r.URL.Path == "/.well-known/oauth-authorization-server" {
				lookups++ // one lookup asks two paths when the first fails
			}
			if down {
				return nil, errors.New("network is unreachable")
			}
		}
		return base.Transport.RoundTrip(r)
	})}
	device := func() error {
		_, err := f.conn.Connect(context.Background(), "default", "honcho", provider.ConnectRequest{Method: flow.MethodDevice})
		if err == nil {
			f.conn.Cancel(context.Background(), "default", "honcho")
		}
		return err
	}
	steps := []struct {
		advance time.Duration
		down    bool
		lookups int // in all, after the step
		offered bool
	}{
		{0, true, 1, false},               // the blip
		{time.Second, true, 1, false},     // reused for seconds
		{5 * time.Second, true, 2, false}, // asked again: still down
		{5 * time.Second, true, 2, false}, // now it waits 10 s
		{5 * time.Second, false, 3, true}, // back: offered
		{time.Minute, false, 3, true},     // a success is kept
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		down = st.down
		err := device()
		if offered := err == nil; offered != st.offered || lookups != st.lookups {
			t.Fatalf("step %d: device flow offered %v (%v), %d lookups; want %v, %d", i, offered, err, lookups, st.offered, st.lookups)
		}
	}
}

// bareEndpoints is a provider that configures only its issuer.
type bareEndpoints struct{ *honcho.Provider }

func (b bareEndpoints) Endpoints(ctx context.Context, p provider.Profile) (provider.Endpoints, error) {
	ep, err := b.Provider.Endpoints(ctx, p)
	ep.AuthorizeURL, ep.TokenURL, ep.DeviceAuthURL, ep.RevocationURL = "", "", "", ""
	return ep, err
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestValidateCallbackBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"http://127.0.0.1:8080/api/memory", "http://127.0.0.1:8080/api/memory", true},
		{"http://127.0.0.1:8080/api/memory/", "http://127.0.0.1:8080/api/memory", true},
		{"https://app.example", "https://app.example", true},
		{"127.0.0.1:8080", "", false},
		{"/api/memory", "", false},
		{"javascript:alert(1)", "", false},
		{"http:///path", "", false},
		{"http://h/p#frag", "", false},
		{"http://h/p?", "", false},
		{"http://localhost:8080/api/memory", "", false}, // an IP literal, per RFC 8252 section 8.3
		{"http://LocalHost/api", "", false},
	}
	for _, tt := range tests {
		got, err := provider.ValidateCallbackBaseURL(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("provider.ValidateCallbackBaseURL(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// The Connector decides a browser flow's redirect: its callback route when
// it has a callback base URL, else a loopback listener; the callback mode
// without a base URL is refused.
func TestConnectorDefaultRedirect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, nil, nil)
	rep, err := f.conn.Connect(ctx, "work", "honcho", provider.ConnectRequest{})
	if err != nil || !strings.HasPrefix(rep.Flow.RedirectURI, "http://127.0.0.1:") || !strings.HasSuffix(rep.Flow.RedirectURI, "/callback") ||
		strings.Contains(rep.Flow.RedirectURI, "/profiles/") {
		t.Fatalf("Connect without a base URL = %+v, %v; want a loopback flow", rep.Flow, err)
	}
	if _, err := f.conn.Cancel(ctx, "work", "honcho"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.conn.Connect(ctx, "work", "honcho", provider.ConnectRequest{Redirect: flow.RedirectCallback}); !errors.Is(err, provider.ErrNoCallbackURL) {
		t.Fatalf("callback mode without a base URL: %v, want ErrNoCallbackURL", err)
	}

	g := newFixture(t, nil, nil)
	g.conn.CallbackBaseURL = "http://127.0.0.1:8080/api/memory"
	rep, err = g.conn.Connect(ctx, "work", "honcho", provider.ConnectRequest{})
	if want := "http://127.0.0.1:8080/api/memory/profiles/work/providers/honcho/callback"; err != nil || rep.Flow.RedirectURI != want {
		t.Fatalf("Connect with a base URL = %+v, %v; want redirect %s", rep.Flow, err, want)
	}
}

// TestConnectorForeignTokenPrefix: a server whose access tokens lack the
// hch-at- prefix ends the sign-in with words that say so and name the
// setting to change, and nothing is stored.
func TestConnectorForeignTokenPrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, []honchofake.Option{honchofake.WithAccessTokenPrefix("other-at-")}, nil)
	f.conn.CallbackBaseURL = "http://127.0.0.1:9/api/memory"
	rep, err := f.conn.Connect(ctx, "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	target, err := f.srv.Consent(ctx, f.srv.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := f.conn.Callback(ctx, "default", "honcho", target.Query())
	if err == nil || fl.State != flow.StateError || !strings.Contains(fl.Detail, `"hch-at-"`) || !strings.Contains(fl.Detail, "HONCHO_OAUTH_TOKEN_PREFIX") {
		t.Fatalf("Callback = %+v, %v; want an error naming the prefix and the setting", fl, err)
	}
	if st, err := f.conn.Status(ctx, "default", "honcho"); err != nil || st.Connected {
		t.Errorf("Status = %+v, %v; want not connected", st, err)
	}
}

// fixedPort is Honcho with its loopback sign-ins registered at addr.
type fixedPort struct {
	*honcho.Provider
	addr string
}

func (p fixedPort) LoopbackAddr() string { return p.addr }

// A provider's registered loopback address is where its loopback sign-in
// listens; the Connector's LoopbackAddr overrides every provider's.
func TestConnectorLoopbackAddr(t *testing.T) {
	// Not parallel: a parallel test's listener could take the free port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // free again: the provider's port for this test
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(fixedPort{honcho.New(h.HonchoOptions()...), addr})
	if err != nil {
		t.Fatal(err)
	}
	conn := h.Connector(t, reg)
	conn.LoopbackAddr = ""
	req := provider.ConnectRequest{Redirect: flow.RedirectLoopback}
	rep, err := conn.Connect(t.Context(), "default", "honcho", req)
	if err != nil || rep.Flow == nil || rep.Flow.RedirectURI != "http://"+addr+"/callback" {
		t.Fatalf("Connect = %+v, %v; want the provider's loopback address %s", rep.Flow, err, addr)
	}
	if _, err := conn.Cancel(t.Context(), "default", "honcho"); err != nil {
		t.Fatal(err)
	}
	conn.LoopbackAddr = "127.0.0.1:0"
	rep, err = conn.Connect(t.Context(), "default", "honcho", req)
	if err != nil || rep.Flow == nil || rep.Flow.RedirectURI == "http://"+addr+"/callback" || !strings.HasPrefix(rep.Flow.RedirectURI, "http://127.0.0.1:") {
		t.Fatalf("Connect with the Connector's address = %+v, %v; want any free port", rep.Flow, err)
	}
}

// TestNewFlowsWiresTheConnector: a manager from NewFlows tells the
// Connector's bus of every flow and runs on the Connector's clock, whoever
// builds it (the router, the CLI).
func TestNewFlowsWiresTheConnector(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := testkit.ClockAt(start)
	bus := events.NewBus()
	c := &provider.Connector{Clock: clk, Events: bus}
	m := c.NewFlows(flow.Config{})
	defer m.Close()
	key := connid.ID{Profile: "default", Provider: "x"}
	sub, err := bus.Subscribe(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	f, err := m.Start(context.Background(), flow.Request{Key: key, Method: flow.MethodBrowser, Redirect: flow.RedirectLoopback,
		Config:   oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{AuthURL: "http://127.0.0.1:9/authorize", TokenURL: "http://127.0.0.1:9/token"}},
		Complete: func(context.Context, *oauth2.Token) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Cancel(context.Background(), key)
	if !f.ExpiresAt.After(start) || f.ExpiresAt.After(start.Add(time.Hour)) {
		t.Errorf("the flow expires at %v; want soon after the Connector's clock, %v", f.ExpiresAt, start)
	}
	select {
	case ev := <-sub.Events():
		if ev.Kind != events.KindFlow || ev.Flow == nil || ev.Flow.State != flow.StatePending {
			t.Errorf("first event %+v; want the pending flow", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Connector's bus heard nothing of the flow")
	}
}

// A provider that names no client and registers none gets one answer,
// whichever sign-in is asked for: unsupported, saying so; no flow starts.
func TestConnectWithoutClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(*honchofake.Server) []honcho.Option { return []honcho.Option{honcho.WithClientID("")} })
	for _, req := range []provider.ConnectRequest{
		{Method: flow.MethodBrowser, Redirect: flow.RedirectLoopback},
		{Method: flow.MethodDevice},
	} {
		_, err := f.conn.Connect(t.Context(), "default", "honcho", req)
		if !errors.Is(err, provider.ErrUnsupported) || !strings.Contains(err.Error(), "names no OAuth client") {
			t.Errorf("Connect(%s) = %v; want ErrUnsupported naming the missing client", req.Method, err)
		}
		if st, _ := f.conn.Status(t.Context(), "default", "honcho"); st.Flow != nil && st.Flow.State == flow.StatePending {
			t.Errorf("a flow started without a client: %+v", st.Flow)
		}
	}
}

// TestOwnWriteSeenFirst: a write this Connector makes (a sign-in, an API
// key, a disconnect) is published once, as its own, even when the watch
// sees the file change before the Connector publishes (the event is
// expected before the write), and even when the watch looks at a write
// only after the next one was expected (every recent event is kept).
// Without either, the watch publishes the write as another process's.
func TestOwnWriteSeenFirst(t *testing.T) {
	t.Parallel()
	// The watch looks between the write and the publish.
	t.Run("before the publish", func(t *testing.T) {
		t.Parallel()
		w := newWatched(t)
		w.c.Expect(w.key, events.Connected)
		w.connect()
		w.quiet("before the Connector published its sign-in")
		w.c.Publish(w.key, events.Connected)
		w.published(events.Connected)
		w.c.Expect(w.key, events.Disconnected)
		w.disconnect()
		w.quiet("before the Connector published its disconnect")
		w.c.Publish(w.key, events.Disconnected)
		w.published(events.Disconnected)
	})
	// The watch looks at the sign-in once the disconnect is expected.
	t.Run("after the next write is expected", func(t *testing.T) {
		t.Parallel()
		w := newWatched(t)
		w.c.Expect(w.key, events.Connected)
		w.connect()
		w.c.Publish(w.key, events.Connected)
		w.c.Expect(w.key, events.Disconnected)
		w.published(events.Connected)
		w.quiet("after the sign-in, with the disconnect expected")
		w.disconnect()
		w.c.Publish(w.key, events.Disconnected)
		w.published(events.Disconnected)
		w.quiet("after the disconnect")
	})
}

// watched is a Connector following the work profile's Honcho connection,
// with what its bus publishes.
type watched struct {
	t    *testing.T
	c    *provider.Connector
	key  connid.ID
	path string
	seen chan events.Event
}

func newWatched(t *testing.T) *watched {
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	w := &watched{t: t, c: h.Connector(t, reg), key: connid.ID{Profile: "work", Provider: "honcho"},
		path: filepath.Join(h.Root, "profiles", "work", "honcho.json"), seen: make(chan events.Event, 10)}
	w.c.Events = events.NewBus()
	stop, err := w.c.Follow(t.Context(), "work", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	t.Cleanup(w.c.Events.Tap(func(ev events.Event) { w.seen <- ev }))
	return w
}

// connect and disconnect write the file as a sign-in with an API key and
// a disconnect do.
func (w *watched) connect() {
	testkit.WriteJSON(w.t, w.path, map[string]any{"hosts": map[string]any{"hermes_work": map[string]any{"apiKey": "hch-v3-0123456789abcdef"}}})
}
func (w *watched) disconnect() {
	testkit.WriteJSON(w.t, w.path, map[string]any{"hosts": map[string]any{}})
}

// quiet fails when anything is published within ten times the watch's
// debounce.
func (w *watched) quiet(when string) {
	w.t.Helper()
	select {
	case ev := <-w.seen:
		w.t.Fatalf("%s, the watch published %+v", when, ev)
	case <-time.After(100 * time.Millisecond):
	}
}

// published fails unless the next event is the Connector's own what.
func (w *watched) published(what string) {
	w.t.Helper()
	select {
	case ev := <-w.seen:
		if ev.Connection != what || ev.Remote {
			w.t.Fatalf("published %+v; want the Connector's own %s", ev, what)
		}
	case <-time.After(10 * time.Second):
		w.t.Fatalf("nothing published; want %s", what)
	}
}
