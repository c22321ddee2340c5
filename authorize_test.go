package memconnect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
)

// hookRecorder is an authorization hook that refuses the profiles in deny
// (403), answers 401 to a request with "X-Anonymous", and records what it
// was asked.
type hookRecorder struct {
	deny []string
	mu   sync.Mutex // guards seen
	seen []handlers.Access
}

func (h *hookRecorder) authorize(r *http.Request, a handlers.Access) error {
	h.mu.Lock()
	h.seen = append(h.seen, a)
	h.mu.Unlock()
	if r.Header.Get("X-Anonymous") != "" {
		return handlers.ErrUnauthenticated
	}
	if slices.Contains(h.deny, a.Profile) {
		return errors.New("not this person's profile")
	}
	return nil
}

func (h *hookRecorder) calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

func (h *hookRecorder) last() handlers.Access {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 {
		return handlers.Access{}
	}
	return h.seen[len(h.seen)-1]
}

// TestAuthorizeHook: every profile-scoped route asks the hook, with its
// action, before any work; a refusal is 403 (401 when the hook says the
// request names nobody) and starts, reads and writes nothing; GET
// /providers does not ask it.
func TestAuthorizeHook(t *testing.T) {
	t.Parallel()
	hook := &hookRecorder{deny: []string{"work", "apikey"}}
	e := fixture.NewEnv(t, fixture.WithCallback(), fixture.WithAuthorize(hook.authorize))
	route := func(profile, rest string) string { return "/profiles/" + profile + "/providers/honcho" + rest }

	allowed := []struct {
		method, path string
		action       handlers.Action
		profile      string
	}{
		{"GET", route("current", "/status"), handlers.ActionStatus, "default"},
		{"POST", route("default", "/connect"), handlers.ActionConnect, "default"},
		{"POST", route("default", "/cancel"), handlers.ActionCancel, "default"},
		{"GET", route("default", "/callback?state=unknown&code=x"), handlers.ActionCallback, "default"},
		{"DELETE", route("default", "/connection"), handlers.ActionDisconnect, "default"},
		{"GET", "/providers/honcho/oauth/status?profile=current", handlers.ActionStatus, "default"},
	}
	for _, tt := range allowed {
		x := e.Do(fixture.Request{Method: tt.method, Path: tt.path})
		if got := hook.last(); got != (handlers.Access{Profile: tt.profile, Provider: "honcho", Action: tt.action}) || x.Status == 403 {
			t.Errorf("%s %s: %d, hook saw %+v; want %s of %s allowed", tt.method, tt.path, x.Status, got, tt.action, tt.profile)
		}
	}

	apikeyFile := filepath.Join(e.Root, "profiles", "apikey", "honcho.json")
	before, err := os.ReadFile(apikeyFile)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		method, path string
		action       handlers.Action
		html         bool
	}{
		{"GET", route("work", "/status"), handlers.ActionStatus, false},
		{"POST", route("work", "/connect"), handlers.ActionConnect, false},
		{"POST", route("work", "/cancel"), handlers.ActionCancel, false},
		{"DELETE", route("apikey", "/connection"), handlers.ActionDisconnect, false},
		{"GET", route("work", "/events"), handlers.ActionEvents, false},
		{"GET", route("work", "/callback?state=s&code=c"), handlers.ActionCallback, true},
		{"POST", "/providers/honcho/oauth/start?profile=work", handlers.ActionConnect, false},
		{"GET", "/providers/honcho/oauth/status?profile=work", handlers.ActionStatus, false},
	}
	for _, tt := range refused {
		x := e.Do(fixture.Request{Method: tt.method, Path: tt.path})
		if x.Status != http.StatusForbidden || hook.last().Action != tt.action {
			t.Errorf("%s %s: %d %s, hook saw %+v; want 403 after a %s check", tt.method, tt.path, x.Status, x.Body, hook.last(), tt.action)
		}
		if !tt.html && !bytes.Contains(x.Body, []byte(`"error":"forbidden"`)) {
			t.Errorf("%s %s: body %s; want the forbidden error", tt.method, tt.path, x.Body)
		}
		if bytes.Contains(x.Body, []byte("not this person's profile")) {
			t.Errorf("%s %s: the hook's error reached the client: %s", tt.method, tt.path, x.Body)
		}
	}
	// Nothing was started or written for the refused requests.
	if f := e.Flows.Status(context.Background(), connid.ID{Profile: "work", Provider: "honcho"}); f.ID != "" {
		t.Errorf("a refused connect started a flow: %+v", f)
	}
	if after, err := os.ReadFile(apikeyFile); err != nil || !bytes.Equal(before, after) {
		t.Errorf("a refused disconnect changed %s: %s", apikeyFile, after)
	}

	x := e.Do(fixture.Request{Method: "GET", Path: route("default", "/status"), Header: map[string]string{"X-Anonymous": "1"}})
	if x.Status != http.StatusUnauthorized || !bytes.Contains(x.Body, []byte(`"error":"unauthorized"`)) {
		t.Errorf("anonymous status: %d %s; want 401 unauthorized", x.Status, x.Body)
	}

	n := hook.calls()
	if x := e.Do(fixture.Request{Method: "GET", Path: "/providers"}); x.Status != 200 || hook.calls() != n {
		t.Errorf("GET /providers: %d, hook called %d times; want 200 without the hook", x.Status, hook.calls()-n)
	}
}

