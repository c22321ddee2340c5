package keeper_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/keeper"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// home is a Hermes home with a grant per profile and Connectors over it.
type home struct {
	h     *fixture.Hermes
	reg   *provider.Registry
	clock *testkit.Clock
	// tokenRequests counts requests to the token endpoint.
	tokenRequests atomic.Int64
}

func newHome(t testing.TB) *home {
	t.Helper()
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	hm := &home{h: h, reg: reg, clock: testkit.ClockAt(time.Now())}
	h.AS.SetTokenHook(func(http.ResponseWriter, *http.Request) bool {
		hm.tokenRequests.Add(1)
		return false
	})
	return hm
}

// connector is one process's Connector over the home: its own stores,
// so its own file descriptors and flock(2) locks, which contend with
// another Connector's as another process's do.
func (hm *home) connector() *provider.Connector {
	return &provider.Connector{Registry: hm.reg, Profiles: hm.h.Profiles(), HTTPClient: hm.h.AS.Client(),
		Logger: hm.h.Logger, Clock: hm.clock}
}

// seed writes a fresh grant of profile whose access token expires in
// expiresIn and that was obtained age ago, and returns the config path.
func (hm *home) seed(t *testing.T, profile string, expiresIn, age time.Duration) string {
	t.Helper()
	path, host := filepath.Join(hm.h.Root, "honcho.json"), "hermes"
	if profile != "default" {
		dir := filepath.Join(hm.h.Root, "profiles", profile)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path, host = filepath.Join(dir, "honcho.json"), "hermes_"+profile
	}
	tok := hm.h.AS.IssueGrant("write")
	now := hm.clock.Now()
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{host: map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": now.Add(expiresIn).Unix(),
			"obtainedAt": now.Add(-age).Unix(), "clientId": hm.h.AS.ClientID(), "tokenEndpoint": hm.h.AS.TokenURL(),
			"scope": "write", "tokenType": "Bearer"},
	}}})
	return path
}

func (hm *home) keeper(t testing.TB, c *provider.Connector, cfg keeper.Config) *keeper.Keeper {
	t.Helper()
	cfg.Connector, cfg.Clock = c, hm.clock
	if cfg.Interval == 0 {
		cfg.Interval = 24 * time.Hour
	}
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0.5 }
	}
	k, err := keeper.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeeperRefreshesUsedGrantBeforeExpiry(t *testing.T) {
	hm := newHome(t)
	hm.seed(t, "default", 3*time.Minute, time.Hour)
	c := hm.connector()
	k := hm.keeper(t, c, keeper.Config{})

	if run := k.Round(t.Context()); run.Refreshed != 0 {
		t.Fatalf("an unused grant was refreshed ahead of expiry: %+v", run)
	}
	ts, err := c.TokenSource("default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil { // a use, served from the file (3 min > skew)
		t.Fatal(err)
	}
	if n := hm.tokenRequests.Load(); n != 0 {
		t.Fatalf("the use itself refreshed (%d token requests)", n)
	}
	if run := k.Round(t.Context()); run.Refreshed != 1 {
		t.Fatalf("round = %+v, want the used grant refreshed once", run)
	}
	if run := k.Round(t.Context()); run.Refreshed != 0 {
		t.Fatalf("second round = %+v, want nothing to do", run)
	}
	if n := hm.tokenRequests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	rep, err := c.Status(t.Context(), "default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Health != provider.HealthOK || rep.LastRefreshAt == nil || !rep.LastRefreshAt.Equal(hm.clock.Now().Truncate(time.Second)) {
		t.Errorf("status after the keeper = health %q, last_refresh_at %v; want ok, now", rep.Health, rep.LastRefreshAt)
	}
}

