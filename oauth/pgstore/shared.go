package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/memconnect/memconnect/oauth"
)

var (
	_ oauth.StateStore = (*Store)(nil)
	_ oauth.KeyStore   = (*Store)(nil)
)

// stateColumns are the columns of [oauth.SharedState], read with a grant.
const stateColumns = `last_refresh_at, last_error_at, last_error, failing_since, needs_scopes, used_at`

// sharedState is a row's [oauth.SharedState] as scanned.
type sharedState struct {
	lastRefresh, errorAt, failingSince, usedAt *time.Time
	lastError                                  *string
	needs                                      []string
}

func (st *sharedState) dest() []any {
	return []any{&st.lastRefresh, &st.errorAt, &st.lastError, &st.failingSince, &st.needs, &st.usedAt}
}

func (st *sharedState) state() *oauth.SharedState {
	s := &oauth.SharedState{NeedsScopes: st.needs}
	if st.lastRefresh != nil {
		s.Health.LastRefresh = *st.lastRefresh
	}
	if st.errorAt != nil {
		s.Health.LastError = &oauth.RefreshError{At: *st.errorAt, Message: str(st.lastError)}
	}
	if st.failingSince != nil {
		s.Health.FailingSince = *st.failingSince
	}
	if st.usedAt != nil {
		s.LastUsed = *st.usedAt
	}
	return s
}

// RecordHealth implements [oauth.StateStore]: how key's refreshes went,
// for every instance's status.
func (s *Store) RecordHealth(ctx context.Context, key string, h oauth.Health) error {
	var at, since *time.Time
	var msg *string
	if h.LastError != nil {
		at, msg = &h.LastError.At, &h.LastError.Message
	}
	if !h.FailingSince.IsZero() {
		since = &h.FailingSince
	}
	var last *time.Time
	if !h.LastRefresh.IsZero() {
		last = &h.LastRefresh
	}
	_, err := s.pool.Exec(ctx, `
UPDATE memconnect_grants SET last_refresh_at = greatest(last_refresh_at, $2), last_error_at = $3, last_error = $4, failing_since = $5
WHERE key = $1`, key, last, at, msg, since)
	if err != nil {
		return fmt.Errorf("pgstore: record the health of %s: %w", s.Describe(key), err)
	}
	return nil
}

// RecordNeeds implements [oauth.StateStore]: the scopes a resource asked
// key's grant for are added to those every instance recorded, up to
// [oauth.MaxNeededScopes] in all.
func (s *Store) RecordNeeds(ctx context.Context, key string, scopes []string) error {
	_, err := s.pool.Exec(ctx, `
UPDATE memconnect_grants g SET needs_scopes = u.scopes
FROM (SELECT array_agg(DISTINCT x ORDER BY x) AS scopes FROM (
	SELECT unnest(coalesce((SELECT needs_scopes FROM memconnect_grants WHERE key = $1), '{}') || $2::text[]) AS x) a) u
WHERE g.key = $1 AND cardinality(u.scopes) <= $3`, key, scopes, oauth.MaxNeededScopes)
	if err != nil {
		return fmt.Errorf("pgstore: record the scopes asked of %s: %w", s.Describe(key), err)
	}
	return nil
}

// RecordUse implements [oauth.StateStore]: a token of key was asked for
// at at (callers record at most once a minute).
func (s *Store) RecordUse(ctx context.Context, key string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE memconnect_grants SET used_at = $2 WHERE key = $1 AND (used_at IS NULL OR used_at < $2)`, key, at)
	if err != nil {
		return fmt.Errorf("pgstore: record the use of %s: %w", s.Describe(key), err)
	}
	return nil
}

// UsedSince returns the keys whose tokens were asked for at or after
// since, by any instance, with a grant to keep fresh.
func (s *Store) UsedSince(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT key FROM memconnect_grants WHERE used_at >= $1 AND access_token IS NOT NULL ORDER BY key`, since)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list the grants used recently: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list the grants used recently: %w", err)
	}
	return keys, nil
}

