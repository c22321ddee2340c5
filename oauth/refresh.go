package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/scopes"
	"github.com/memconnect/memconnect/internal/tokenresp"
)

// refreshReq is what a refresh is asked to do.
type refreshReq struct {
	// force treats failed, an access token a resource refused, as
	// rejected regardless of its expiry.
	force  bool
	failed string
	// keep, when not nil, is the keeper's policy: it says when the grant
	// is due besides its skew.
	keep *KeepPolicy
}

// outcome is what one refresh under the locks came to, for the
// OnRefresh report and the key's health.
type outcome struct {
	kind     Outcome // "" when nothing was attempted (a cooldown)
	msg      string  // a safe description of a failure
	took     time.Duration
	lockWait time.Duration
}

// refresh runs steps 2-5 of the protocol under both locks, as req asks. current,
// if not nil, is the grant an unlocked read found: it is returned, while
// still valid, when the locks cannot be had in time (fail open).
//
// The work runs in its own goroutine: a caller whose context ends stops
// waiting, but an exchange already under way still completes and is
// persisted (and reported to OnTokenChange), so the rotation is not lost.
func (ts *Source) refresh(ctx context.Context, req refreshReq, current *Grant) (*oauth2.Token, outcome, error) {
	type result struct {
		tok *oauth2.Token
		out outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, out, err := ts.refreshLocked(ctx, req)
		ts.report(out)
		if err == nil && out.kind == OutcomeRefreshed && ts.onChange != nil {
			ts.onChange(tok)
		}
		done <- result{tok, out, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, errLockWait) && current != nil && ts.gs.o.Now().Before(current.Expiry) {
			ts.gs.o.Logger.Warn().Str("grant", ts.gs.store.Describe(ts.key)).Str("error", r.err.Error()).
				Msg("oauth: the refresh lock is busy; keeping the current token, which is still valid")
			return current.token(), r.out, nil
		}
		return r.tok, r.out, r.err
	case <-ctx.Done():
		return nil, outcome{}, fmt.Errorf("oauth: token for %s: %w", ts.gs.store.Describe(ts.key), ctx.Err())
	}
}

