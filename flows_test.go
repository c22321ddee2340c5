package memconnect_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// callbackHTML asserts that x is an HTML page with status want whose text
// contains every string in has.
func callbackHTML(t *testing.T, x fixture.Exchange, want int, has ...string) {
	t.Helper()
	if x.Status != want {
		t.Errorf("callback = %d, want %d:\n%s", x.Status, want, x.Body)
	}
	if ct := x.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("callback Content-Type = %q, want HTML", ct)
	}
	for k, v := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if x.Header.Get(k) != v {
			t.Errorf("callback %s = %q, want %q", k, x.Header.Get(k), v)
		}
	}
	for _, s := range has {
		if !strings.Contains(string(x.Body), s) {
			t.Errorf("callback page lacks %q:\n%s", s, x.Body)
		}
	}
	if id := x.Header.Get("X-Request-Id"); !strings.Contains(string(x.Body), id) {
		t.Errorf("callback page lacks the request id %q", id)
	}
}

func TestCallbackPages(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithCallback())
	rep := e.Connect("default", "honcho", "")
	state := mustQuery(t, rep.Flow.AuthorizeURL).Get("state")
	cb := "/profiles/default/providers/honcho/callback"
	tests := []struct {
		name   string
		path   string
		status int
		has    []string
	}{
		{"no state", cb + "?code=abc", 400, []string{"This sign-in link is not valid", "connect again"}},
		{"unknown state", cb + "?code=abc&state=forged", 400, []string{"This sign-in link is not valid"}},
		{"other profile", "/profiles/work/providers/honcho/callback?code=abc&state=" + state, 400, []string{"not valid"}},
		{"invalid profile", "/profiles/%3Cscript%3E/providers/honcho/callback?state=" + state, 400, []string{"not valid"}},
		{"unknown provider", "/profiles/default/providers/%3Cscript%3Ealert(1)%3C%2Fscript%3E/callback", 404, []string{"does not name a profile and provider"}},
		{"missing profile", "/profiles/nobody/providers/honcho/callback", 404, []string{"not valid"}},
		{"denied", cb + "?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=" + state, 400, []string{"Sign-in was denied", "connect again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Do(fixture.Request{Method: "GET", Path: tt.path})
			callbackHTML(t, x, tt.status, tt.has...)
			// One script, the page's own fixed one; nothing of the request.
			if strings.Count(string(x.Body), "<script") > 1 || strings.Contains(string(x.Body), "alert(") || strings.Contains(string(x.Body), "<b>") {
				t.Errorf("page echoes markup:\n%s", x.Body)
			}
			if strings.Contains(string(x.Body), state) {
				t.Error("page echoes the state")
			}
		})
	}
	// The bad callbacks before "denied" left the flow pending; the denial ended it.
	if st := e.Status("default", "honcho"); st.Flow == nil || st.Flow.State != flow.StateError || st.Flow.Detail != "Sign-in was denied" {
		t.Errorf("flow after denial = %+v", st.Flow)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// secrets collects the secret values a test saw, to look for in logs.
type secrets []string

func (s *secrets) add(vs ...string) {
	for _, v := range vs {
		if len(v) >= 8 {
			*s = append(*s, v)
		}
	}
}

// checkLogs fails if the log holds a secret or a query string.
func checkLogs(t *testing.T, logs string, s secrets) {
	t.Helper()
	if logs == "" {
		t.Fatal("nothing was logged")
	}
	for _, v := range s {
		if strings.Contains(logs, v) {
			t.Errorf("the log holds the secret %q", v)
		}
	}
	for _, bad := range []string{"code=", "state=", "hch-at-", "hch-rt-"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log holds %q:\n%s", bad, logs)
		}
	}
	if m := regexp.MustCompile(`"path":"[^"]*\?`).FindString(logs); m != "" {
		t.Errorf("the log holds a path with a query: %s", m)
	}
}

