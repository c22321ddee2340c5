package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// ErrReauthRequired reports that the authorization server rejected the grant
// (invalid_grant, invalid_client or unauthorized_client) and no sibling had
// stored a newer one: the person has to sign in again. Errors returned for a
// dead grant match it with [errors.Is]; they are [*ReauthError] values.
var ErrReauthRequired = errors.New("oauth: re-authentication required")

// ReauthError is the error for a grant the server rejected. It matches
// [ErrReauthRequired].
type ReauthError struct {
	Path string // the config file
	Host string // the host block
	Code string // the OAuth error code the server answered, e.g. "invalid_grant"
}

func (e *ReauthError) Error() string {
	return fmt.Sprintf("oauth: the authorization server rejected the grant for host %q in %s (%s); sign in again", e.Host, e.Path, e.Code)
}

// Is reports whether target is [ErrReauthRequired].
func (e *ReauthError) Is(target error) bool { return target == ErrReauthRequired }

// rejectionCodes are the token-endpoint answers after which a refresh token is
// known to be useless (RFC 6749 section 5.2).
var rejectionCodes = map[string]bool{"invalid_grant": true, "invalid_client": true, "unauthorized_client": true}

// FileTokenSource is an [oauth2.TokenSource] for one host's grant in one
// config file. It implements the refresh protocol of DESIGN.md:
//
//  1. While the cached access token is more than [RefreshSkew] from expiry it
//     is returned with no lock, no disk access and no allocation.
//  2. Otherwise the source takes the in-process lock for (path, host) and the
//     file lock, both with a deadline, re-reads the file and adopts a token a
//     sibling process already rotated.
//  3. Only if the token on disk still needs a refresh does it spend the
//     refresh token (15 s an attempt, one retry after 2 s when the request
//     provably did not reach the server or the server answered 5xx/429, 20 s
//     in all) and persist the rotation atomically before releasing the locks.
//  4. On invalid_grant, invalid_client or unauthorized_client it re-reads the
//     file and adopts a refresh token that changed meanwhile (a lost race);
//     otherwise the grant is dead: no network call until the file changes, and
//     Token returns an error matching [ErrReauthRequired].
//  5. On a transient failure it logs a warning (no token values), returns the
//     current token (fail open) and makes no new attempt for 30 s.
//
// Returned tokens carry no refresh token and must not be modified; they are
// shared between callers, like those of [oauth2.ReuseTokenSource].
//
// A FileTokenSource is safe for concurrent use by multiple goroutines. It
// never keeps a caller's context: contexts bound only the wait for locks, and
// an exchange once started runs to completion so a rotation is never lost.
type FileTokenSource struct {
	store    *Store
	host     string
	h        *hostState
	onChange func(*oauth2.Token)
}

var _ oauth2.TokenSource = (*FileTokenSource)(nil)

// SourceOption configures a [FileTokenSource].
type SourceOption func(*FileTokenSource)

// OnTokenChange registers fn to be called once for every rotation this source
// made (not for tokens adopted from a sibling), after the new token is stored
// and the locks are released. It lets a long-lived client swap its bearer.
func OnTokenChange(fn func(*oauth2.Token)) SourceOption {
	return func(ts *FileTokenSource) { ts.onChange = fn }
}

// TokenSource returns the token source for host's grant in this store.
// Sources of the same store and host share one cache and one refresh lock.
func (s *Store) TokenSource(host string, opts ...SourceOption) *FileTokenSource {
	ts := &FileTokenSource{store: s, host: host, h: s.host(host)}
	for _, o := range opts {
		o(ts)
	}
	return ts
}

// Token returns a valid access token, refreshing it if needed. It is
// [FileTokenSource.TokenContext] with a background context.
func (ts *FileTokenSource) Token() (*oauth2.Token, error) {
	return ts.TokenContext(context.Background())
}

