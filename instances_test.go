package memconnect_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
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
	key := flow.Key{Profile: "default", Provider: "honcho"}
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

// A server that keeps grants in PostgreSQL offers no API-key sign-in: GET
// /providers leaves the method out, and connect with it is unsupported.
func TestNoAPIKeysWithAGrantStore(t *testing.T) {
	_, _, _, in := pgInstances(t, 1)
	base := in[0].srv.Base
	resp, err := http.Get(base + "/providers")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"auth_methods":["browser","device"]`) {
		t.Errorf("providers = %s, want honcho without apikey", b)
	}
	resp, err = http.Post(base+"/profiles/default/providers/honcho/connect", "application/json", strings.NewReader(`{"method":"apikey","api_key":"k-0123456789"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"error":"unsupported"`) {
		t.Errorf("connect with a key = %d %s, want 404 unsupported", resp.StatusCode, b)
	}
}

// TestEventsSurviveADatabaseRestart: B's database connections break (the
// database restarts) while B holds a stream; a change A commits meanwhile
// is published on B once B listens again, and later ones too.
func TestEventsSurviveADatabaseRestart(t *testing.T) {
	raw := fixture.PostgresURL(t, false)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	proxy := fixture.NewProxy(t, u.Host)
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