func (ts *Source) refreshLocked(ctx context.Context, req refreshReq) (tok *oauth2.Token, out outcome, err error) {
	gs, k := ts.gs, ts.k
	force, failedAccessToken := req.force, req.failed
	began := time.Now()
	lg, unlock, err := gs.lock(ctx, k, ts.key)
	out.lockWait = time.Since(began)
	if err != nil {
		out.kind, out.msg = OutcomeFailed, "the refresh lock is busy"
		return nil, out, fmt.Errorf("%w: %w", errLockWait, err)
	}
	defer unlock()
	adopt := func(g *Grant) (*oauth2.Token, outcome, error) {
		out.kind = OutcomeAdopted
		return gs.adopted(k, g), out, nil
	}

	c, err := lg.Credentials(ctx)
	g, err := ts.grant(c, err)
	if err != nil {
		k.cache.Store(nil)
		return nil, out, err
	}
	if c.Rejected != "" {
		k.cache.Store(nil)
		return nil, out, ts.reauthError(c.Rejected)
	}
	k.mu.Lock()
	dead, coolTill, unsaved := k.dead, k.coolTill, k.unsaved
	k.mu.Unlock()

	if unsaved != nil {
		g = ts.saveUnsaved(ctx, lg, g, unsaved)
	}
	if dead != nil && dead.refreshToken == g.RefreshToken {
		return nil, out, ts.reauthError(dead.code)
	}
	now := gs.o.Now()
	switch {
	case force:
		if g.AccessToken != failedAccessToken {
			return adopt(g) // another holder already rotated
		}
	case req.keep != nil:
		if !req.keep.due(g, now) {
			return adopt(g)
		}
	case !k.due(g, now):
		return adopt(g)
	}
	if g.RefreshToken == "" {
		// A grant without a refresh token ends with its access token.
		if !force && now.Before(g.Expiry) {
			return adopt(g)
		}
		k.cache.Store(nil)
		return nil, out, ts.reauthError(CodeExpired)
	}
	if now.Before(coolTill) {
		if force {
			return nil, out, fmt.Errorf("oauth: token refresh for %s is paused after a failure; try again in %s",
				gs.store.Describe(ts.key), coolTill.Sub(now).Round(time.Second))
		}
		return g.token(), out, nil
	}

	record, err := lg.Prepare(ctx, g)
	if errors.Is(err, ErrRotationAbandoned) {
		return ts.abandoned(ctx, lg, g, err, out)
	}
	if errors.Is(err, ErrRotationInFlight) {
		return ts.inFlight(ctx, lg, g, err, force, out)
	}
	if err != nil {
		// Nothing was spent. Keep the current token while it is valid and
		// try again after the cooldown; the error names the directory.
		k.mu.Lock()
		k.coolTill = now.Add(gs.o.Cooldown)
		k.mu.Unlock()
		msg := redact(err.Error(), g)
		gs.o.Logger.Error().Str("grant", gs.store.Describe(ts.key)).Str("error", msg).Msg("oauth: token not refreshed")
		out.kind, out.msg = OutcomeFailed, msg
		if !force && now.Before(g.Expiry) {
			return g.token(), out, nil
		}
		return nil, out, err
	}
	log := gs.o.Logger.With().Str("grant", gs.store.Describe(ts.key)).Logger()
	kept := false
	journal := func(body []byte, contentType string) {
		if jerr := record(body, contentType); jerr != nil {
			log.Warn().Str("error", redact(tokenresp.Redact(jerr.Error(), body, contentType), g)).Msg("oauth: could not write the rotation journal")
			return
		}
		kept = true
	}
	var late struct {
		body []byte
		ct   string
	}
	sent := time.Now()
	fresh, err := ts.exchange(g, func(body []byte, contentType string) {
		if gs.o.LateJournal {
			late.body, late.ct = body, contentType
		} else {
			journal(body, contentType)
		}
		if gs.o.AnswerArrived != nil {
			gs.o.AnswerArrived()
		}
	})
	// From here on the token may be spent: what follows reaches the store
	// even when the caller is gone.
	spent := context.WithoutCancel(ctx)
	if err != nil {
		if sa := lockCapabilitiesOf(lg).abandon; sa != nil && unspent(err) {
			if aerr := sa.Abandon(spent, g); aerr != nil {
				log.Warn().Str("error", redact(aerr.Error(), g)).Msg("oauth: could not withdraw the record of a spend that did not happen")
			}
		}
		out.took = time.Since(sent)
		return ts.failed(spent, lg, g, err, force, out)
	}
	out.took = time.Since(sent)
	ng := grantFromToken(fresh, gs.o.Now(), g)
	if added := scopes.Added(strings.Fields(g.Scope), strings.Fields(ng.Scope)); len(added) > 0 {
		log.Warn().Strs("added_scopes", added).Msg("oauth: the refreshed grant has a wider scope than the grant it replaces; stored as the server answered")
	}
	if gs.o.LateJournal && late.body != nil {
		journal(late.body, late.ct)
	}
	k.mu.Lock()
	k.rotated = sha256.Sum256([]byte(ng.RefreshToken))
	k.mu.Unlock()
	commit := lg.Commit
	if fc := lockCapabilitiesOf(lg).final; fc != nil {
		commit = fc.CommitAndUnlock // the last write under the lock
	}
	if werr := commit(spent, g, ng); errors.Is(werr, ErrStaleGrant) {
		// Another holder wrote the grant meanwhile (this one paused past
		// its lease): it may have committed this very answer from the
		// journal; anything else means this answer is not the grant.
		if c, err := lg.Credentials(spent); err != nil || c.Grant == nil || c.Grant.RefreshToken != ng.RefreshToken {
			log.Error().Str("error", redact(werr.Error(), g, ng)).Msg("oauth: the grant changed while this refresh was at the server; its answer was not stored")
			k.cache.Store(nil)
			out.kind, out.msg = OutcomeFailed, "the grant changed while this refresh was at the server"
			return nil, out, fmt.Errorf("oauth: the grant of %s changed while this process's refresh was at the server, so its answer could not be stored; try again", gs.store.Describe(ts.key))
		}
	} else if werr != nil {
		// The old refresh token is spent: keep the new grant in memory
		// (and, where record succeeded, in the store's journal) and
		// commit it on the next call rather than lose the rotation.
		k.mu.Lock()
		k.unsaved, k.unsavedFrom, k.unsavedKept = ng, g.RefreshToken, kept
		k.mu.Unlock()
		log.Error().Str("error", redact(werr.Error(), g, ng)).Bool("answer_kept", kept).Msg("oauth: rotated token could not be stored; kept in memory, will retry")
	}
	tok = gs.adopted(k, ng)
	log.Info().Time("expires_at", ng.Expiry).Msg("oauth: token refreshed")
	out.kind = OutcomeRefreshed
	return tok, out, nil
}