// SetAPIKey implements [oauth.KeyStore]: key connects with apiKey, sealed
// like the tokens, in place of any grant, which it returns for the caller
// to revoke. It waits for a refresh under way to end (the row's lease), so
// that no rotation lands on a connection that has moved to a key.
func (s *Store) SetAPIKey(ctx context.Context, key, apiKey string) (*oauth.Grant, error) {
	var replaced *oauth.Grant
	err := s.underLease(ctx, key, func(l *lease) error {
		c, err := l.Credentials(ctx)
		if err != nil {
			return err
		}
		replaced = c.Grant
		return l.exec(ctx, `
UPDATE memconnect_grants SET api_key = $3, access_token = NULL, refresh_token = NULL, refresh_digest = NULL, rejected = NULL,
	journal = NULL, journal_from = NULL, journal_type = NULL, journal_at = NULL, spend_fence = NULL, spend_owner = NULL, spend_at = NULL,
	last_refresh_at = NULL, last_error_at = NULL, last_error = NULL, failing_since = NULL, needs_scopes = NULL, updated_at = now()
WHERE key = $1 AND fence = $2`, s.seal.seal(apiKey, aad("grants", key, "api_key")))
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: store the API key of %s: %w", s.Describe(key), err)
	}
	return replaced, nil
}

// RemoveAPIKey implements [oauth.KeyStore]: it removes key's API key and
// reports whether there was one; a grant is left alone.
func (s *Store) RemoveAPIKey(ctx context.Context, key string) (bool, error) {
	removed := false
	err := s.underLease(ctx, key, func(l *lease) error {
		tag, err := s.pool.Exec(ctx, `UPDATE memconnect_grants SET api_key = NULL, updated_at = now() WHERE key = $1 AND fence = $2 AND api_key IS NOT NULL`, key, l.fence)
		removed = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pgstore: remove the API key of %s: %w", s.Describe(key), err)
	}
	if removed {
		s.notify(ctx, key)
	}
	return removed, nil
}

// underLease runs write under the lease of key's row.
func (s *Store) underLease(ctx context.Context, key string, write func(*lease) error) error {
	lg, err := s.Lock(ctx, key)
	if err != nil {
		return err
	}
	l := lg.(*lease)
	defer l.Unlock()
	return write(l)
}

// exec runs an UPDATE of the leased row whose first two arguments are the
// key and the fence, then arg; a row under another lease is ErrStaleGrant.
func (l *lease) exec(ctx context.Context, sql string, arg any) error {
	tag, err := l.s.pool.Exec(ctx, sql, l.key, l.fence, arg)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s has another lease", oauth.ErrStaleGrant, l.s.Describe(l.key))
	}
	l.s.notify(ctx, l.key)
	return nil
}

// Client returns the registration stored for issuer and redirectURIs
// (space-separated), as JSON; nil when none. With [Store.SaveClient],
// [Store.ForgetClient], [Store.DocumentRefused] and [Store.RefuseDocument]
// the Store keeps the clients a provider obtains at sign-in once for the
// whole deployment (it implements oauth.ClientStore).
func (s *Store) Client(ctx context.Context, issuer, redirectURIs string) ([]byte, error) {
	var client []byte
	err := s.pool.QueryRow(ctx, `SELECT client FROM memconnect_clients WHERE issuer = $1 AND redirect_uris = $2`, issuer, redirectURIs).Scan(&client)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: read the client of %s: %w", issuer, err)
	}
	return client, nil
}

// SaveClient stores reg (JSON) as the client for issuer and redirectURIs.
func (s *Store) SaveClient(ctx context.Context, issuer, redirectURIs string, reg []byte) error {
	_, err := s.pool.Exec(ctx, `
INSERT INTO memconnect_clients (issuer, redirect_uris, client) VALUES ($1, $2, $3)
ON CONFLICT (issuer, redirect_uris) DO UPDATE SET client = $3, updated_at = now()`, issuer, redirectURIs, reg)
	if err != nil {
		return fmt.Errorf("pgstore: store the client of %s: %w", issuer, err)
	}
	return nil
}

// ForgetClient forgets every registration of issuer whose client is
// clientID.
func (s *Store) ForgetClient(ctx context.Context, issuer, clientID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE memconnect_clients SET client = NULL, updated_at = now() WHERE issuer = $1 AND client->>'client_id' = $2`, issuer, clientID)
	if err != nil {
		return fmt.Errorf("pgstore: forget the client of %s: %w", issuer, err)
	}
	return nil
}

// refusalRow is the redirect_uris of the row that records an issuer's
// refusal of client metadata documents, whatever their redirect URIs.
const refusalRow = ""

// DocumentRefused reports whether issuer refused a client metadata
// document.
func (s *Store) DocumentRefused(ctx context.Context, issuer string) (bool, error) {
	var refused bool
	err := s.pool.QueryRow(ctx, `SELECT refused_at IS NOT NULL FROM memconnect_clients WHERE issuer = $1 AND redirect_uris = $2`, issuer, refusalRow).Scan(&refused)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pgstore: read the clients of %s: %w", issuer, err)
	}
	return refused, nil
}

// RefuseDocument records that issuer refused a client metadata document:
// the next sign-in registers a client instead.
func (s *Store) RefuseDocument(ctx context.Context, issuer string) error {
	_, err := s.pool.Exec(ctx, `
INSERT INTO memconnect_clients (issuer, redirect_uris, refused_at) VALUES ($1, $2, now())
ON CONFLICT (issuer, redirect_uris) DO UPDATE SET refused_at = now(), updated_at = now()`, issuer, refusalRow)
	if err != nil {
		return fmt.Errorf("pgstore: record the refusal of %s: %w", issuer, err)
	}
	return nil
}
