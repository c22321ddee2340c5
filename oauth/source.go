package oauth

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
)

// errLockWait marks a refresh that could not take the locks in time.
var errLockWait = errors.New("oauth: the refresh lock is busy")

// isRejection reports whether a token-endpoint error code means the refresh
// token is known to be useless (RFC 6749 section 5.2).
func isRejection(code string) bool {
	return code == "invalid_grant" || code == "invalid_client" || code == "unauthorized_client"
}

// Source is an [oauth2.TokenSource] for one key's grant in a [Grants]. Its
// hot path, a cached access token more than its skew ([RefreshSkew], or
// half a shorter lifetime) from expiry,
// takes no lock, reads no store and allocates nothing; everything else
// follows the refresh protocol of the package documentation.
//
// Returned tokens carry no refresh token and must not be modified; they are
// shared between callers, like those of [oauth2.ReuseTokenSource].
//
// A Source is safe for concurrent use by multiple goroutines. It never
// keeps a caller's context: contexts bound only the wait for locks, and an
// exchange once started runs to completion so a rotation is never lost.
type Source struct {
	gs        *Grants
	key       string
	k         *keyState
	onChange  func(*oauth2.Token)
	onRefresh func(RefreshReport)
}

var _ oauth2.TokenSource = (*Source)(nil)

// SourceOption configures a [Source].
type SourceOption func(*Source)

// OnTokenChange registers fn to be called once for every rotation this source
// made (not for tokens adopted from another holder), after the new token is
// stored and the locks are released. It lets a long-lived client swap its
// bearer. A source given several calls each of them, in order.
func OnTokenChange(fn func(*oauth2.Token)) SourceOption {
	return func(ts *Source) {
		if prev := ts.onChange; prev != nil {
			ts.onChange = func(t *oauth2.Token) { prev(t); fn(t) } // every one is called, in order
			return
		}
		ts.onChange = fn
	}
}

// TokenSource returns the token source of key's grant. Sources of the same
// key share one cache and one refresh lock.
func (gs *Grants) TokenSource(key string, opts ...SourceOption) *Source {
	ts := &Source{gs: gs, key: key, k: gs.key(key)}
	for _, o := range opts {
		o(ts)
	}
	return ts
}

// Token returns a valid access token, refreshing it if needed. It is
// [Source.TokenContext] with a background context.
func (ts *Source) Token() (*oauth2.Token, error) {
	return ts.TokenContext(context.Background())
}

// TokenContext returns a valid access token, refreshing it under both locks if
// it is within its skew ([RefreshSkew], or half a shorter lifetime) of
// expiry. ctx bounds only the wait for locks.
func (ts *Source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	now := ts.gs.o.Now()
	if ts.k.touch(now) {
		ts.share(now)
	}
	if e := ts.k.cache.Load(); e != nil && now.Before(e.refreshAt) {
		return e.tok, nil
	}
	return ts.slow(ctx)
}

// ForceRefresh is for a caller whose request was answered 401 with
// failedAccessToken. Under both locks it adopts a different access token
// from the store if another holder stored one; only if the store still holds
// failedAccessToken does it spend the refresh token. Unlike Token it does
// not fail open: a failed exchange is returned as an error.
func (ts *Source) ForceRefresh(ctx context.Context, failedAccessToken string) (*oauth2.Token, error) {
	if err := ts.checkDead(ctx); err != nil {
		return nil, err
	}
	tok, _, err := ts.refresh(ctx, refreshReq{force: true, failed: failedAccessToken}, nil)
	return tok, err
}

