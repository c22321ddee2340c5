package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Grants keeps the grants of one [GrantStore] fresh. It runs the refresh
// protocol of the package documentation: the hot cache, the in-process
// lock, the store's lock, the re-read and adoption of another holder's
// rotation, the exchange, the journal and the commit, the dead grant and
// the cooldown.
//
// A Grants is safe for concurrent use by multiple goroutines. Use one per
// store in a process: its token sources then share the in-process refresh
// lock, the token cache and the dead-grant state of each key.
type Grants struct {
	store GrantStore
	caps  Capabilities
	o     options

	mu   sync.Mutex // guards keys
	keys map[string]*keyState
}

// NewGrants returns the engine for the grants of store. It takes the
// [WithLogger], [WithClock] and [WithHTTPClient] options.
func NewGrants(store GrantStore, opts ...Option) *Grants {
	o := newOptions(opts)
	gs := &Grants{
		store: store,
		caps:  CapabilitiesOf(store),
		o:     o,
		keys:  make(map[string]*keyState),
	}
	if o.Uncache != nil {
		*o.Uncache = func(key string) { gs.key(key).cache.Store(nil) }
	}
	return gs
}

// keyState is the in-process state of one key's grant.
type keyState struct {
	// sem is the in-process refresh lock: a channel so that waiting for it
	// honours a context.
	sem chan struct{}
	// cache is the hot path: read without a lock.
	cache atomic.Pointer[cacheEntry]

	mu       sync.Mutex // guards the fields below
	dead     *deadGrant // non-nil: the server rejected this grant
	coolTill time.Time  // no refresh attempt before this instant
	// quietTill: no new warning that the store cannot be read before
	// this instant, so that an outage logs once a cooldown, not per call.
	quietTill time.Time
	unsaved   *Grant // a rotation that could not be committed yet
	// rotated is the SHA-256 sum of the refresh token of the last
	// rotation this process made, taken before it was stored.
	rotated [sha256.Size]byte
	// needs are the scopes a resource asked for (403 insufficient_scope)
	// since the grant was installed.
	needs []string
	// unsavedKept: the store's record of unsaved's answer succeeded, so
	// the answer outlives this process (the next holder commits it).
	unsavedKept bool
	// lifeOf is the access token this process saw last, and life its
	// lifetime as far as this process knows (0: unknown). The refresh
	// skew of a short-lived token is half of it.
	lifeOf  string
	lifeEnd time.Time // lifeOf's expiry
	life    time.Duration
	// unsavedFrom is the refresh token unsaved replaced; while the store
	// still holds it, unsaved is the grant to use.
	unsavedFrom string
	// health is what the refreshes of this process came to.
	health Health

	// used is when a token of this key was last asked for (unix seconds,
	// updated at most once a minute so the hot path stays cheap).
	used atomic.Int64
}

// cacheEntry is an access token and the instant it must be refreshed.
type cacheEntry struct {
	tok       *oauth2.Token
	refreshAt time.Time
}

// deadGrant remembers a grant the server rejected, so that no network call
// is made until the store holds another refresh token.
type deadGrant struct {
	refreshToken string
	code         string
}

func (gs *Grants) key(key string) *keyState {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	k, ok := gs.keys[key]
	if !ok {
		k = &keyState{sem: make(chan struct{}, 1)}
		gs.keys[key] = k
	}
	return k
}

// ReauthRequired reports whether a refresh in this process found key's
// grant rejected by the server, and the store still holds that grant.
func (gs *Grants) ReauthRequired(key string) bool {
	k := gs.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dead != nil
}

// RotatedHere reports whether key's grant whose refresh token has the
// SHA-256 sum sum came from the last rotation this Grants made, rather than
// from another process or instance. A watcher of the store tells its own
// writes from others' with it: the sum is taken when the answer arrives,
// before it is stored, so a write is known as this process's as soon as
// anyone can see it.
func (gs *Grants) RotatedHere(key string, sum [sha256.Size]byte) bool {
	k := gs.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rotated == sum && sum != [sha256.Size]byte{}
}