// TestEndToEndCallback runs the whole browser flow in callback mode, as
// examples/server -dev does: connect, consent at the authorization server,
// the browser's GET of the callback, status, disconnect.
func TestEndToEndCallback(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const token = "session-secret-e2e"
	e := fixture.NewEnv(t, fixture.WithCallback(), fixture.WithSessionToken(token))
	var seen secrets
	seen.add(token)

	rep := e.Connect("default", "honcho", `{"source":"hermes-desktop"}`)
	f := rep.Flow
	if f.RedirectURI != e.Base+"/profiles/default/providers/honcho/callback" {
		t.Fatalf("redirect_uri = %q", f.RedirectURI)
	}
	seen.add(mustQuery(t, f.AuthorizeURL).Get("state"), mustQuery(t, f.AuthorizeURL).Get("code_challenge"))

	target, err := e.AS.Consent(ctx, e.AS.Client(), f.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	if q := e.AS.LastAuthorizeQuery(); q.Get("source") != "hermes-desktop" || q.Get("config_path") != "~/.hermes/honcho.json" {
		t.Errorf("authorize query = %v", q)
	}
	seen.add(target.Query().Get("code"))
	if !strings.HasPrefix(target.String(), f.RedirectURI+"?") {
		t.Fatalf("consent redirects to %s, want the callback route", target)
	}
	// The browser follows the redirect: no session token.
	x := e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base), NoAuth: true})
	callbackHTML(t, x, 200, "Connected to Honcho", "you can close this window")

	// Replaying the callback changes nothing.
	x = e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base), NoAuth: true})
	callbackHTML(t, x, 400, "not valid")

	st := e.Status("default", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Token == nil || st.Token.ClientID != "hermes-agent" ||
		st.Token.Scope != "write" || st.Token.ExpiresIn <= 0 || st.Flow == nil || st.Flow.State != flow.StateConnected {
		t.Fatalf("status after callback = %+v (flow %+v)", st, st.Flow)
	}
	cfg := filepath.Join(e.Root, "honcho.json")
	blk := testkit.HostBlock(testkit.ReadJSON(t, cfg), "hermes")
	oa, _ := blk["oauth"].(map[string]any)
	rt, _ := oa["refreshToken"].(string)
	at, _ := blk["apiKey"].(string)
	seen.add(rt, at)
	if !strings.HasPrefix(at, "hch-at-") || !e.AS.Active(rt) {
		t.Fatalf("host block = %v", blk)
	}
	if peer := testkit.ReadJSON(t, cfg)["peerName"]; peer != "you" {
		t.Errorf("peerName = %v, want the consent's \"you\" merged into the file", peer)
	}

	x = e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/default/providers/honcho/connection"})
	if want := `{"disconnected":true,"removed":true,"revoked":true,"revoke_error":null}`; x.Status != 200 || strings.TrimSpace(string(x.Body)) != want {
		t.Fatalf("disconnect = %d %s, want %s", x.Status, x.Body, want)
	}
	if e.AS.Active(rt) || e.AS.Active(at) {
		t.Error("the grant is still active at the server after disconnect")
	}
	if st := e.Status("default", "honcho"); st.Connected || st.Auth != "" || st.Token != nil {
		t.Errorf("status after disconnect = %+v", st)
	}
	if blk := testkit.HostBlock(testkit.ReadJSON(t, cfg), "hermes"); blk["apiKey"] != nil || blk["oauth"] != nil {
		t.Errorf("host block after disconnect = %v, want the grant gone", blk)
	}
	if peer := testkit.ReadJSON(t, cfg)["peerName"]; peer != "you" {
		t.Errorf("peerName after disconnect = %v, want it kept", peer)
	}
	// The state and the PKCE challenge are in the authorize_url of the
	// status body, by design; the code and the tokens never are.
	for _, x := range e.Exchanges() {
		for _, v := range []string{token, target.Query().Get("code"), rt, at} {
			if strings.Contains(string(x.Body), v) {
				t.Errorf("%s %s answered the secret %q", x.Req.Method, x.Req.URL.Path, v)
			}
		}
	}
	checkLogs(t, e.Logs.String(), seen)
}

