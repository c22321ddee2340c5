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
	"github.com/memconnect/memconnect/provider"
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

// TestKeeperMeetsAShortInterval: with a one-minute interval over idle
// grants on PostgreSQL, two instances' keepers, a round every 15 s of the
// clock for four minutes: no grant ever gets older than two intervals, and
// every grant is refreshed again and again. (A claim that outlived its
// refresh once left grants unclaimable for four rounds, past the
// interval.)
func TestKeeperMeetsAShortInterval(t *testing.T) {
	pool := fixture.Postgres(t, false)
	hm := newHome(t)
	const grants = 20
	seedStore, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, grants)
	for i := range grants {
		keys[i] = fmt.Sprintf("honcho/short%02d", i)
		g := oauth.NewGrants(seedStore, oauth.WithClock(hm.clock))
		base := oauth.Grant{ClientID: hm.h.AS.ClientID(), TokenEndpoint: hm.h.AS.TokenURL(), Scope: "write", TokenType: "Bearer"}
		if _, err := g.Install(t.Context(), keys[i], hm.h.AS.IssueGrant("write"), base); err != nil {
			t.Fatal(err)
		}
	}
	var keepers []*keeper.Keeper
	for i := range 2 {
		st, err := pgstore.New(t.Context(), pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")},
			Owner: fmt.Sprintf("instance-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		c := hm.connector()
		c.Profiles = provider.NamedProfiles{Root: hm.h.Root}
		c.GrantStore = st
		keepers = append(keepers, hm.keeper(t, c, keeper.Config{Owner: fmt.Sprintf("keeper-%d", i), Interval: time.Minute, Tick: 15 * time.Second}))
	}
	oldest := time.Duration(0)
	for range 16 {
		hm.clock.Advance(15 * time.Second)
		roundAll(t.Context(), keepers)
		for _, key := range keys {
			c, err := seedStore.Credentials(t.Context(), key)
			if err != nil || c.Grant == nil {
				t.Fatalf("%s: %+v, %v", key, c, err)
			}
			oldest = max(oldest, hm.clock.Now().Sub(c.Grant.Obtained))
		}
	}
	t.Logf("the oldest grant, looked at after every round: %s (interval 1m)", oldest)
	if oldest > 2*time.Minute {
		t.Errorf("the oldest grant was %s old; want at most two intervals (2m)", oldest)
	}
	if st := hm.h.AS.Stats(); st.Refreshes < 3*grants || st.Replays != 0 {
		t.Errorf("server: %d refreshes, %d replays in four minutes of a one-minute interval; want every grant refreshed at least three times, no replay", st.Refreshes, st.Replays)
	}
}
