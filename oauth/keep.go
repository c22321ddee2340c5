package oauth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Outcome is what a refresh under the locks came to, as a [RefreshReport]
// tells it.
type Outcome string

// Outcomes of a refresh.
const (
	// OutcomeRefreshed: this process spent the refresh token and stored
	// the server's answer.
	OutcomeRefreshed Outcome = "ok"
	// OutcomeAdopted: the store held a token that needed no refresh, often
	// one another holder had just stored; nothing was spent.
	OutcomeAdopted Outcome = "adopted"
	// OutcomeFailed: the refresh failed for a reason that may pass (the
	// server down, a timeout, a busy lock); the grant is kept.
	OutcomeFailed Outcome = "transient_failure"
	// OutcomeRejected: the server rejected the grant; a sign-in is needed.
	OutcomeRejected Outcome = "rejected"
)

// RefreshReport tells an [OnRefresh] callback what one refresh came to.
// It holds no token.
type RefreshReport struct {
	Outcome Outcome
	// Took is how long the exchange with the token endpoint took; zero
	// when none was made.
	Took time.Duration
	// LockWait is how long the in-process lock and the store's lock (the
	// file lock, the PostgreSQL lease) took to get.
	LockWait time.Duration
	// Recovered reports a refresh that worked (refreshed or adopted)
	// after refreshes of this process had failed.
	Recovered bool
	// Error is a safe description of a failure or rejection; "" on
	// success.
	Error string
}

// OnRefresh registers fn to be called, after the locks are released, for
// every refresh this source attempted under the locks, whatever it came
// to. It feeds metrics and health reports.
func OnRefresh(fn func(RefreshReport)) SourceOption {
	return func(ts *Source) {
		if prev := ts.onRefresh; prev != nil {
			ts.onRefresh = func(r RefreshReport) { prev(r); fn(r) }
			return
		}
		ts.onRefresh = fn
	}
}

// Health is how the refreshes of one key's grant have gone in this
// process, as [Grants.Health] tells it.
type Health struct {
	// LastRefresh is when this process last stored a refreshed token of
	// the key; zero when it has not.
	LastRefresh time.Time
	// LastError is the last failed refresh, when no refresh has worked
	// since; nil otherwise.
	LastError *RefreshError
	// FailingSince is when the refreshes started failing; zero when they
	// are not.
	FailingSince time.Time
}

// RefreshError is a failed refresh: when, and a safe description of why
// (no token, no server body).
type RefreshError struct {
	At      time.Time
	Message string
}

// Health returns how the refreshes of key's grant have gone in this
// process.
func (gs *Grants) Health(key string) Health {
	k := gs.key(key)
	k.mu.Lock()
	defer k.mu.Unlock()
	h := k.health
	if h.LastError != nil {
		e := *h.LastError
		h.LastError = &e
	}
	return h
}

// LastUsed returns when a token of key was last asked for in this process,
// to the minute; zero when never.
func (gs *Grants) LastUsed(key string) time.Time {
	s := gs.key(key).used.Load()
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// touch records a use of k at now, at most once a minute: a load, and a
// store only when the last one is older; it reports whether it stored.
func (k *keyState) touch(now time.Time) bool {
	if s := now.Unix(); s-k.used.Load() >= 60 {
		k.used.Store(s)
		return true
	}
	return false
}

// stateTimeout bounds a record of shared state ([StateStore]).
const stateTimeout = 5 * time.Second

// share records a use of ts's key at now in a [StateStore], if the store
// is one, on a goroutine of its own: the caller is on the token path.
func (ts *Source) share(now time.Time) {
	ss := ts.gs.caps.State
	if ss == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		if err := ss.RecordUse(ctx, ts.key, now); err != nil {
			ts.gs.o.Logger.Debug().Str("grant", ts.gs.store.Describe(ts.key)).Str("error", err.Error()).Msg("oauth: the use of the grant was not recorded for other instances")
		}
	}()
}

