package pgstore_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/oauth/pgstore"
)

// BenchmarkPostgres measures the grant engine over PostgreSQL on the
// throwaway server make test starts (MEMCONNECT_TEST_POSTGRES; run make
// bench): the hot path, a cold read of the row, and one whole
// lease-refresh-commit cycle against an in-process token endpoint. With 3
// instances of 8 callers each it reports the refreshes one expiry costs.
func BenchmarkPostgres(b *testing.B) {
	pool := fixture.Postgres(b, false)
	srv := honchofake.NewServer()
	b.Cleanup(srv.Close)
	st, err := pgstore.New(context.Background(), pool, pgstore.Config{SpillDir: b.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}})
	if err != nil {
		b.Fatal(err)
	}
	gs := oauth.NewGrants(st, oauth.WithHTTPClient(srv.Client()))
	tok := srv.IssueGrant("write")
	if _, err := gs.Install(context.Background(), "hermes", tok, oauth.Grant{ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL()}); err != nil {
		b.Fatal(err)
	}
	// The same hot path over a honcho.json file, and x/oauth2's cached
	// source, in the same run.
	file := oauth.NewGrants(filestore.New(filepath.Join(b.TempDir(), "honcho.json"),
		filestore.Layout{Section: "hosts", AccessToken: "apiKey", Fields: "oauth", DefaultScope: "write"}), oauth.WithHTTPClient(srv.Client()))
	if _, err := file.Install(context.Background(), "hermes", srv.IssueGrant("write"), oauth.Grant{ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL()}); err != nil {
		b.Fatal(err)
	}
	b.Run("hot-file", func(b *testing.B) { benchTokens(b, file.TokenSource("hermes")) })
	b.Run("reuse-baseline", func(b *testing.B) {
		t := &oauth2.Token{AccessToken: "a", Expiry: time.Now().Add(time.Hour)}
		benchTokens(b, oauth2.ReuseTokenSource(t, oauth2.StaticTokenSource(t)))
	})
	b.Run("hot", func(b *testing.B) { benchTokens(b, gs.TokenSource("hermes")) })
	b.Run("cold-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if c, err := st.Credentials(context.Background(), "hermes"); err != nil || c.Grant == nil {
				b.Fatal(c, err)
			}
		}
	})
	b.Run("lease-refresh-commit", func(b *testing.B) {
		ts := gs.TokenSource("hermes")
		tok, err := ts.Token()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if tok, err = ts.ForceRefresh(context.Background(), tok.AccessToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("refreshes-per-expiry-3x8", func(b *testing.B) {
		var total int
		for b.Loop() {
			if _, err := pool.Exec(context.Background(), `UPDATE memconnect_grants SET expires_at = now() + interval '1 minute', obtained_at = now() - interval '59 minutes'`); err != nil {
				b.Fatal(err)
			}
			before := srv.Stats().Refreshes
			var wg sync.WaitGroup
			for i := range 3 {
				s, err := pgstore.New(context.Background(), pool, pgstore.Config{SpillDir: b.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: fmt.Sprint(i)})
				if err != nil {
					b.Fatal(err)
				}
				inst := oauth.NewGrants(s, oauth.WithHTTPClient(&http.Client{Transport: srv.Client().Transport, Timeout: 10 * time.Second}))
				for range 8 {
					wg.Go(func() {
						if _, err := inst.TokenSource("hermes").Token(); err != nil {
							b.Error(err)
						}
					})
				}
			}
			wg.Wait()
			total += srv.Stats().Refreshes - before
		}
		b.ReportMetric(float64(total)/float64(b.N), "refreshes/expiry")
	})
}

// benchTokens measures ts.Token on a warm cache.
func benchTokens(b *testing.B, ts oauth2.TokenSource) {
	if _, err := ts.Token(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
}
