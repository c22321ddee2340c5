package memconnect_test

import (
	"sync"
	"testing"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testkit/fixture"
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
	pool := fixture.Postgres(t, false)
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	type instance struct {
		r   *memconnect.Router
		srv *fixture.Server
	}
	var in []instance
	for i := range 3 {
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: string(rune('a' + i))})
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
	if _, err := pool.Exec(t.Context(), `UPDATE memconnect_grants SET expires_at = now() + interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	tokens := make(chan string, 24)
	for i := range 3 {
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: string(rune('x' + i))})
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