// RejectedHere reports whether a refresh this Grants made found key's grant
// whose refresh token has the SHA-256 sum sum rejected by the server (or
// left abandoned by another holder), rather than another process or
// instance. Like [Grants.RotatedHere] it is known before the store
// records it.
func (gs *Grants) RejectedHere(key string, sum [sha256.Size]byte) bool {
	k := gs.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dead != nil && sha256.Sum256([]byte(k.dead.refreshToken)) == sum
}

// Install stores a grant fresh from a token response (an authorization code
// or device grant) as key's grant, replacing any other; base supplies what
// the response leaves out (client id, token endpoint, scope, token type),
// and when the tokens were obtained if base.Obtained is set (a grant
// brought from elsewhere; else now). It returns the stored grant. A response without a refresh token (RFC 6749
// section 5.1 makes it optional) is a grant that ends with its access
// token: it is never refreshed, and past its expiry calls fail with
// [ErrReauthRequired] without a network call.
func (gs *Grants) Install(ctx context.Context, key string, tok *oauth2.Token, base Grant, opts ...InstallOption) (*Grant, error) {
	var io installConfig
	for _, o := range opts {
		o(&io)
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("oauth: token response has no access token")
	}
	if base.ClientID == "" || base.TokenEndpoint == "" {
		return nil, errors.New("oauth: install grant: client id and token endpoint are required")
	}
	g := grantFromToken(tok, gs.o.Now(), &base)
	if !base.Obtained.IsZero() {
		g.Obtained = base.Obtained.Truncate(time.Second) // a grant brought from elsewhere
	}
	k := gs.key(key)
	lg, unlock, err := gs.lock(ctx, nil, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	commit := lg.Commit
	lc := lockCapabilitiesOf(lg)
	if lc.final != nil {
		commit = lc.final.CommitAndUnlock
	}
	if lc.config != nil && io.config != nil {
		commit = func(ctx context.Context, prev, next *Grant) error {
			return lc.config.CommitWithConfig(ctx, prev, next, io.config)
		}
	}
	// The sign-in's tokens are stored even when its request is gone.
	if err := commit(context.WithoutCancel(ctx), nil, g); err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.unsaved, k.unsavedFrom, k.needs = nil, "", nil
	k.health = Health{}
	k.mu.Unlock()
	gs.adopted(k, g)
	gs.o.Logger.Info().Str("grant", gs.store.Describe(key)).Time("expires_at", g.Expiry).Msg("oauth: grant installed")
	return g, nil
}

// InstallOption configures [Grants.Install].
type InstallOption func(*installConfig)

type installConfig struct{ config map[string]any }

// InstallConfig makes Install also deep-merge patch into the config file the
// grant goes to, as package filestore's MergeConfig does, in the same locked
// write: the server's "config" object of a sign-in (a peer name, say) and the
// grant land together or not at all. A store whose lock is not a
// [ConfigMerger] (package pgstore's) ignores it.
func InstallConfig(patch map[string]any) InstallOption {
	return func(o *installConfig) { o.config = patch }
}

// Remove removes key's grant and returns it, so the caller can revoke it,
// or returns an error wrapping [ErrNoGrant] when there is none (a plain
// API key is left alone).
func (gs *Grants) Remove(ctx context.Context, key string) (*Grant, error) {
	lg, unlock, err := gs.lock(ctx, nil, key)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := lg.Credentials(ctx)
	if err != nil {
		return nil, err
	}
	if c.Grant == nil {
		return nil, fmt.Errorf("%w for %s", ErrNoGrant, gs.store.Describe(key))
	}
	if err := lg.Commit(ctx, c.Grant, nil); err != nil {
		return nil, err
	}
	gs.key(key).forget()
	gs.o.Logger.Info().Str("grant", gs.store.Describe(key)).Msg("oauth: grant removed")
	return c.Grant, nil
}

// forget clears what the process knew of k's grant: its cached access
// token, and its dead, unsaved and cooling-down state.
func (k *keyState) forget() {
	k.cache.Store(nil)
	k.mu.Lock()
	k.dead, k.unsaved, k.unsavedFrom, k.coolTill, k.needs = nil, nil, "", time.Time{}, nil
	k.health = Health{}
	k.mu.Unlock()
}

// lock takes k's in-process lock (when k is not nil) and then the store's
// lock of key, waiting at most the lock timeout for both. The returned func
// releases both.
func (gs *Grants) lock(ctx context.Context, k *keyState, key string) (LockedGrant, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, gs.o.LockTimeout)
	defer cancel()
	if k != nil {
		select {
		case k.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("oauth: wait for the refresh lock of %s: %w", gs.store.Describe(key), ctx.Err())
		}
	}
	lg, err := gs.store.Lock(ctx, key)
	if err != nil {
		if k != nil {
			<-k.sem
		}
		return nil, nil, err
	}
	return lg, func() {
		lg.Unlock()
		if k != nil {
			<-k.sem
		}
	}, nil
}