// TokenContext returns a valid access token, refreshing it under both locks if
// it is within [RefreshSkew] of expiry. ctx bounds only the wait for locks.
func (ts *FileTokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	if e := ts.h.cache.Load(); e != nil && ts.store.now().Before(e.refreshAt) {
		return e.tok, nil
	}
	return ts.slow(ctx)
}

// ForceRefresh is for a caller whose request was answered 401 with
// failedAccessToken. Under both locks it adopts a different access token from
// disk if a sibling stored one; only if the file still holds
// failedAccessToken does it spend the refresh token. Unlike Token it does not
// fail open: a failed exchange is returned as an error.
func (ts *FileTokenSource) ForceRefresh(ctx context.Context, failedAccessToken string) (*oauth2.Token, error) {
	if err := ts.checkDead(); err != nil {
		return nil, err
	}
	return ts.refresh(ctx, failedAccessToken, true)
}

func (ts *FileTokenSource) slow(ctx context.Context) (*oauth2.Token, error) {
	if err := ts.checkDead(); err != nil {
		return nil, err
	}
	ts.h.mu.Lock()
	coolTill, unsaved := ts.h.coolTill, ts.h.unsaved != nil
	ts.h.mu.Unlock()
	if unsaved {
		return ts.refresh(ctx, "", false) // write the pending rotation first
	}
	ts.store.settleJournal()
	g, err := ts.store.grant(ts.host, false)
	if err != nil {
		ts.h.cache.Store(nil)
		return nil, err
	}
	now := ts.store.now()
	if !g.needsRefresh(now) {
		return ts.store.adopted(ts.h, g), nil
	}
	if now.Before(coolTill) {
		return g.Token(), nil // fail open until the cooldown ends
	}
	return ts.refresh(ctx, "", false)
}

// checkDead returns the reauth error while the grant is dead and the file
// has not changed to hold a different grant.
func (ts *FileTokenSource) checkDead() error {
	h := ts.h
	h.mu.Lock()
	d := h.dead
	h.mu.Unlock()
	if d == nil {
		return nil
	}
	fi, err := os.Stat(ts.store.path)
	if err == nil && d.file != nil && os.SameFile(fi, d.file) && fi.ModTime().Equal(d.file.ModTime()) && fi.Size() == d.file.Size() {
		return ts.reauthError(d.code)
	}
	g, gerr := ts.store.grant(ts.host, false)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dead != d {
		return nil // someone else settled it meanwhile
	}
	if gerr == nil && g.RefreshToken == d.refreshToken {
		h.dead = &deadGrant{refreshToken: d.refreshToken, file: fi, code: d.code}
		return ts.reauthError(d.code)
	}
	h.dead = nil
	return nil
}

func (ts *FileTokenSource) reauthError(code string) error {
	return &ReauthError{Path: ts.store.path, Host: ts.host, Code: code}
}

// refresh runs steps 2-5 of the protocol under both locks. With force it
// treats failedAccessToken as rejected regardless of its expiry.
//
// The work runs in its own goroutine: a caller whose context ends stops
// waiting, but an exchange already under way still completes and is
// persisted (and reported to OnTokenChange), so the rotation is not lost.
func (ts *FileTokenSource) refresh(ctx context.Context, failedAccessToken string, force bool) (*oauth2.Token, error) {
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, rotated, err := ts.refreshLocked(ctx, failedAccessToken, force)
		if err == nil && rotated && ts.onChange != nil {
			ts.onChange(tok)
		}
		done <- result{tok, err}
	}()
	select {
	case r := <-done:
		return r.tok, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth: token for host %q: %w", ts.host, ctx.Err())
	}
}

