package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/memconnect/memconnect/connid"
)

// Rekey seals again, with the store's first key, every value sealed with
// another one, and reports how many values it sealed again. Once it
// returns, the other keys can be dropped from [Config.Keys]. Each row is
// re-sealed in its own transaction under the row's lock, with the same
// plaintext, so that instances go on refreshing and signing in meanwhile;
// running it twice, or from two places at once, is harmless.
func (s *Store) Rekey(ctx context.Context) (int, error) {
	prefix := append([]byte(s.seal.current), 0)
	stale := func(col string) string {
		return fmt.Sprintf("(%s IS NOT NULL AND substring(%s from 1 for %d) <> $1)", col, col, len(prefix))
	}
	rows, err := s.pool.Query(ctx, `SELECT key FROM memconnect_grants WHERE `+
		stale("access_token")+" OR "+stale("refresh_token")+" OR "+stale("journal")+" OR "+stale("api_key"), prefix)
	if err != nil {
		return 0, fmt.Errorf("pgstore: rekey: find the grants sealed with another key: %w", err)
	}
	grants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("pgstore: rekey: find the grants sealed with another key: %w", err)
	}
	total := 0
	for _, key := range grants {
		n, err := s.rekeyGrant(ctx, key)
		total += n
		if err != nil {
			return total, err
		}
	}
	rows, err = s.pool.Query(ctx, `SELECT profile, provider FROM memconnect_flows WHERE `+stale("verifier"), prefix)
	if err != nil {
		return total, fmt.Errorf("pgstore: rekey: find the pending flows sealed with another key: %w", err)
	}
	flows, err := pgx.CollectRows(rows, pgx.RowToStructByPos[connid.ID])
	if err != nil {
		return total, fmt.Errorf("pgstore: rekey: find the pending flows sealed with another key: %w", err)
	}
	for _, key := range flows {
		n, err := s.rekeyFlow(ctx, key)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// reseal returns sealed sealed again with the current key, and whether it
// had to be.
func (s *Store) reseal(sealed []byte, ad string) ([]byte, bool, error) {
	if len(sealed) == 0 || s.seal.sealedWithCurrent(sealed) {
		return sealed, false, nil
	}
	plain, err := s.seal.open(sealed, ad)
	if err != nil {
		return nil, false, err
	}
	return s.seal.seal(plain, ad), true, nil
}

func (s *Store) rekeyGrant(ctx context.Context, key string) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cols := []string{"access_token", "refresh_token", "journal", "api_key"}
		vals := make([][]byte, len(cols))
		err := tx.QueryRow(ctx, `SELECT access_token, refresh_token, journal, api_key FROM memconnect_grants WHERE key = $1 FOR UPDATE`, key).
			Scan(&vals[0], &vals[1], &vals[2], &vals[3])
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		for i, c := range cols {
			v, changed, err := s.reseal(vals[i], aad("grants", key, c))
			if err != nil {
				return err
			}
			if changed {
				vals[i] = v
				n++
			}
		}
		_, err = tx.Exec(ctx, `UPDATE memconnect_grants SET access_token = $2, refresh_token = $3, journal = $4, api_key = $5 WHERE key = $1`, key, vals[0], vals[1], vals[2], vals[3])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: rekey %s: %w", s.Describe(key), err)
	}
	return n, nil
}

func (s *Store) rekeyFlow(ctx context.Context, key connid.ID) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id string
		var verifier []byte
		err := tx.QueryRow(ctx, `SELECT id, verifier FROM memconnect_flows WHERE profile = $1 AND provider = $2 FOR UPDATE`, key.Profile, key.Provider).
			Scan(&id, &verifier)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // swept meanwhile
		}
		if err != nil {
			return err
		}
		v, changed, err := s.reseal(verifier, aad("flows", flowKey(key), id))
		if err != nil || !changed {
			return err
		}
		n++
		_, err = tx.Exec(ctx, `UPDATE memconnect_flows SET verifier = $3 WHERE profile = $1 AND provider = $2`, key.Profile, key.Provider, v)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: rekey the pending flow of %s/%s: %w", key.Profile, key.Provider, err)
	}
	return n, nil
}