// saveUnsaved commits a rotation that an earlier commit failed to store,
// when the store still holds its predecessor. It returns the grant to
// continue with: the unsaved one while it cannot be stored, so the spent
// refresh token is never replayed.
func (ts *Source) saveUnsaved(ctx context.Context, lg LockedGrant, stored, unsaved *Grant) *Grant {
	gs, k := ts.gs, ts.k
	k.mu.Lock()
	from := k.unsavedFrom
	k.mu.Unlock()
	if stored.RefreshToken != from {
		k.mu.Lock()
		k.unsaved = nil
		k.mu.Unlock()
		return stored // the store moved on without us
	}
	log := gs.o.Logger.With().Str("grant", gs.store.Describe(ts.key)).Logger()
	if err := lg.Commit(context.WithoutCancel(ctx), stored, unsaved); err != nil {
		log.Error().Str("error", redact(err.Error(), stored, unsaved)).Msg("oauth: rotated token still cannot be stored; serving it from memory")
		return unsaved
	}
	k.mu.Lock()
	k.unsaved = nil
	k.mu.Unlock()
	log.Info().Msg("oauth: rotated token stored after an earlier failure")
	return unsaved
}

// inFlight handles a Prepare that found another holder's spend of g's
// refresh token unfinished: nothing was spent. It adopts what the store
// holds by now; else it keeps the current token while it is valid (and
// waits out the cooldown), else it reports the error.
func (ts *Source) inFlight(ctx context.Context, lg LockedGrant, g *Grant, err error, force bool, out outcome) (*oauth2.Token, outcome, error) {
	gs, k := ts.gs, ts.k
	if g2, gerr := ts.grant(lg.Credentials(ctx)); gerr == nil && g2.RefreshToken != g.RefreshToken {
		out.kind = OutcomeAdopted
		return gs.adopted(k, g2), out, nil
	}
	out.kind, out.msg = OutcomeFailed, "another holder's refresh has not finished"
	now := gs.o.Now()
	k.mu.Lock()
	k.coolTill = now.Add(gs.o.Cooldown)
	k.mu.Unlock()
	gs.o.Logger.Warn().Str("grant", gs.store.Describe(ts.key)).Str("error", redact(err.Error(), g)).Msg("oauth: token not refreshed: another holder's refresh has not finished")
	if !force && now.Before(g.Expiry) {
		return g.token(), out, nil
	}
	return nil, out, fmt.Errorf("oauth: token for %s: %w", gs.store.Describe(ts.key), err)
}

// abandoned handles a spend another holder never finished: the grant needs
// a new sign-in, recorded for every process, and is never spent again.
func (ts *Source) abandoned(ctx context.Context, lg LockedGrant, g *Grant, err error, out outcome) (*oauth2.Token, outcome, error) {
	gs, k := ts.gs, ts.k
	log := gs.o.Logger.With().Str("grant", gs.store.Describe(ts.key)).Logger()
	k.cache.Store(nil)
	k.mu.Lock()
	k.dead = &deadGrant{refreshToken: g.RefreshToken, code: CodeAbandoned}
	k.mu.Unlock()
	if rerr := lg.Reject(context.WithoutCancel(ctx), g, CodeAbandoned); rerr != nil {
		log.Warn().Str("error", redact(rerr.Error(), g)).Msg("oauth: could not record the abandoned refresh for other processes")
	}
	rerr := ts.reauthError(CodeAbandoned)
	log.Error().Str("error", redact(err.Error(), g)).Msg("oauth: " + strings.TrimPrefix(rerr.Error(), "oauth: "))
	out.kind, out.msg = OutcomeRejected, rerr.Error()
	return nil, out, rerr
}

// failed handles a failed exchange: a rejected grant is adopted from the
// store or marked dead; anything else fails open and starts the cooldown.
// ctx is not cancelled: the token may have been spent.
func (ts *Source) failed(ctx context.Context, lg LockedGrant, g *Grant, err error, force bool, out outcome) (*oauth2.Token, outcome, error) {
	gs, k := ts.gs, ts.k
	log := gs.o.Logger.With().Str("grant", gs.store.Describe(ts.key)).Logger()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && isRejection(re.ErrorCode) {
		if g2, gerr := ts.grant(lg.Credentials(ctx)); gerr == nil && g2.RefreshToken != g.RefreshToken {
			log.Info().Msg("oauth: lost a refresh race; adopting the token another holder stored")
			out.kind = OutcomeAdopted
			return gs.adopted(k, g2), out, nil
		}
		k.cache.Store(nil)
		k.mu.Lock()
		k.dead = &deadGrant{refreshToken: g.RefreshToken, code: re.ErrorCode}
		k.mu.Unlock()
		if rerr := lg.Reject(ctx, g, re.ErrorCode); rerr != nil {
			log.Warn().Str("error", redact(rerr.Error(), g)).Msg("oauth: could not record the rejection for other processes")
		}
		log.Warn().Str("error", describe(err, g)).Msg("oauth: grant rejected by the authorization server; sign-in required")
		out.kind, out.msg = OutcomeRejected, describe(err, g)
		return nil, out, ts.reauthError(re.ErrorCode)
	}
	now := gs.o.Now()
	k.mu.Lock()
	k.coolTill = now.Add(gs.o.Cooldown)
	k.mu.Unlock()
	log.Warn().Str("error", describe(err, g)).Dur("retry_in", gs.o.Cooldown).Msg("oauth: token refresh failed; keeping the current token")
	out.kind, out.msg = OutcomeFailed, describe(err, g)
	if force {
		return nil, out, fmt.Errorf("oauth: token refresh for %s failed: %s", gs.store.Describe(ts.key), describe(err, g))
	}
	return g.token(), out, nil
}

