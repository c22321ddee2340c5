package keeper_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/keeper"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/pgstore"
)

// BenchmarkKeeperScale is the keeper at scale: GRANTS grants in one
// PostgreSQL store (10,000 unless KEEPER_GRANTS says otherwise), three
// instances each with its own pool, store and keeper, and an in-process
// token endpoint. An operation is one round in which every grant is due
// (the clock moves a day between rounds): the three keepers' rounds run at
// once and must refresh every grant exactly once between them, with no
// refresh token presented twice. It reports refreshes/s, the statements
// sent to the database per grant, and the grants looked
// at per grant refreshed (claims that overlapped). Run it with make bench.
func BenchmarkKeeperScale(b *testing.B) {
	n := 10000
	if s := os.Getenv("KEEPER_GRANTS"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			b.Fatalf("KEEPER_GRANTS=%q is not a positive number", s)
		}
	}
	url := fixture.PostgresURL(b, false)
	hm := newHome(b)
	var load fixture.Statements
	newPool := func() *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			b.Fatal(err)
		}
		cfg.ConnConfig.Tracer = &load
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		return pool
	}
	newStore := func(pool *pgxpool.Pool, owner string) *pgstore.Store {
		st, err := pgstore.New(context.Background(), pool, pgstore.Config{SpillDir: b.TempDir(),
			Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: owner})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	seedPool := newPool()
	seed(b, hm, newStore(seedPool, "seed"), n)

	var keepers []*keeper.Keeper
	for i := range 3 {
		c := hm.connector()
		c.GrantStore = newStore(newPool(), fmt.Sprintf("instance-%d", i))
		keepers = append(keepers, hm.keeper(b, c, keeper.Config{Owner: fmt.Sprintf("keeper-%d", i)}))
	}

	var refreshed, checked, statementsSent int64
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		// A day passes: every grant is due, and the claims of the last
		// round have lapsed.
		hm.clock.Advance(24 * time.Hour)
		if _, err := seedPool.Exec(context.Background(), `UPDATE memconnect_grants SET keep_until = NULL`); err != nil {
			b.Fatal(err)
		}
		before, all0 := hm.h.AS.Stats(), load.Count()
		b.StartTimer()
		began := time.Now()
		round, looked := roundAll(context.Background(), keepers)
		took += time.Since(began)
		b.StopTimer()
		after := hm.h.AS.Stats()
		if round != n || after.Refreshes-before.Refreshes != n || after.Replays != 0 {
			b.Fatalf("a round refreshed %d grants (the server saw %d refreshes, %d replays); want %d, %d and 0",
				round, after.Refreshes-before.Refreshes, after.Replays, n, n)
		}
		var stale int
		if err := seedPool.QueryRow(context.Background(), `SELECT count(*) FROM memconnect_grants WHERE obtained_at < $1`,
			hm.clock.Now().Add(-time.Minute)).Scan(&stale); err != nil {
			b.Fatal(err)
		}
		if stale != 0 {
			b.Fatalf("%d grants were not refreshed in the round", stale)
		}
		refreshed += int64(round)
		checked += int64(looked)
		statementsSent += load.Count() - all0
		b.StartTimer()
	}
	b.ReportMetric(float64(refreshed)/took.Seconds(), "refreshes/s")
	b.ReportMetric(float64(statementsSent)/float64(refreshed), "statements/grant")
	b.ReportMetric(float64(checked)/float64(refreshed), "checked/grant")
}

// seed installs n grants, profiles p00000 and on, obtained 20 hours before
// the clock, each with its profile directory.
func seed(b *testing.B, hm *home, st *pgstore.Store, n int) {
	b.Helper()
	then := hm.clock.Now().Add(-20 * time.Hour)
	g := oauth.NewGrants(st, oauth.WithClock(clock.Func(func() time.Time { return then })))
	base := oauth.Grant{ClientID: hm.h.AS.ClientID(), TokenEndpoint: hm.h.AS.TokenURL(), Scope: "write", TokenType: "Bearer"}
	names := make(chan string)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 16 {
		wg.Go(func() {
			for name := range names {
				if err := os.MkdirAll(filepath.Join(hm.h.Root, "profiles", name), 0o700); err != nil {
					failed.Store(&err)
					continue
				}
				if _, err := g.Install(context.Background(), "honcho/"+name, hm.h.AS.IssueGrant("write"), base); err != nil {
					failed.Store(&err)
				}
			}
		})
	}
	for i := range n {
		names <- fmt.Sprintf("p%05d", i)
	}
	close(names)
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}