func (ts *FileTokenSource) refreshLocked(ctx context.Context, failedAccessToken string, force bool) (tok *oauth2.Token, rotated bool, err error) {
	s, h := ts.store, ts.h
	unlock, err := s.lock(ctx, h)
	if err != nil {
		return nil, false, err
	}
	defer unlock()

	g, err := s.grant(ts.host, true)
	if err != nil {
		h.cache.Store(nil)
		return nil, false, err
	}
	h.mu.Lock()
	dead, coolTill, unsaved := h.dead, h.coolTill, h.unsaved
	h.mu.Unlock()

	if unsaved != nil {
		if g, err = ts.saveUnsaved(g, unsaved); err != nil {
			return nil, false, err
		}
	}
	if dead != nil && dead.refreshToken == g.RefreshToken {
		return nil, false, ts.reauthError(dead.code)
	}
	now := s.now()
	if force {
		if g.AccessToken != failedAccessToken {
			return s.adopted(h, g), false, nil // a sibling already rotated
		}
	} else if !g.needsRefresh(now) {
		return s.adopted(h, g), false, nil
	}
	if now.Before(coolTill) {
		if force {
			return nil, false, fmt.Errorf("oauth: token refresh for host %q is paused after a failure; try again in %s", ts.host, coolTill.Sub(now).Round(time.Second))
		}
		return g.Token(), false, nil
	}

	fresh, err := ts.exchange(g)
	if err != nil {
		return ts.failed(g, err, force)
	}
	ng := grantFromToken(fresh, s.now(), g)
	if !strings.HasPrefix(ng.AccessToken, s.prefix) {
		s.logger.Warn().Str("path", s.path).Str("host", ts.host).Str("prefix", s.prefix).
			Msg("oauth: refreshed access token lacks the expected prefix; stored anyway so the rotation is not lost")
	}
	if jerr := s.writeJournal(ts.host, g.RefreshToken, ng); jerr != nil {
		s.logger.Warn().Str("path", s.path).Str("error", redact(jerr.Error(), g, ng)).Msg("oauth: could not write the rotation journal")
	}
	werr := s.updateLocked(func(root *object) (bool, error) { writeGrant(root, ts.host, ng); return true, nil })
	if werr == nil {
		s.clearJournal()
	} else {
		// The old refresh token is spent: keep the new grant in memory and
		// write it on the next call rather than lose the rotation.
		h.mu.Lock()
		h.unsaved = ng
		h.unsavedFrom = g.RefreshToken
		h.mu.Unlock()
		s.logger.Error().Str("path", s.path).Str("host", ts.host).Str("error", redact(werr.Error(), g, ng)).
			Msg("oauth: rotated token could not be written; kept in memory, will retry")
	}
	tok = s.adopted(h, ng)
	s.logger.Info().Str("path", s.path).Str("host", ts.host).Time("expires_at", ng.Expiry).Msg("oauth: token refreshed")
	return tok, true, nil
}

// saveUnsaved writes a rotation that an earlier write failed to store, when
// the file still holds its predecessor. It returns the grant to continue
// with: the unsaved one while it cannot be written, so the spent refresh
// token is never replayed.
func (ts *FileTokenSource) saveUnsaved(disk, unsaved *Grant) (*Grant, error) {
	s, h := ts.store, ts.h
	h.mu.Lock()
	from := h.unsavedFrom
	h.mu.Unlock()
	if disk.RefreshToken != from {
		h.mu.Lock()
		h.unsaved = nil
		h.mu.Unlock()
		return disk, nil // the file moved on without us
	}
	if err := s.updateLocked(func(root *object) (bool, error) { writeGrant(root, ts.host, unsaved); return true, nil }); err != nil {
		s.logger.Error().Str("path", s.path).Str("host", ts.host).Str("error", redact(err.Error(), disk, unsaved)).
			Msg("oauth: rotated token still cannot be written; serving it from memory")
		return unsaved, nil
	}
	h.mu.Lock()
	h.unsaved = nil
	h.mu.Unlock()
	s.logger.Info().Str("path", s.path).Str("host", ts.host).Msg("oauth: rotated token written after an earlier failure")
	return unsaved, nil
}

