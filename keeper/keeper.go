// Package keeper keeps a [provider.Connector]'s connections alive without a
// caller: it refreshes, through the same refresh protocol, locks and
// leases as a caller,
//
//   - each grant this process used recently, shortly before its access
//     token expires, so that the next caller never waits on the network;
//   - every grant at least once per Interval, so that a refresh token
//     nobody uses is not expired by the server for idleness.
//
// With a shared store that hands out due grants ([oauth.DueClaimer], such
// as package pgstore's), instances share the walk: each claims a batch and
// the others skip it. With config files it walks the profiles the resolver
// lists. Under the locks every refresh is decided again, so that two
// keepers (or a keeper and a caller) never spend one refresh token twice.
// A grant that is reauth_required is left alone.
//
//	k, err := keeper.New(keeper.Config{Connector: router.Connector(), Interval: 24 * time.Hour})
//	if err != nil {
//		return err
//	}
//	go k.Run(ctx)
package keeper

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/observe"
	"github.com/memconnect/memconnect/provider"
)

// Defaults of a [Config].
const (
	// DefaultInterval is the recommended Interval: a day.
	DefaultInterval = 24 * time.Hour
	// DefaultLead is how long before its expiry a used grant is
	// refreshed.
	DefaultLead = 5 * time.Minute
	// DefaultRecent is how recently a grant must have been used to be
	// refreshed ahead of its expiry.
	DefaultRecent = time.Hour
	// DefaultConcurrency is how many refreshes a keeper runs at a time.
	DefaultConcurrency = 4
	// maxTick bounds the time between rounds.
	maxTick = time.Minute
	// claimBatch is how many due grants a round claims at a time from a
	// shared store.
	claimBatch = 100
)

// Config configures a [Keeper]. Connector and Interval are required.
type Config struct {
	// Connector is whose connections are kept.
	Connector *provider.Connector
	// Interval: every grant is refreshed at least once per Interval
	// ([DefaultInterval] is the recommended value). It must be at least a
	// minute.
	Interval time.Duration
	// Lead: a grant used within Recent is refreshed when its access token
	// expires within Lead; zero means [DefaultLead].
	Lead time.Duration
	// Recent: zero means [DefaultRecent].
	Recent time.Duration
	// Concurrency bounds the refreshes under way at once; zero means
	// [DefaultConcurrency].
	Concurrency int
	// Tick is the time between rounds; zero means Lead/4, at most a
	// minute. Each wait is jittered by up to a tenth.
	Tick time.Duration
	// Owner names this instance in a shared store's claims; "" means a
	// random name.
	Owner string
	// Logger receives a line per failed refresh and per round that did
	// something. The zero value discards.
	Logger zerolog.Logger
	// Observer, when not nil, receives each round.
	Observer observe.Observer
	// Clock is the clock of the due decisions; nil means the system
	// clock. The Connector's own clock decides under the locks: give both
	// the same.
	Clock clock.Clock
	// Rand returns a number in [0, 1) for the jitter; nil means
	// math/rand/v2.
	Rand func() float64
}

// Keeper refreshes a Connector's grants in the background. Make one with
// [New]; run it with [Keeper.Run], or a round at a time with
// [Keeper.Round]. A Keeper is safe for concurrent use.
type Keeper struct {
	cfg Config
	// rounds runs one round at a time.
	rounds sync.Mutex
}

