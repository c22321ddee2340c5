package memconnect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// Three instances on one PostgreSQL: a sign-in started on A is reported by
// C and cancelled from B; another completes when the browser's callback
// lands on B, C reports it, a refresh that all three
// want at once happens once, and a disconnect on C is seen by A.
func TestSeveralInstancesOnPostgres(t *testing.T) {
	t.Parallel()
	pool, h, reg, in := pgInstances(t, 3)
	a, b, c := in[0], in[1], in[2]

	// A sign-in started on A is reported by C and cancelled from B.
	w, err := a.r.Connector().Connect(t.Context(), "work", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.r.Connector().Status(t.Context(), "work", "honcho"); err != nil || st.Flow == nil || st.Flow.ID != w.Flow.ID || st.Flow.State != flow.StatePending {
		t.Fatalf("C reports %+v, %v; want A's pending flow", st.Flow, err)
	}
	if _, err := b.r.Connector().Cancel(t.Context(), "work", "honcho"); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.r.Connector().Status(t.Context(), "work", "honcho"); st.Flow == nil || st.Flow.State != flow.StateIdle || st.Flow.Detail != "Cancelled" {
		t.Fatalf("A reports %+v after B cancelled its flow", st.Flow)
	}

	rep, err := a.r.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, b.srv, rep.Flow.AuthorizeURL) // the browser's callback lands on B
	st, err := c.r.Connector().Status(t.Context(), "default", "honcho")
	if err != nil || !st.Connected || st.Auth != provider.AuthOAuth || st.Token == nil {
		t.Fatalf("status on C = %+v, %v", st, err)
	}

	// The grant needs a refresh; three fresh instances (their caches
	// empty) want a token at once, eight callers each.
	if _, err := pool.Exec(t.Context(), `UPDATE memconnect_grants SET expires_at = now() + interval '1 minute', obtained_at = now() - interval '59 minutes'`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	tokens := make(chan string, 24)
	for i := range 3 {
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: string(rune('x' + i))})
		if err != nil {
			t.Fatal(err)
		}
		conn := &provider.Connector{Registry: reg, Profiles: h.Profiles(), HTTPClient: h.AS.Client(), GrantStore: st}
		for range 8 {
			wg.Go(func() {
				ts, err := conn.TokenSource("default", "honcho")
				if err != nil {
					t.Error(err)
					return
				}
				tok, err := ts.Token()
				if err != nil {
					t.Error(err)
					return
				}
				tokens <- tok.AccessToken
			})
		}
	}
	wg.Wait()
	close(tokens)
	seen := map[string]bool{}
	for tok := range tokens {
		seen[tok] = true
	}
	if stats := h.AS.Stats(); len(seen) != 1 || stats.Refreshes != 1 || stats.Replays != 0 {
		t.Fatalf("%d distinct tokens, server %+v; want one refresh that every caller adopted", len(seen), stats)
	}

	res, err := c.r.Connector().Disconnect(t.Context(), "default", "honcho")
	if err != nil || !res.Removed {
		t.Fatalf("disconnect on C = %+v, %v", res, err)
	}
	if st, _ := a.r.Connector().Status(t.Context(), "default", "honcho"); st.Connected {
		t.Errorf("A still reports the profile connected after C disconnected it")
	}
}

// An event raised on instance A reaches a stream held on instance B:
// PostgreSQL notifies B of every grant change A commits.
func TestEventsAcrossInstances(t *testing.T) {
	t.Parallel()
	_, h, _, in := pgInstances(t, 2)
	a, b := in[0].r, in[1].r
	next := followDefault(t, b, true)
	rep, err := a.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, in[0].srv, rep.Flow.AuthorizeURL)
	next(events.Connected)
	forceRefresh(t, a, "default", "honcho")
	next(events.Refreshed)
	if _, err := a.Connector().Disconnect(t.Context(), "default", "honcho"); err != nil {
		t.Fatal(err)
	}
	next(events.Disconnected)
}