// adopted makes g the grant this process serves for k: it fills the cache
// and clears the dead and cooldown state.
//
// While a rotation waits to be committed the cache stays empty, so every
// call takes the slow path and tries the commit again.
func (gs *Grants) adopted(k *keyState, g *Grant) *oauth2.Token {
	tok := g.token()
	k.mu.Lock()
	k.dead, k.coolTill = nil, time.Time{}
	pending := k.unsaved != nil
	k.mu.Unlock()
	refreshAt := g.Expiry // a grant without a refresh token is used to its end
	if g.RefreshToken != "" {
		refreshAt = g.Expiry.Add(-k.skew(g, gs.o.Now()))
	}
	if pending {
		k.cache.Store(nil)
	} else {
		k.cache.Store(&cacheEntry{tok: tok, refreshAt: refreshAt})
	}
	return tok
}

// SkewFor returns how long before expiry a token obtained at obtained is
// refreshed: [RefreshSkew], or half the token's lifetime when that is
// shorter, so that a token that lives a minute is used for half a minute
// instead of being refreshed on every call. An unknown obtained (zero, or
// not before expiry) gives [RefreshSkew].
func SkewFor(obtained, expiry time.Time) time.Duration {
	if obtained.IsZero() || !obtained.Before(expiry) {
		return RefreshSkew
	}
	return min(RefreshSkew, expiry.Sub(obtained)/2)
}

// skew returns how long before g's expiry its access token is refreshed
// ([SkewFor]). The lifetime is the grant's own when it records when its
// tokens were obtained ([Grant.Obtained]), so that every process, a new
// one included, sizes the skew alike.
//
// A grant another program wrote may not record it; its lifetime is then
// what this process saw: a token that replaced one it knew (its own
// rotation, or another holder's) lives from the instant it was first seen,
// which is exact for its own and never longer than the truth for
// another's. The first such token a process sees of a key has an unknown
// lifetime, and the full skew; so does one older than a token seen
// already (a stale read).
func (k *keyState) skew(g *Grant, now time.Time) time.Duration {
	if !g.Obtained.IsZero() && g.Obtained.Before(g.Expiry) {
		return SkewFor(g.Obtained, g.Expiry)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case g.AccessToken == k.lifeOf:
	case k.lifeOf == "":
		k.lifeOf, k.lifeEnd = g.AccessToken, g.Expiry
	case !g.Expiry.Before(k.lifeEnd): // newer, or of the same second
		k.lifeOf, k.lifeEnd, k.life = g.AccessToken, g.Expiry, g.Expiry.Sub(now)
	default:
		return RefreshSkew // an older token than one seen already: a stale read
	}
	if k.life <= 0 {
		return RefreshSkew
	}
	return min(RefreshSkew, k.life/2)
}

// due reports whether g's access token is within its skew of expiry.
func (k *keyState) due(g *Grant, now time.Time) bool {
	return !now.Before(g.Expiry.Add(-k.skew(g, now)))
}