func (ts *Source) slow(ctx context.Context) (*oauth2.Token, error) {
	if err := ts.checkDead(ctx); err != nil {
		return nil, err
	}
	ts.k.mu.Lock()
	coolTill, unsaved := ts.k.coolTill, ts.k.unsaved != nil
	ts.k.mu.Unlock()
	if unsaved {
		tok, _, err := ts.refresh(ctx, refreshReq{}, nil) // commit the pending rotation first
		return tok, err
	}
	c, err := ts.gs.store.Credentials(ctx, ts.key)
	if err != nil && ctx.Err() == nil {
		// The store cannot be read (a database restarting, say): keep the
		// token in hand while it is valid, as after a failed refresh.
		if e := ts.k.cache.Load(); e != nil && ts.gs.o.Now().Before(e.tok.Expiry) {
			now := ts.gs.o.Now()
			ts.k.mu.Lock()
			warn := !now.Before(ts.k.quietTill)
			if warn {
				ts.k.quietTill = now.Add(ts.gs.o.Cooldown)
			}
			ts.k.mu.Unlock()
			if warn {
				ts.gs.o.Logger.Warn().Str("grant", ts.gs.store.Describe(ts.key)).Str("error", err.Error()).
					Msg("oauth: the grant store cannot be read; keeping the current token, which is still valid")
			}
			return e.tok, nil
		}
	}
	g, err := ts.grant(c, err)
	if err != nil {
		ts.k.cache.Store(nil)
		return nil, err
	}
	if c.Rejected != "" {
		ts.k.cache.Store(nil)
		return nil, ts.reauthError(c.Rejected) // another holder met the rejection
	}
	now := ts.gs.o.Now()
	if !ts.k.due(g, now) || g.RefreshToken == "" && now.Before(g.Expiry) {
		return ts.gs.adopted(ts.k, g), nil
	}
	if g.RefreshToken == "" {
		ts.k.cache.Store(nil)
		return nil, ts.reauthError(CodeExpired) // nothing to refresh with: no network call
	}
	if now.Before(coolTill) {
		return g.token(), nil // fail open until the cooldown ends
	}
	tok, _, err := ts.refresh(ctx, refreshReq{}, g)
	return tok, err
}

// grant returns the grant of c, or an error wrapping [ErrNoGrant].
func (ts *Source) grant(c Credentials, err error) (*Grant, error) {
	if err != nil {
		return nil, err
	}
	if c.Grant == nil {
		return nil, fmt.Errorf("%w for %s", ErrNoGrant, ts.gs.store.Describe(ts.key))
	}
	return c.Grant, nil
}

// checkDead returns the reauth error while the grant is dead and the store
// still holds the refresh token the server rejected.
func (ts *Source) checkDead(ctx context.Context) error {
	k := ts.k
	k.mu.Lock()
	d := k.dead
	k.mu.Unlock()
	if d == nil {
		return nil
	}
	c, err := ts.gs.store.Credentials(ctx, ts.key)
	if err == nil && c.Grant != nil && c.Grant.RefreshToken == d.refreshToken {
		return ts.reauthError(d.code)
	}
	k.mu.Lock()
	if k.dead == d {
		k.dead = nil
	}
	k.mu.Unlock()
	return nil
}

func (ts *Source) reauthError(code string) error {
	return &ReauthError{Grant: ts.gs.store.Describe(ts.key), Code: code}
}

// Sync stores a rotation this source made but could not write yet (it is
// kept in memory, and in the journal where one could be written) and
// reports an error when it still cannot. A long-lived process need not call
// it: every call retries. A short-lived one, such as a command-line run,
// calls it before it exits, so that it never ends holding a rotation the
// config file does not have.
func (ts *Source) Sync(ctx context.Context) error {
	k := ts.k
	k.mu.Lock()
	unsaved := k.unsaved
	k.mu.Unlock()
	if unsaved == nil {
		return nil
	}
	lg, unlock, err := ts.gs.lock(ctx, k, ts.key)
	if err == nil {
		defer unlock()
		var c Credentials
		if c, err = lg.Credentials(ctx); err == nil && c.Grant != nil {
			ts.saveUnsaved(ctx, lg, c.Grant, unsaved)
		}
	}
	k.mu.Lock()
	still, kept := k.unsaved != nil, k.unsavedKept
	k.mu.Unlock()
	if !still {
		return nil
	}
	if err == nil {
		err = errors.New("the store did not take it")
	}
	if kept {
		return fmt.Errorf("oauth: the refreshed grant of %s is not stored yet (%s); the server's answer is kept, and the next run stores it", ts.gs.store.Describe(ts.key), redact(err.Error(), unsaved))
	}
	return fmt.Errorf("oauth: the refreshed grant of %s could not be stored (%s), and only this process held the server's answer: the next sign-in may be needed", ts.gs.store.Describe(ts.key), redact(err.Error(), unsaved))
}