// TestEndToEndLoopback runs the browser flow in loopback mode: the redirect
// URI is a one-shot listener on 127.0.0.1 with an OS-assigned port.
func TestEndToEndLoopback(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := fixture.NewEnv(t)
	var seen secrets
	rep := e.Connect("work", "honcho", `{"redirect":"loopback"}`)
	f := rep.Flow
	u, err := url.Parse(f.RedirectURI)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "8765" || u.Path != "/callback" {
		t.Fatalf("redirect_uri = %q, want http://127.0.0.1:<os port>/callback", f.RedirectURI)
	}
	seen.add(mustQuery(t, f.AuthorizeURL).Get("state"))
	target, err := e.AS.Consent(ctx, e.AS.Client(), f.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	seen.add(target.Query().Get("code"))
	resp, err := http.Get(target.String()) // the browser at the loopback listener
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Connected") {
		t.Fatalf("loopback callback = %d %s", resp.StatusCode, page)
	}
	st := e.Status("work", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Flow == nil || st.Flow.State != flow.StateConnected {
		t.Fatalf("status = %+v, flow %+v", st, st.Flow)
	}
	blk := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(e.Root, "profiles", "work", "honcho.json")), "hermes_work")
	oa, _ := blk["oauth"].(map[string]any)
	rt, _ := oa["refreshToken"].(string)
	at, _ := blk["apiKey"].(string)
	seen.add(rt, at)
	if x := e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/work/providers/honcho/connection"}); x.Status != 200 || x.JSON(t)["revoked"] != true {
		t.Fatalf("disconnect = %d %s", x.Status, x.Body)
	}
	if st := e.Status("work", "honcho"); st.Connected {
		t.Errorf("still connected after disconnect: %+v", st)
	}
	checkLogs(t, e.Logs.String(), seen)
}

func TestEndToEndDevice(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		e := fixture.NewEnv(t, fixture.InMemory())
		rep := e.Connect("default", "honcho", `{"method":"device"}`)
		if err := e.AS.ApproveDevice(rep.Flow.UserCode); err != nil {
			t.Fatal(err)
		}
		f, err := e.Flows.Wait(ctx, connid.ID{Profile: "default", Provider: "honcho"})
		if err != nil || f.State != flow.StateConnected {
			t.Fatalf("Wait = %+v, %v", f, err)
		}
		st := e.Status("default", "honcho")
		if !st.Connected || st.Auth != provider.AuthOAuth || st.Flow.State != flow.StateConnected || st.Flow.UserCode != "" {
			t.Errorf("status = %+v, flow %+v", st, st.Flow)
		}
		blk := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(e.Root, "honcho.json")), "hermes")
		oa, _ := blk["oauth"].(map[string]any)
		var seen secrets
		seen.add(rep.Flow.UserCode)
		seen.add(blk["apiKey"].(string), oa["refreshToken"].(string))
		checkLogs(t, e.Logs.String(), seen)
	})
}

