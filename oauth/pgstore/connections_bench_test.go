package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// BenchmarkConnectionsPage is a page of 100 of the host's list of
// connections (Connector.Connections, what GET /connections?limit=100
// answers) over 1,000, 10,000 and 100,000 grants in PostgreSQL, at the
// first, the middle and the last page. It reports the statements a page
// sends; no timing is asserted.
func BenchmarkConnectionsPage(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("grants=%d", n), func(b *testing.B) {
			url := fixture.PostgresURL(b, false)
			cfg, err := pgxpool.ParseConfig(url)
			if err != nil {
				b.Fatal(err)
			}
			var load fixture.Statements
			cfg.ConnConfig.Tracer = &load
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			st, err := pgstore.New(context.Background(), pool, pgstore.Config{SpillDir: b.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}})
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("honcho/p%06d", i)
			}
			if err := pgstore.SeedGrants(context.Background(), st, keys, time.Now().Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(context.Background(), `ANALYZE memconnect_grants`); err != nil {
				b.Fatal(err)
			}
			reg, err := provider.NewRegistry(honcho.New())
			if err != nil {
				b.Fatal(err)
			}
			c := &provider.Connector{Registry: reg, Profiles: provider.NamedProfiles{Root: b.TempDir()}, GrantStore: st}
			for _, page := range []struct{ name, after string }{
				{"first", ""}, {"middle", fmt.Sprintf("p%06d/honcho", n/2)}, {"last", fmt.Sprintf("p%06d/honcho", n-101)},
			} {
				b.Run(page.name, func(b *testing.B) {
					before := load.Count()
					for b.Loop() {
						conns, _, err := c.Connections(context.Background(), provider.ConnectionFilter{After: page.after, Limit: 100})
						if err != nil || len(conns) != 100 {
							b.Fatalf("a page: %d connections, %v", len(conns), err)
						}
					}
					b.ReportMetric(float64(load.Count()-before)/float64(b.N), "statements/page")
				})
			}
		})
	}
}