// failed handles a failed exchange: a rejected grant is adopted from disk or
// marked dead; anything else fails open and starts the cooldown.
func (ts *FileTokenSource) failed(g *Grant, err error, force bool) (*oauth2.Token, bool, error) {
	s, h := ts.store, ts.h
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && rejectionCodes[re.ErrorCode] {
		if g2, gerr := s.grant(ts.host, true); gerr == nil && g2.RefreshToken != g.RefreshToken {
			s.logger.Info().Str("path", s.path).Str("host", ts.host).Msg("oauth: lost a refresh race; adopting the token a sibling stored")
			return s.adopted(h, g2), false, nil
		}
		fi, _ := os.Stat(s.path)
		h.cache.Store(nil)
		h.mu.Lock()
		h.dead = &deadGrant{refreshToken: g.RefreshToken, file: fi, code: re.ErrorCode}
		h.mu.Unlock()
		s.logger.Warn().Str("path", s.path).Str("host", ts.host).Str("error", describe(err, g)).
			Msg("oauth: grant rejected by the authorization server; sign-in required")
		return nil, false, ts.reauthError(re.ErrorCode)
	}
	now := s.now()
	h.mu.Lock()
	h.coolTill = now.Add(s.cooldown)
	h.mu.Unlock()
	s.logger.Warn().Str("path", s.path).Str("host", ts.host).Str("error", describe(err, g)).
		Dur("retry_in", s.cooldown).Msg("oauth: token refresh failed; keeping the current token")
	if force {
		return nil, false, fmt.Errorf("oauth: token refresh for host %q failed: %s", ts.host, describe(err, g))
	}
	return g.Token(), false, nil
}

// exchange spends g's refresh token through x/oauth2 as a public client
// (client_id in the form, no secret). Each attempt has its own deadline
// within the overall budget; the caller's context is deliberately not used,
// so a cancelled request cannot lose a rotation the server already made.
//
// A second attempt is made only when the first provably did not reach the
// server (the request was never fully written) or the server answered 5xx or
// 429. A response lost after the request was sent is not retried: the server
// may have rotated, and retrying would replay the token.
func (ts *FileTokenSource) exchange(g *Grant) (*oauth2.Token, error) {
	s := ts.store
	cfg := oauth2.Config{
		ClientID: g.ClientID,
		Endpoint: oauth2.Endpoint{TokenURL: g.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
	}
	budget, cancel := context.WithTimeout(context.Background(), s.budget)
	defer cancel()
	budget = context.WithValue(budget, oauth2.HTTPClient, s.client)
	for attempt := 1; ; attempt++ {
		var sent atomic.Bool
		actx, acancel := context.WithTimeout(budget, s.attemptTimeout)
		actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				if i.Err == nil {
					sent.Store(true)
				}
			},
		})
		tok, err := cfg.TokenSource(actx, &oauth2.Token{RefreshToken: g.RefreshToken}).Token()
		acancel()
		if err == nil {
			return tok, nil
		}
		if attempt >= 2 || !retryable(err, sent.Load()) {
			return nil, err
		}
		s.logger.Debug().Str("path", s.path).Str("host", ts.host).Str("error", describe(err, g)).Msg("oauth: token refresh attempt failed; retrying")
		t := time.NewTimer(s.retryDelay)
		select {
		case <-t.C:
		case <-budget.Done():
			t.Stop()
			return nil, err
		}
	}
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

// describe words a refresh error for a log line or an error message without
// any token value: the server's body is never included.
func describe(err error, grants ...*Grant) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Sprintf("token endpoint answered %d %s", status, re.ErrorCode)
		}
		return fmt.Sprintf("token endpoint answered %d", status)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "token endpoint did not answer in time"
	}
	return redact(err.Error(), grants...)
}

// redact replaces every token of grants found in s.
func redact(s string, grants ...*Grant) string {
	for _, g := range grants {
		if g == nil {
			continue
		}
		for _, t := range []string{g.AccessToken, g.RefreshToken} {
			if t != "" {
				s = strings.ReplaceAll(s, t, "[redacted]")
			}
		}
	}
	return s
}