// TestAuthorizeHookOnPostgres: with the PostgreSQL stores, a refused
// connect records no pending flow and a refused disconnect keeps the grant.
func TestAuthorizeHookOnPostgres(t *testing.T) {
	t.Parallel()
	pool, h, reg, in := pgInstances(t, 1)
	rep, err := in[0].r.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, in[0].srv, rep.Flow.AuthorizeURL) // a grant for default
	st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}})
	if err != nil {
		t.Fatal(err)
	}
	deny := func(*http.Request, handlers.Access) error { return errors.New("no") }
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), HTTPClient: h.AS.Client(),
		GrantStore: st, FlowStore: st.Flows(), Authorize: deny})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv := fixture.NewServer(t)
	srv.Start(fixture.HostRouter(r))
	for _, rq := range []struct{ method, path string }{
		{"POST", "/profiles/work/providers/honcho/connect"},
		{"DELETE", "/profiles/default/providers/honcho/connection"},
	} {
		req, _ := http.NewRequest(rq.method, srv.Base+rq.path, nil)
		resp, err := srv.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s = %d; want 403", rq.method, rq.path, resp.StatusCode)
		}
	}
	var flows int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM memconnect_flows WHERE profile = 'work'`).Scan(&flows); err != nil || flows != 0 {
		t.Errorf("pending flows of work: %d, %v; want none", flows, err)
	}
	if c, err := st.Credentials(t.Context(), "honcho/default"); err != nil || c.Grant == nil {
		t.Errorf("the grant after a refused disconnect: %+v, %v; want it kept", c, err)
	}
}

// TestConnectSessions: a connect session is the bearer credential for its
// profile's routes (and GET /providers) only: another profile or provider
// is 403, an expired session 401 saying so, a forged one 401; another
// instance with the same keys accepts it, and after a key rotation too;
// the static token still works for every profile; no log holds a session.
func TestConnectSessions(t *testing.T) {
	t.Parallel()
	const static = "host-token-0123456789"
	k1, k2 := bytes.Repeat([]byte("1"), 32), bytes.Repeat([]byte("2"), 32)
	clock := testkit.NewClock()
	e := fixture.NewEnv(t, fixture.WithSessionToken(static), fixture.WithSessionKeys(k1), fixture.WithClock(clock))
	tok, exp, err := e.Router.MintConnectSession("default", []string{"honcho"}, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(clock.Now().Add(15 * time.Minute).Truncate(time.Second)) {
		t.Errorf("expires %v", exp)
	}
	as := func(token string) map[string]string { return map[string]string{"Authorization": "Bearer " + token} }
	tests := []struct {
		name   string
		token  string
		path   string
		status int
		has    string
	}{
		{"own profile", tok, "/profiles/default/providers/honcho/status", 200, `"profile":"default"`},
		{"current is default", tok, "/profiles/current/providers/honcho/status", 200, `"profile":"default"`},
		{"providers list", tok, "/providers", 200, `"honcho"`},
		{"another profile", tok, "/profiles/work/providers/honcho/status", 403, "another profile"},
		{"another provider", tok, "/profiles/default/providers/nooauth/status", 403, "other providers"},
		{"forged", tok[:len(tok)-3] + "abc", "/profiles/default/providers/honcho/status", 401, "not valid"},
		{"the host's token", static, "/profiles/work/providers/honcho/status", 200, `"profile":"work"`},
	}
	for _, tt := range tests {
		x := e.Do(fixture.Request{Method: "GET", Path: tt.path, Header: as(tt.token), NoAuth: true})
		if x.Status != tt.status || !bytes.Contains(x.Body, []byte(tt.has)) {
			t.Errorf("%s: %d %s; want %d with %q", tt.name, x.Status, x.Body, tt.status, tt.has)
		}
	}

	// Another instance with the same keys, the newer first: accepted.
	other := fixture.NewEnv(t, fixture.WithSessionToken(static), fixture.WithSessionKeys(k2, k1), fixture.WithClock(clock))
	if x := other.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/status", Header: as(tok), NoAuth: true}); x.Status != 200 {
		t.Errorf("on another instance after a rotation: %d %s; want 200", x.Status, x.Body)
	}
	// Without the old key: refused.
	third := fixture.NewEnv(t, fixture.WithSessionToken(static), fixture.WithSessionKeys(k2), fixture.WithClock(clock))
	if x := third.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/status", Header: as(tok), NoAuth: true}); x.Status != 401 {
		t.Errorf("without the signing key: %d %s; want 401", x.Status, x.Body)
	}

	clock.Advance(16 * time.Minute)
	x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/status", Header: as(tok), NoAuth: true})
	if x.Status != 401 || !bytes.Contains(x.Body, []byte("expired")) {
		t.Errorf("expired: %d %s; want 401 saying it expired", x.Status, x.Body)
	}
	if _, _, err := e.Router.MintConnectSession("default", nil, 5*time.Hour); err == nil {
		t.Error("a session longer than the maximum was minted")
	}
	for _, logs := range []string{e.Logs.String(), other.Logs.String()} {
		if strings.Contains(logs, tok) || strings.Contains(logs, strings.SplitN(tok, ".", 3)[2]) {
			t.Error("a log holds the connect session")
		}
	}
}

// TestCallbackBoundToTheBrowser: a sign-in started from a web page sets a
// cookie scoped to the callback; the callback without it (the link opened
// by someone else) exchanges no code and says the sign-in was started
// elsewhere; with it the sign-in completes. A curl-started one needs none.
func TestCallbackBoundToTheBrowser(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithCallback())
	connect := func() (*http.Cookie, string) {
		x := e.Do(fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/connect",
			Header: map[string]string{"Origin": strings.TrimSuffix(e.Base, "/api/memory"), "Sec-Fetch-Site": "same-origin"}})
		if x.Status != http.StatusAccepted {
			t.Fatalf("connect = %d %s", x.Status, x.Body)
		}
		var rep provider.StatusReport
		if err := json.Unmarshal(x.Body, &rep); err != nil {
			t.Fatal(err)
		}
		for _, c := range (&http.Response{Header: x.Header}).Cookies() {
			if c.Name == "memconnect_flow" {
				return c, rep.Flow.AuthorizeURL
			}
		}
		t.Fatalf("connect from a page set no binding cookie: %v", x.Header)
		return nil, ""
	}
	cookie, link := connect()
	if cookie.Path != "/api/memory/profiles/default/providers/honcho/callback" || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie = %+v; want HttpOnly, SameSite=Lax, scoped to the callback", cookie)
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), link, true)
	if err != nil {
		t.Fatal(err)
	}
	cb := strings.TrimPrefix(target.String(), e.Base)
	x := e.Do(fixture.Request{Method: "GET", Path: cb}) // another browser: no cookie
	callbackHTML(t, x, http.StatusForbidden, "started in another browser")
	if st := e.Status("default", "honcho"); st.Connected || e.AS.Stats().AuthorizationCodes != 0 {
		t.Fatalf("status = %+v, server %+v; want nothing exchanged or stored", st, e.AS.Stats())
	}

	cookie, link = connect()
	if target, err = e.AS.Consent(t.Context(), e.AS.Client(), link, true); err != nil {
		t.Fatal(err)
	}
	x = e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base),
		Header: map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}})
	callbackHTML(t, x, http.StatusOK, "Connected to Honcho")
}

// TestCallbackBindingAcrossInstances: the binding is kept with the pending
// flow in PostgreSQL, so the callback on another instance needs the cookie
// too, and completes with it.
func TestCallbackBindingAcrossInstances(t *testing.T) {
	t.Parallel()
	_, h, _, in := pgInstances(t, 2)
	a, b := in[0].srv, in[1].srv
	for _, withCookie := range []bool{false, true} {
		req, _ := http.NewRequest("POST", a.Base+"/profiles/default/providers/honcho/connect", nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := a.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rep provider.StatusReport
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		cookies := resp.Cookies()
		if len(cookies) != 1 || rep.Flow == nil {
			t.Fatalf("connect on A: %d cookies, flow %+v", len(cookies), rep.Flow)
		}
		back, err := h.AS.Consent(t.Context(), h.AS.Client(), rep.Flow.AuthorizeURL, true)
		if err != nil {
			t.Fatal(err)
		}
		cb, _ := http.NewRequest("GET", b.Base+strings.TrimPrefix(back.Path, fixture.Prefix)+"?"+back.RawQuery, nil)
		if withCookie {
			cb.AddCookie(cookies[0])
		}
		resp, err = b.Client.Do(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusForbidden
		if withCookie {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("callback on B, cookie %v: %d; want %d", withCookie, resp.StatusCode, want)
		}
	}
}

// TestConnectionsList: GET /connections lists what the router can see,
// filtered and paged, asks the hook with the list action, and refuses a
// connect session; over PostgreSQL it lists the store's grants.
func TestConnectionsList(t *testing.T) {
	t.Parallel()
	hook := &hookRecorder{}
	k := bytes.Repeat([]byte("k"), 32)
	e := fixture.NewEnv(t, fixture.WithAuthorize(hook.authorize), fixture.WithSessionKeys(k))
	// The Env's provider "boom" panics on status (a provider bug): honcho only.
	list := func(query string) (int, map[string]any) {
		x := e.Do(fixture.Request{Method: "GET", Path: "/connections?provider=honcho&" + strings.TrimPrefix(query, "?")})
		var body map[string]any
		_ = json.Unmarshal(x.Body, &body)
		return x.Status, body
	}
	names := func(body map[string]any) []string {
		var out []string
		for _, c := range body["connections"].([]any) {
			m := c.(map[string]any)
			out = append(out, m["profile"].(string)+"/"+m["provider"].(string)+":"+m["auth"].(string))
		}
		return out
	}
	status, body := list("")
	if want := []string{"apikey/honcho:apikey", "rootkey/honcho:apikey"}; status != 200 || !slices.Equal(names(body), want) || body["next"] != nil {
		t.Fatalf("GET /connections = %d %v; want %v", status, body, want)
	}
	if a := hook.last(); a.Action != handlers.ActionList {
		t.Errorf("hook saw %+v; want the list action", a)
	}
	status, body = list("?limit=1")
	if status != 200 || len(names(body)) != 1 || body["next"] != "apikey/honcho" {
		t.Fatalf("first page = %d %v; want one and a cursor", status, body)
	}
	if _, body = list("?limit=1&after=apikey/honcho"); !slices.Equal(names(body), []string{"rootkey/honcho:apikey"}) {
		t.Errorf("second page = %v", body)
	}
	if _, body = list("?profile=apikey&provider=honcho"); len(names(body)) != 1 {
		t.Errorf("filtered = %v", body)
	}
	if status, _ := list("?limit=0"); status != 400 {
		t.Errorf("limit=0 = %d; want 400", status)
	}
	if status, body := list("?after=apikey"); status != 400 || !strings.Contains(fmt.Sprint(body["message"]), "after") {
		t.Errorf("after=apikey (no provider) = %d %v; want 400 naming after", status, body)
	}
	tok, _, err := e.Router.MintConnectSession("default", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if x := e.Do(fixture.Request{Method: "GET", Path: "/connections", Header: map[string]string{"Authorization": "Bearer " + tok}, NoAuth: true}); x.Status != 403 {
		t.Errorf("with a connect session = %d %s; want 403", x.Status, x.Body)
	}

	_, h, _, in := pgInstances(t, 1)
	rep, err := in[0].r.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, in[0].srv, rep.Flow.AuthorizeURL)
	conns, next, err := in[0].r.Connector().Connections(t.Context(), provider.ConnectionFilter{})
	if err != nil || next != "" || len(conns) != 1 || conns[0].Profile != "default" || conns[0].Auth != provider.AuthOAuth || conns[0].Token == nil {
		t.Fatalf("over PostgreSQL: %+v, %q, %v; want the one grant", conns, next, err)
	}
}