// exchange spends g's refresh token through x/oauth2 as a public client
// (client_id in the form, no secret), with the grant's resource (RFC 8707)
// when it has one. Each attempt has its own deadline
// within the overall budget; the caller's context is deliberately not used,
// so a cancelled request cannot lose a rotation the server already made.
//
// A second attempt is made only when the first provably did not reach the
// server (the request was never fully written) or the server answered 5xx or
// 429. A response lost after the request was sent is not retried: the server
// may have rotated, and retrying would replay the token.
//
// A successful answer is handed to answered before x/oauth2 reads it, and
// is never thrown away: one x/oauth2 refuses (an expires_in of 3600.5 or
// "3600") is read by [tokenresp.Parse].
func (ts *Source) exchange(g *Grant, answered func(body []byte, contentType string)) (*oauth2.Token, error) {
	gs := ts.gs
	cfg := oauth2.Config{
		ClientID: g.ClientID,
		Endpoint: oauth2.Endpoint{TokenURL: g.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
	}
	// The budget bounds the attempts and the wait between them; each
	// attempt has its own deadline, which keeps a delivered answer.
	budgetEnd := time.Now().Add(gs.o.Budget)
	for attempt := 1; ; attempt++ {
		var sent atomic.Bool
		capture := &tokenresp.Capture{OnSuccess: answered}
		if g.Resource != "" {
			capture.Params = url.Values{"resource": {g.Resource}}
		}
		client := capture.Client(gs.o.Client)
		client.Timeout = 0 // the attempt's deadline below bounds it, keeping a delivered answer
		actx, acancel := context.WithCancel(context.WithValue(context.Background(), oauth2.HTTPClient, client))
		stopDeadline := keepAnswerDeadline(min(gs.o.AttemptTimeout, time.Until(budgetEnd)), &sent, acancel)
		actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				if i.Err == nil {
					sent.Store(true)
				}
			},
		})
		_, err := cfg.TokenSource(actx, &oauth2.Token{RefreshToken: g.RefreshToken}).Token()
		stopDeadline()
		acancel()
		if ans := capture.Last(); ans != nil {
			tok, odd, perr := tokenresp.Parse(ans.Body, ans.ContentType, ans.Received)
			if perr == nil {
				if odd != "" {
					gs.o.Logger.Warn().Str("grant", gs.store.Describe(ts.key)).Str("odd", odd).Msg("oauth: the token endpoint's answer is unusual; kept")
				}
				return tok, nil
			}
			if err == nil {
				err = perr
			}
		}
		if err == nil {
			err = errors.New("oauth: the token endpoint's answer could not be read")
		}
		if attempt >= 2 || !retryable(err, sent.Load()) {
			return nil, err
		}
		gs.o.Logger.Debug().Str("grant", gs.store.Describe(ts.key)).Str("error", describe(err, g)).Msg("oauth: token refresh attempt failed; retrying")
		if time.Until(budgetEnd) <= gs.o.RetryDelay {
			return nil, err
		}
		time.Sleep(gs.o.RetryDelay)
	}
}

// answerGrace is how long an attempt whose request was sent in full may
// still read its answer once its deadline has passed.
const answerGrace = 2 * time.Second

// keepAnswerDeadline cancels an attempt after d, unless its request was
// sent in full by then: the refresh token is spent, and its answer may be
// waiting, unread, in the connection. A process paused while the server
// answered (a laptop's lid closed, SIGSTOP) wakes with its deadline past
// and the answer delivered; cancelling at once would drop the rotated
// tokens, and nobody may spend the old one again. Such an attempt gets
// [answerGrace] more to read what has arrived. stop ends the deadline.
func keepAnswerDeadline(d time.Duration, sent *atomic.Bool, cancel context.CancelFunc) (stop func()) {
	t := time.AfterFunc(d, func() {
		if !sent.Load() {
			cancel()
			return
		}
		time.AfterFunc(answerGrace, cancel)
	})
	return func() { t.Stop() }
}

// retryable reports whether a failed refresh may be sent again without risk
// of replaying a refresh token the server already rotated.
func retryable(err error, sent bool) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response == nil {
			return false
		}
		sc := re.Response.StatusCode
		return sc >= 500 || sc == 429
	}
	return !sent
}