// TestLogsOverEverything runs every error case and a browser flow in one
// environment and checks its log as a whole.
func TestLogsOverEverything(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithCallback())
	rep := e.Connect("default", "honcho", "")
	var seen secrets
	seen.add(mustQuery(t, rep.Flow.AuthorizeURL).Get("state"))
	for _, c := range fixture.ErrorCases() {
		x := e.Do(c.Rq)
		if x.Status != c.WantStatus {
			t.Errorf("%s: %d, want %d", c.Name, x.Status, c.WantStatus)
		}
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	seen.add(target.Query().Get("code"))
	x := e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base)})
	callbackHTML(t, x, 200, "Connected")
	blk := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(e.Root, "honcho.json")), "hermes")
	seen.add(blk["apiKey"].(string))
	checkLogs(t, e.Logs.String(), seen)
	for _, want := range []string{`"path":"/api/memory/profiles/default/providers/honcho/callback"`, `"status":500`, `"error":"internal"`} {
		if !strings.Contains(e.Logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// Two instances of a host share the Hermes home and a pending-flow store:
// a sign-in started through one completes when the browser's callback
// lands on the other, and both report the profile connected.
func TestCallbackOnAnotherInstance(t *testing.T) {
	t.Parallel()
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	instance := sharedFlowInstances(t, h, reg)
	a, _ := instance()
	_, bsrv := instance()

	rep, err := a.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, bsrv, rep.Flow.AuthorizeURL) // the browser's callback lands on instance B
	st, err := a.Connector().Status(t.Context(), "default", "honcho")
	if err != nil || !st.Connected || st.Auth != provider.AuthOAuth {
		t.Errorf("status on A = %+v, %v; want connected", st, err)
	}
}

// consentOn approves the sign-in at authorizeURL as the person would and
// sends the browser's callback to the instance srv, which must answer the
// "Connected" page.
func consentOn(t *testing.T, h *fixture.Hermes, srv *fixture.Server, authorizeURL string) {
	t.Helper()
	back, err := h.AS.Consent(t.Context(), h.AS.Client(), authorizeURL, true)
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("no callback with a code: %v %v", back, err)
	}
	cb, err := srv.Client.Get(srv.Base + strings.TrimPrefix(back.Path, fixture.Prefix) + "?" + back.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(cb.Body)
	cb.Body.Close()
	if cb.StatusCode != http.StatusOK || !strings.Contains(string(body), "Connected") {
		t.Fatalf("callback = %d %s", cb.StatusCode, body)
	}
}

// A sign-in completed by another instance writes what it would have
// written where it started: the starting request's completion options
// (TokensOnly, ConfigExcept) travel with the pending flow, and the
// completing instance's OnInstalled is told.
func TestResumedSignInCompletesAsLocal(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		req  provider.ConnectRequest
		want []string // the file's members besides the hosts
	}{
		{"everything", provider.ConnectRequest{}, []string{"peerName", "workspace"}},
		{"config except peerName", provider.ConnectRequest{ConfigExcept: []string{"peerName"}}, []string{"workspace"}},
		{"tokens only", provider.ConnectRequest{TokensOnly: true}, nil},
	} {
		for _, where := range []string{"local", "resumed"} {
			t.Run(tt.name+"/"+where, func(t *testing.T) {
				h := fixture.NewHermes(t, honchofake.WithGrantConfig(map[string]any{"peerName": "alice", "workspace": "w1"}))
				reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
				if err != nil {
					t.Fatal(err)
				}
				instance := sharedFlowInstances(t, h, reg)
				a, asrv := instance()
				b, bsrv := instance()
				installedOn := make(chan string, 2)
				for name, r := range map[string]*memconnect.Router{"local": a, "resumed": b} {
					r.Connector().OnInstalled = func(key connid.ID, tok *oauth2.Token) {
						if tok.Extra("config") == nil {
							t.Errorf("OnInstalled on %s got no config", name)
						}
						installedOn <- name
					}
				}
				req := tt.req
				req.Method, req.Redirect = flow.MethodBrowser, flow.RedirectCallback
				rep, err := a.Connector().Connect(t.Context(), "default", "honcho", req)
				if err != nil {
					t.Fatal(err)
				}
				lands := asrv
				if where == "resumed" {
					lands = bsrv
				}
				consentOn(t, h, lands, rep.Flow.AuthorizeURL)
				select {
				case on := <-installedOn:
					if on != where {
						t.Errorf("OnInstalled ran on the %s instance; want the %s one, which completed the sign-in", on, where)
					}
				default:
					t.Error("OnInstalled was not called")
				}
				file := testkit.ReadJSON(t, filepath.Join(h.Root, "honcho.json"))
				if blk := testkit.HostBlock(file, "hermes"); blk["oauth"] == nil {
					t.Fatalf("no grant stored: %v", file)
				}
				var got []string
				for k := range file {
					if k != "hosts" {
						got = append(got, k)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("the config holds %v besides the grant, want %v: %v", got, tt.want, file)
				}
			})
		}
	}
}

// sharedFlowInstances returns a maker of instances of a host that share the
// Hermes home and one pending-flow store, each serving its router.
func sharedFlowInstances(t *testing.T, h *fixture.Hermes, reg *provider.Registry) func() (*memconnect.Router, *fixture.Server) {
	store := &testkit.FlowStore{}
	return func() (*memconnect.Router, *fixture.Server) {
		srv := fixture.NewServer(t)
		// The store is all a host gives: New wires the flows to it.
		r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), FlowStore: store, LoopbackAddr: "127.0.0.1:0",
			HTTPClient: h.AS.Client(), CallbackBaseURL: "http://127.0.0.1:9/api/memory"}) // the load balancer's address
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		srv.Start(fixture.HostRouter(r))
		return r, srv
	}
}
