package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/memconnect/memconnect/oauth"
)

var _ oauth.DueClaimer = (*Store)(nil)

// ClaimDue implements [oauth.DueClaimer] in one statement: rows locked by
// another instance's claim at this moment are skipped (FOR UPDATE SKIP
// LOCKED), and a claim marks its rows until hold has passed, so keepers
// on several instances share the due grants without refreshing one twice.
// The lease still guards every spend: a claim only spares the others the
// wait.
func (s *Store) ClaimDue(ctx context.Context, owner string, obtainedBefore, expiresBefore time.Time, hold time.Duration, limit int) ([]string, error) {
	var expBefore *time.Time
	if !expiresBefore.IsZero() {
		expBefore = &expiresBefore
	}
	rows, err := s.pool.Query(ctx, `
UPDATE memconnect_grants SET keep_owner = $1, keep_until = now() + $3 * interval '1 millisecond'
WHERE key IN (
	SELECT key FROM memconnect_grants
	WHERE access_token IS NOT NULL AND rejected IS NULL AND refresh_digest <> $5
		AND (obtained_at < $2 OR expires_at < $6)
		AND (keep_until IS NULL OR keep_until < now())
	ORDER BY obtained_at
	LIMIT $4
	FOR UPDATE SKIP LOCKED)
RETURNING key`, owner, obtainedBefore, hold.Milliseconds(), limit, digest(""), expBefore)
	if err != nil {
		return nil, fmt.Errorf("pgstore: claim the grants due: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: claim the grants due: %w", err)
	}
	return keys, nil
}
