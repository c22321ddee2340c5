package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// SeedGrants writes a grant for each key in one COPY, its tokens sealed
// as a commit seals them: a benchmark's thousands of grants in seconds.
func SeedGrants(ctx context.Context, s *Store, keys []string, expires time.Time) error {
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rt := "rt-seed-" + k
		rows[i] = []any{k, s.seal.seal("at-seed-"+k, aad("grants", k, "access_token")), s.seal.seal(rt, aad("grants", k, "refresh_token")),
			digest(rt), expires, "client", "http://127.0.0.1:1/token", "write", "Bearer", expires.Add(-time.Hour)}
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"memconnect_grants"},
		[]string{"key", "access_token", "refresh_token", "refresh_digest", "expires_at", "client_id", "token_endpoint", "scope", "token_type", "obtained_at"},
		pgx.CopyFromRows(rows))
	return err
}