// forceRefresh rotates the grant of the profile's provider through r, as a
// caller whose token was answered 401 does.
func forceRefresh(t *testing.T, r *memconnect.Router, profile, prov string) {
	t.Helper()
	ts, err := r.Connector().TokenSource(profile, prov)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.ForceRefresh(t.Context(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
}

// followDefault follows r's default profile's Honcho connection and
// returns a func that waits for the connection event want: the next event,
// or, not strict, the next of that kind.
func followDefault(t *testing.T, r *memconnect.Router, strict bool) func(want string) {
	t.Helper()
	key := connid.ID{Profile: "default", Provider: "honcho"}
	sub, err := r.Events().Subscribe(key, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	stop, err := r.Connector().Follow(t.Context(), "default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return func(want string) {
		t.Helper()
		for {
			select {
			case ev := <-sub.Events():
				if ev.Kind == events.KindConnection && ev.Connection == want {
					return
				}
				if strict {
					t.Fatalf("saw %+v, want %s", ev, want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("saw no %s", want)
			}
		}
	}
}

// instance is one server of a test's load-balanced deployment.
type instance struct {
	r   *memconnect.Router
	srv *fixture.Server
}

// pgInstances starts n instances of the Honcho provider over a Hermes home
// with a development authorization server, sharing one PostgreSQL store,
// behind a load balancer at 127.0.0.1:9.
func pgInstances(t *testing.T, n int) (*pgxpool.Pool, *fixture.Hermes, *provider.Registry, []instance) {
	t.Helper()
	pool := fixture.Postgres(t, false)
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	pools := make([]*pgxpool.Pool, n)
	for i := range pools {
		pools[i] = pool
	}
	in := instancesOn(t, h, reg, pools...)
	return pool, h, reg, in
}

// instancesOn starts an instance of reg over h's profiles for each pool,
// each with its own store, behind a load balancer at 127.0.0.1:9.
func instancesOn(t *testing.T, h *fixture.Hermes, reg *provider.Registry, pools ...*pgxpool.Pool) []instance {
	t.Helper()
	var in []instance
	for i, pool := range pools {
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		srv := fixture.NewServer(t)
		r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), HTTPClient: h.AS.Client(),
			GrantStore: st, FlowStore: st.Flows(), CallbackBaseURL: "http://127.0.0.1:9/api/memory"}) // the load balancer
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		srv.Start(fixture.HostRouter(r))
		in = append(in, instance{r, srv})
	}
	return in
}

// TestStatelessInstances: two instances on one PostgreSQL, each with its
// own Hermes home: an API key saved through one is connected on the other
// (sealed at rest), a failing refresh on one shows on the other, a profile
// is a name (no directory anywhere), and neither home holds a file
// afterwards.
func TestStatelessInstances(t *testing.T) {
	t.Parallel()
	pool := fixture.Postgres(t, false)
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	var in []instance
	var homes []string
	for i := range 2 {
		home := t.TempDir()
		homes = append(homes, home)
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		srv := fixture.NewServer(t)
		r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.NamedProfiles{Root: home}, HTTPClient: h.AS.Client(),
			GrantStore: st, FlowStore: st.Flows(), CallbackBaseURL: "http://127.0.0.1:9/api/memory"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		srv.Start(fixture.HostRouter(r))
		in = append(in, instance{r, srv})
	}
	a, b := in[0], in[1]
	do := func(inst instance, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, inst.srv.Base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := inst.srv.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	// An API key through A, for a profile that is only a name.
	const key = "hch-v2-stateless-0123456789"
	if status, m := do(a, "POST", "/profiles/carol/providers/honcho/connect", `{"method":"apikey","api_key":"`+key+`"}`); status != 200 || m["auth"] != "apikey" {
		t.Fatalf("API key through A: %d %v", status, m)
	}
	if status, m := do(b, "GET", "/profiles/carol/providers/honcho/status", ""); status != 200 || m["connected"] != true || m["auth"] != "apikey" {
		t.Fatalf("status on B: %d %v; want connected with the API key", status, m)
	}
	if status, m := do(b, "POST", "/profiles/carol/providers/honcho/token", ""); status != 200 || m["access_token"] != key || m["token_type"] != "api_key" {
		t.Fatalf("token on B: %d %v", status, m)
	}
	var sealed []byte
	if err := pool.QueryRow(t.Context(), `SELECT api_key FROM memconnect_grants WHERE key = 'honcho/carol'`).Scan(&sealed); err != nil || bytes.Contains(sealed, []byte(key)) {
		t.Fatalf("the API key at rest: %v; want it sealed", err)
	}
	if status, m := do(b, "GET", "/connections", ""); status != 200 || !strings.Contains(fmt.Sprint(m), "carol") {
		t.Errorf("GET /connections on B: %d %v; want carol's key listed", status, m)
	}

	// A grant, signed in through A; a refresh on B fails: A shows it.
	rep, err := a.r.Connector().Connect(t.Context(), "dave", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, a.srv, rep.Flow.AuthorizeURL)
	if _, err := pool.Exec(t.Context(), `UPDATE memconnect_grants SET expires_at = now() + interval '1 minute', obtained_at = now() - interval '59 minutes' WHERE key = 'honcho/dave'`); err != nil {
		t.Fatal(err)
	}
	h.AS.FailNextTokenRequests(1, http.StatusBadRequest, "temporarily_unavailable")
	if status, m := do(b, "POST", "/profiles/dave/providers/honcho/token", ""); status != 200 {
		t.Fatalf("token on B while the server fails: %d %v; want the current token", status, m)
	}
	if status, m := do(a, "GET", "/profiles/dave/providers/honcho/status", ""); status != 200 || m["health"] != "failing" || m["last_error"] == nil {
		t.Fatalf("status on A after B's refresh failed: %d health %v last_error %v; want failing", status, m["health"], m["last_error"])
	}
	// A resource refuses B's token for a scope it lacks: A's status says
	// which scopes the next sign-in asks for.
	res := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="memory.admin"`)
		w.WriteHeader(http.StatusForbidden)
	}))
	defer res.Close()
	ts, err := b.r.Connector().TokenSource("dave", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&http.Client{Transport: &oauth.Transport{Source: ts}}).Get(res.URL); err == nil {
		t.Fatal("the resource's 403 insufficient_scope is not an error")
	}
	if _, m := do(a, "GET", "/profiles/dave/providers/honcho/status", ""); fmt.Sprint(m["needs_scopes"]) != "[memory.admin]" {
		t.Errorf("needs_scopes on A after B was refused: %v; want [memory.admin]", m["needs_scopes"])
	}
	// A, which handed out no token of dave's, knows that B used it: its
	// keeper keeps the grant fresh ahead of expiry.
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(a.r.Connector().UsedSince(time.Now().Add(-time.Minute)), connid.ID{Profile: "dave", Provider: "honcho"}) {
		if time.Now().After(deadline) {
			t.Fatal("A does not know that B used dave's grant")
		}
		<-time.After(10 * time.Millisecond)
	}

	// Disconnecting the key through B removes it for A too.
	if status, m := do(b, "DELETE", "/profiles/carol/providers/honcho/connection", ""); status != 200 || m["removed"] != true {
		t.Fatalf("disconnect on B: %d %v", status, m)
	}
	if _, m := do(a, "GET", "/profiles/carol/providers/honcho/status", ""); m["connected"] != false {
		t.Errorf("status on A after B removed the key: %v", m)
	}
	for _, home := range homes {
		var files []string
		_ = filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if len(files) != 0 {
			t.Errorf("the instance wrote into its Hermes home: %v", files)
		}
	}
}

// TestEventsSurviveADatabaseRestart: B's database connections break (the
// database restarts) while B holds a stream; a change A commits meanwhile
// is published on B once B listens again, and later ones too.
func TestEventsSurviveADatabaseRestart(t *testing.T) {
	t.Parallel()
	raw, proxy := fixture.PostgresBehindProxy(t)
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	var pools []*pgxpool.Pool
	for _, dsn := range []string{raw, proxy.URL(t, raw)} {
		pool, err := pgxpool.New(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		pools = append(pools, pool)
	}
	in := instancesOn(t, h, reg, pools...)
	a, b := in[0].r, in[1].r
	next := followDefault(t, b, false)
	rep, err := a.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, in[0].srv, rep.Flow.AuthorizeURL)
	next(events.Connected)

	proxy.Cut() // B's database restarts
	forceRefresh(t, a, "default", "honcho")
	proxy.Restore()
	next(events.Refreshed) // committed while B listened to nothing

	if _, err := a.Connector().Disconnect(t.Context(), "default", "honcho"); err != nil {
		t.Fatal(err)
	}
	next(events.Disconnected)
}

// TestDatabaseOutageAnswers503: with its database cut from under a running
// instance, a status read is retried once and then answered 503
// unavailable with Retry-After and a sentence, not 500 internal; once the
// database is back it answers 200. A request its client abandoned while
// the database did not answer is logged at INFO as abandoned, not as an
// error.
func TestDatabaseOutageAnswers503(t *testing.T) {
	t.Parallel()
	raw, proxy := fixture.PostgresBehindProxy(t)
	pool := proxy.Pool(t, raw)
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.NamedProfiles{Root: t.TempDir()}, GrantStore: st, FlowStore: st.Flows(),
		Logger: zerolog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv := fixture.NewServer(t)
	srv.Start(fixture.HostRouter(r))
	status := func(ctx context.Context) (*http.Response, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.Base+"/profiles/default/providers/honcho/status", nil)
		resp, err := srv.Client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), nil
	}
	if resp, body, err := status(t.Context()); err != nil || resp.StatusCode != 200 {
		t.Fatalf("before the outage: %v %s", err, body)
	}

	proxy.Cut()
	resp, body, err := status(t.Context())
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"error":"unavailable"`) || !strings.Contains(body, "database") {
		t.Fatalf("during the outage: %v %v %s; want 503 unavailable with Retry-After, saying why", err, resp, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond) // the client gives up before the retry
	_, _, _ = status(ctx)
	cancel()
	proxy.Restore()
	if resp, body, err := status(t.Context()); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the outage: %v %s; want 200", err, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "request abandoned by the client") && time.Now().Before(deadline) {
		<-time.After(10 * time.Millisecond)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "request abandoned by the client") && !strings.Contains(line, `"level":"info"`) {
			t.Errorf("the abandoned request is logged as %s; want info", line)
		}
		if strings.Contains(line, `"status":500`) {
			t.Errorf("a 500 was logged: %s", line)
		}
	}
	if !strings.Contains(logs.String(), "request abandoned by the client") {
		t.Errorf("no line for the abandoned request:\n%s", logs)
	}
}

// TestInstanceWithoutTheNewKey: after a rekey, an instance still running
// with the old key alone answers 503 naming the key it lacks, not 500.
func TestInstanceWithoutTheNewKey(t *testing.T) {
	t.Parallel()
	pool := fixture.Postgres(t, false)
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	store := func(keys ...string) *pgstore.Store {
		var ks []pgstore.Key
		for _, k := range keys {
			ks = append(ks, fixture.PostgresKey(k))
		}
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: ks})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	tok := h.AS.IssueGrant("write")
	if _, err := oauth.NewGrants(store("k2", "k1")).Install(t.Context(), "honcho/default", tok, oauth.Grant{ClientID: h.AS.ClientID(), TokenEndpoint: h.AS.TokenURL()}); err != nil {
		t.Fatal(err)
	}
	old := store("k1")
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.NamedProfiles{Root: t.TempDir()}, GrantStore: old, FlowStore: old.Flows()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	srv := fixture.NewServer(t)
	srv.Start(fixture.HostRouter(r))
	resp, err := srv.Client.Get(srv.Base + "/profiles/default/providers/honcho/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `\"k2\"`) || !strings.Contains(string(body), "same keys") {
		t.Errorf("status on an instance without k2 = %d %s; want 503 naming k2", resp.StatusCode, body)
	}
}
