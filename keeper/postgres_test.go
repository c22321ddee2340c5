package keeper_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/keeper"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/pgstore"
)

// TestKeeperInstancesOnPostgres: three instances' keepers over one
// PostgreSQL store refresh each due grant exactly once between them, and
// leave the grants that are not due alone.
func TestKeeperInstancesOnPostgres(t *testing.T) {
	pool := fixture.Postgres(t, false)
	hm := newHome(t)
	const due, fresh = 30, 5
	seedStore, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range due + fresh {
		name := fmt.Sprintf("p%02d", i)
		if err := os.MkdirAll(filepath.Join(hm.h.Root, "profiles", name), 0o700); err != nil {
			t.Fatal(err)
		}
		age := 20 * time.Hour
		if i >= due {
			age = time.Hour
		}
		then := hm.clock.Now().Add(-age)
		g := oauth.NewGrants(seedStore, oauth.WithClock(clock.Func(func() time.Time { return then })))
		base := oauth.Grant{ClientID: hm.h.AS.ClientID(), TokenEndpoint: hm.h.AS.TokenURL(), Scope: "write", TokenType: "Bearer"}
		if _, err := g.Install(t.Context(), "honcho/"+name, hm.h.AS.IssueGrant("write"), base); err != nil {
			t.Fatal(err)
		}
	}

	var keepers []*keeper.Keeper
	for i := range 3 {
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")},
			Owner: fmt.Sprintf("instance-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		c := hm.connector()
		c.GrantStore = st
		keepers = append(keepers, hm.keeper(t, c, keeper.Config{Owner: fmt.Sprintf("keeper-%d", i)}))
	}
	refreshed, checked := roundAll(t.Context(), keepers)
	if refreshed != due {
		t.Errorf("the keepers refreshed %d grants, want %d", refreshed, due)
	}
	if checked > due {
		t.Errorf("the keepers looked at %d grants, want at most %d: a claim is not shared", checked, due)
	}
	if st := hm.h.AS.Stats(); st.Refreshes != due || st.Replays != 0 {
		t.Errorf("server saw %d refreshes and %d replays, want %d and 0", st.Refreshes, st.Replays, due)
	}
	// A second round finds nothing due.
	for _, k := range keepers {
		if run := k.Round(t.Context()); run.Refreshed != 0 {
			t.Errorf("second round refreshed %d", run.Refreshed)
		}
	}
}

// roundAll runs one round of every keeper at once and sums what they
// refreshed and looked at.
func roundAll(ctx context.Context, keepers []*keeper.Keeper) (refreshed, checked int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, k := range keepers {
		wg.Go(func() {
			run := k.Round(ctx)
			mu.Lock()
			refreshed += run.Refreshed
			checked += run.Checked
			mu.Unlock()
		})
	}
	wg.Wait()
	return refreshed, checked
}