// New checks cfg and returns its keeper.
func New(cfg Config) (*Keeper, error) {
	if cfg.Connector == nil {
		return nil, errors.New("keeper: Config.Connector is required")
	}
	if cfg.Interval < time.Minute {
		return nil, fmt.Errorf("keeper: Config.Interval is %s; it must be at least a minute (24h is recommended)", cfg.Interval)
	}
	if cfg.Lead <= 0 {
		cfg.Lead = DefaultLead
	}
	if cfg.Recent <= 0 {
		cfg.Recent = DefaultRecent
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Tick <= 0 {
		cfg.Tick = min(cfg.Lead/4, maxTick)
	}
	if cfg.Owner == "" {
		cfg.Owner = "keeper-" + rand.Text()[:10]
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	cfg.Observer = observe.Or(cfg.Observer)
	return &Keeper{cfg: cfg}, nil
}

// Run runs a round every Tick, jittered, until ctx is done; it returns
// ctx's error.
func (k *Keeper) Run(ctx context.Context) error {
	for {
		k.Round(ctx)
		wait := time.Duration(float64(k.cfg.Tick) * (0.9 + 0.2*k.cfg.Rand()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// MaxAge is the age at which a round refreshes an idle grant: between half
// and three quarters of Interval, jittered by r in [0, 1), so that grants
// signed in at once are not all refreshed in one round and none goes a
// whole Interval unrefreshed.
func MaxAge(interval time.Duration, r float64) time.Duration {
	return interval/2 + time.Duration(float64(interval/4)*r)
}

// Round runs one round: the grants used recently whose access token
// expires within Lead, then the grants obtained longer than the round's
// jittered age ago ([MaxAge]), at most Concurrency at a time. It returns
// what the round did.
func (k *Keeper) Round(ctx context.Context) observe.KeeperRun {
	k.rounds.Lock()
	defer k.rounds.Unlock()
	began := time.Now()
	now := k.cfg.Clock.Now()
	policy := oauth.KeepPolicy{Lead: k.cfg.Lead, MaxAge: MaxAge(k.cfg.Interval, k.cfg.Rand())}
	var run observe.KeeperRun
	var mu sync.Mutex
	seen := map[connid.ID]bool{}
	type job struct {
		key     connid.ID
		p       oauth.KeepPolicy
		claimed bool // handed out as due by the store: no unlocked check
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range k.cfg.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				key := j.key
				keep := k.cfg.Connector.Keep
				if j.claimed {
					keep = k.cfg.Connector.KeepClaimed
				}
				out, err := keep(ctx, key.Profile, key.Provider, j.p)
				mu.Lock()
				run.Checked++
				switch {
				case err != nil && provider.IsGone(err):
				case err != nil:
					run.Failed++
					k.cfg.Logger.Warn().Str("profile", key.Profile).Str("provider", key.Provider).Str("error", err.Error()).
						Msg("keeper: the grant was not refreshed; retrying in a later round")
				case out == oauth.OutcomeRefreshed:
					run.Refreshed++
				case out == oauth.OutcomeAdopted:
					run.Adopted++
				}
				mu.Unlock()
			}
		})
	}
	send := func(key connid.ID, p oauth.KeepPolicy, claimed bool) bool {
		if seen[key] {
			return true
		}
		seen[key] = true
		select {
		case jobs <- job{key, p, claimed}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// Used recently: ahead of expiry, or for age.
	for _, key := range shuffled(k.cfg.Connector.UsedSince(now.Add(-k.cfg.Recent)), k.cfg.Rand) {
		if !send(key, policy, false) {
			break
		}
	}
	// Every other grant: for its age only.
	k.walk(ctx, now, oauth.KeepPolicy{MaxAge: policy.MaxAge}, send)
	close(jobs)
	wg.Wait()
	run.Took = time.Since(began)
	k.cfg.Observer.KeeperRun(run)
	if run.Refreshed+run.Failed > 0 {
		k.cfg.Logger.Info().Int("checked", run.Checked).Int("refreshed", run.Refreshed).Int("adopted", run.Adopted).
			Int("failed", run.Failed).Dur("took", run.Took).Msg("keeper: round done")
	}
	return run
}

// walk hands send every grant old enough for p: claimed in batches from a
// shared store, or read from every profile's config files.
func (k *Keeper) walk(ctx context.Context, now time.Time, p oauth.KeepPolicy, send func(connid.ID, oauth.KeepPolicy, bool) bool) {
	c := k.cfg.Connector
	if c.GrantStore != nil {
		// A claim ends with the refresh that commits (the store releases
		// it then); a failed one is claimed again after a round.
		hold := k.cfg.Tick
		for ctx.Err() == nil {
			keys, err := c.ClaimDue(ctx, k.cfg.Owner, now.Add(-p.MaxAge), hold, claimBatch)
			if err != nil {
				if !errors.Is(err, provider.ErrNoListing) {
					k.cfg.Logger.Warn().Str("error", err.Error()).Msg("keeper: the store's due grants cannot be read")
				}
				return
			}
			for _, key := range keys {
				if !send(key, p, true) {
					return
				}
			}
			if len(keys) < claimBatch {
				return
			}
		}
		return
	}
	keys, err := c.OAuthConnections()
	if err != nil {
		if !errors.Is(err, provider.ErrNoListing) {
			k.cfg.Logger.Warn().Str("error", err.Error()).Msg("keeper: the profiles cannot be listed")
		}
		return
	}
	for _, key := range shuffled(keys, k.cfg.Rand) {
		if !send(key, p, false) {
			return
		}
	}
}

// shuffled returns keys in a random order, so that keepers of several
// processes do not queue behind each other's locks.
func shuffled(keys []connid.ID, r func() float64) []connid.ID {
	for i := len(keys) - 1; i > 0; i-- {
		j := int(r() * float64(i+1))
		keys[i], keys[j] = keys[j], keys[i]
	}
	return keys
}