// report records out in the key's health and hands it to OnRefresh.
func (ts *Source) report(out outcome) {
	if out.kind == "" {
		return
	}
	now := ts.gs.o.Now()
	k := ts.k
	k.mu.Lock()
	failing := k.health.LastError != nil
	switch out.kind {
	case OutcomeRefreshed, OutcomeAdopted:
		k.health.LastError, k.health.FailingSince = nil, time.Time{}
		if out.kind == OutcomeRefreshed {
			k.health.LastRefresh = now
		}
	default:
		if !failing {
			k.health.FailingSince = now
		}
		k.health.LastError = &RefreshError{At: now, Message: out.msg}
	}
	h := k.health
	k.mu.Unlock()
	// A refresh that works while none failed changes nothing the store
	// keeps beyond its commit (which records when): no statement for it.
	changed := failing || h.LastError != nil
	if ss := ts.gs.caps.State; ss != nil && changed {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		if err := ss.RecordHealth(ctx, ts.key, h); err != nil {
			ts.gs.o.Logger.Warn().Str("grant", ts.gs.store.Describe(ts.key)).Str("error", err.Error()).Msg("oauth: how the refresh went was not recorded for other instances")
		}
		cancel()
	}
	if ts.onRefresh != nil {
		ts.onRefresh(RefreshReport{
			Outcome:   out.kind,
			Took:      out.took,
			LockWait:  out.lockWait,
			Recovered: failing && (out.kind == OutcomeRefreshed || out.kind == OutcomeAdopted),
			Error:     out.msg,
		})
	}
}

// KeepPolicy says when [Source.Keep] refreshes a grant. Unlike
// [Source.Token] it ignores the skew: an idle grant whose access token
// expired long ago is refreshed for its age, not on every round.
type KeepPolicy struct {
	// Lead: refresh when the access token expires within Lead, so that
	// the next caller does not wait on the network. Zero: only within
	// the skew.
	Lead time.Duration
	// MaxAge: refresh when the tokens were obtained MaxAge ago or more
	// ([Grant.ObtainedOrEstimate]), so that a refresh token nobody uses
	// is not expired by the server for idleness. Zero: never for age.
	MaxAge time.Duration
}

// due reports whether p asks for g to be refreshed at now.
func (p *KeepPolicy) due(g *Grant, now time.Time) bool {
	if p.Lead > 0 && !now.Before(g.Expiry.Add(-p.Lead)) {
		return true
	}
	return p.MaxAge > 0 && now.Sub(g.ObtainedOrEstimate()) >= p.MaxAge
}

// Due reports whether p asks for g to be refreshed at now, as read
// without the locks; [Source.Keep] decides again under them.
func (p KeepPolicy) Due(g *Grant, now time.Time) bool { return p.due(g, now) }

// ErrKeepFailed is matched by the error [Source.Keep] returns when the
// refresh failed for a reason that may pass; the grant is kept.
var ErrKeepFailed = errors.New("oauth: the refresh failed; the grant is kept")

// Keep refreshes the grant in the background's way: under both locks it
// reads the grant again and spends the refresh token only when p says it
// is due then, so that holders keeping the same grant at
// once spend it once; otherwise it adopts what the store holds. It
// reports what it came to. Unlike Token it does not fail open: a failure
// is an error matching [ErrKeepFailed], a rejection one matching
// [ErrReauthRequired]. A grant the server rejected before is not sent
// again.
func (ts *Source) Keep(ctx context.Context, p KeepPolicy) (Outcome, error) {
	if err := ts.checkDead(ctx); err != nil {
		return OutcomeRejected, err
	}
	_, out, err := ts.refresh(ctx, refreshReq{keep: &p}, nil)
	switch {
	case err != nil && errors.Is(err, ErrReauthRequired):
		return OutcomeRejected, err
	case err != nil:
		return out.kind, fmt.Errorf("%w: %w", ErrKeepFailed, err)
	case out.kind == OutcomeFailed:
		return out.kind, fmt.Errorf("%w: %s: %s", ErrKeepFailed, ts.gs.store.Describe(ts.key), out.msg)
	}
	return out.kind, nil
}