func TestKeeperKeepsIdleGrantAlive(t *testing.T) {
	hm := newHome(t)
	hm.seed(t, "default", -5*time.Hour, 6*time.Hour) // expired long ago, nobody uses it
	hm.seed(t, "work", time.Hour, 0)
	c := hm.connector()
	k := hm.keeper(t, c, keeper.Config{}) // MaxAge 15h with Rand 0.5

	if run := k.Round(t.Context()); run.Refreshed != 0 {
		t.Fatalf("a 6h-old grant was refreshed with a 24h interval: %+v", run)
	}
	hm.clock.Advance(10 * time.Hour) // default: 16h old; work: 10h
	if run := k.Round(t.Context()); run.Refreshed != 1 {
		t.Fatalf("round = %+v, want the 16h-old grant refreshed once", run)
	}
	if run := k.Round(t.Context()); run.Refreshed != 0 {
		t.Fatalf("next round = %+v, want nothing", run)
	}
	hm.clock.Advance(6 * time.Hour) // work: 16h old
	if run := k.Round(t.Context()); run.Refreshed != 1 {
		t.Fatalf("round = %+v, want the other grant refreshed", run)
	}
	if n := hm.tokenRequests.Load(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

// TestKeeperTwoProcessesOneFile: two keepers over one honcho.json, each
// with its own file locks as two processes have, refresh a due grant once.
func TestKeeperTwoProcessesOneFile(t *testing.T) {
	hm := newHome(t)
	hm.seed(t, "default", time.Hour, 20*time.Hour)
	k1 := hm.keeper(t, hm.connector(), keeper.Config{})
	k2 := hm.keeper(t, hm.connector(), keeper.Config{})
	var wg sync.WaitGroup
	runs := make([]int, 2)
	for i, k := range []*keeper.Keeper{k1, k2} {
		wg.Go(func() { runs[i] = k.Round(t.Context()).Refreshed })
	}
	wg.Wait()
	if runs[0]+runs[1] != 1 {
		t.Errorf("refreshed %v, want once in all", runs)
	}
	if st := hm.h.AS.Stats(); st.Refreshes != 1 || st.Replays != 0 {
		t.Errorf("server saw %d refreshes and %d replays, want 1 and 0", st.Refreshes, st.Replays)
	}
}

func TestKeeperLeavesRejectedGrantAlone(t *testing.T) {
	hm := newHome(t)
	path := hm.seed(t, "default", time.Hour, 20*time.Hour)
	cfg := testkit.ReadJSON(t, path)
	rt := cfg["hosts"].(map[string]any)["hermes"].(map[string]any)["oauth"].(map[string]any)["refreshToken"].(string)
	hm.h.AS.RevokeGrant(rt)
	c := hm.connector()
	k := hm.keeper(t, c, keeper.Config{})
	if run := k.Round(t.Context()); run.Failed != 1 {
		t.Fatalf("round = %+v, want one failure (the rejection)", run)
	}
	for range 3 {
		hm.clock.Advance(time.Hour)
		k.Round(t.Context())
	}
	if n := hm.tokenRequests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1: a rejected grant is not retried", n)
	}
	rep, err := c.Status(t.Context(), "default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Health != provider.HealthReauthRequired {
		t.Errorf("health = %q, want reauth_required", rep.Health)
	}
}

func TestKeeperConcurrencyBound(t *testing.T) {
	hm := newHome(t)
	const profiles = 6
	for i := range profiles {
		hm.seed(t, fmt.Sprintf("p%d", i), time.Hour, 20*time.Hour)
	}
	var inFlight, most atomic.Int64
	release := make(chan struct{})
	arrived := make(chan struct{}, profiles)
	hm.h.AS.SetTokenHook(func(http.ResponseWriter, *http.Request) bool {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		return false
	})
	k := hm.keeper(t, hm.connector(), keeper.Config{Concurrency: 2})
	done := make(chan int)
	go func() { done <- k.Round(context.Background()).Refreshed }()
	for range profiles {
		<-arrived // two at a time: the third arrives only once one is released
		release <- struct{}{}
	}
	if n := <-done; n != profiles {
		t.Errorf("refreshed %d, want %d", n, profiles)
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d refreshes ran at once, want at most 2", m)
	}
}

func TestMaxAgeJitter(t *testing.T) {
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{
		{0, 12 * time.Hour},
		{0.5, 15 * time.Hour},
		{0.999999, 18 * time.Hour},
	} {
		got := keeper.MaxAge(24*time.Hour, tc.r)
		if d := got - tc.want; d < -time.Second || d > time.Second {
			t.Errorf("MaxAge(24h, %v) = %s, want %s", tc.r, got, tc.want)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	hm := newHome(t)
	for _, cfg := range []keeper.Config{
		{Interval: time.Hour},
		{Connector: hm.connector(), Interval: time.Second},
	} {
		if _, err := keeper.New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}
