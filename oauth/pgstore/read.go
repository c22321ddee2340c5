package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/oauth"
)

const grantColumns = `access_token, refresh_token, refresh_digest, expires_at, client_id, token_endpoint, scope, token_type, rejected, resource, obtained_at, api_key`

// Credentials implements [oauth.GrantStore]: the grant, or the API key,
// with what every instance recorded of the connection
// ([oauth.Credentials.Shared]). A key with neither is the zero
// Credentials.
func (s *Store) Credentials(ctx context.Context, key string) (oauth.Credentials, error) {
	return retryRead(ctx, func() (oauth.Credentials, error) { return s.read(ctx, s.pool, key) })
}

func (s *Store) read(ctx context.Context, q querier, key string) (oauth.Credentials, error) {
	var row credRow
	err := q.QueryRow(ctx, `SELECT `+grantColumns+`, `+stateColumns+` FROM memconnect_grants WHERE key = $1`, key).Scan(row.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return oauth.Credentials{}, nil
	}
	if err != nil {
		return oauth.Credentials{}, fmt.Errorf("pgstore: read %s: %w", s.Describe(key), err)
	}
	return s.credentials(key, &row)
}

// credRow is a row's grantColumns and stateColumns as scanned.
type credRow struct {
	access, refresh, apiKey                                 []byte
	rdigest, clientID, endpoint, scope, tokenType, rejected *string
	resource                                                *string
	expires, obtained                                       *time.Time
	shared                                                  sharedState
}

func (r *credRow) dest() []any {
	return append([]any{&r.access, &r.refresh, &r.rdigest, &r.expires, &r.clientID, &r.endpoint, &r.scope, &r.tokenType, &r.rejected,
		&r.resource, &r.obtained, &r.apiKey}, r.shared.dest()...)
}

// credentials opens the sealed values of key's row r.
func (s *Store) credentials(key string, r *credRow) (oauth.Credentials, error) {
	if len(r.access) == 0 {
		if len(r.apiKey) == 0 {
			return oauth.Credentials{}, nil
		}
		k, err := s.seal.open(r.apiKey, aad("grants", key, "api_key"))
		if err != nil {
			return oauth.Credentials{}, fmt.Errorf("%w (%s)", err, s.Describe(key))
		}
		return oauth.Credentials{APIKey: k, APIKeySource: "store", Shared: r.shared.state()}, nil
	}
	g := &oauth.Grant{ClientID: str(r.clientID), TokenEndpoint: str(r.endpoint), Scope: str(r.scope), TokenType: str(r.tokenType), Resource: str(r.resource)}
	if r.expires != nil {
		g.Expiry = *r.expires
	}
	if r.obtained != nil {
		g.Obtained = *r.obtained
	}
	var err error
	if g.AccessToken, err = s.seal.open(r.access, aad("grants", key, "access_token")); err != nil {
		return oauth.Credentials{}, fmt.Errorf("%w (%s)", err, s.Describe(key))
	}
	if g.RefreshToken, err = s.seal.open(r.refresh, aad("grants", key, "refresh_token")); err != nil {
		return oauth.Credentials{}, fmt.Errorf("%w (%s)", err, s.Describe(key))
	}
	return oauth.Credentials{Grant: g, Rejected: str(r.rejected), Shared: r.shared.state()}, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// GrantKeys returns the keys that hold a grant or an API key, sorted,
// after the key after ("" for the first), at most limit: the host's list
// of connections (it implements oauth.GrantLister).
func (s *Store) GrantKeys(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT key FROM memconnect_grants WHERE (access_token IS NOT NULL OR api_key IS NOT NULL) AND key > $1 ORDER BY key LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list the grants: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list the grants: %w", err)
	}
	return keys, nil
}

// ConnectionPage calls each with the key and credentials of up to limit
// keys that hold a grant or an API key, in order of profile then provider
// (keys are "<provider>/<profile>"; byte order), after after
// ("profile/provider"; "" for the first), only of profile and of prov when
// they are not "": one statement, on an index, whatever the position of
// the page (it implements oauth.ConnectionPager).
func (s *Store) ConnectionPage(ctx context.Context, profile, prov, after string, limit int, each func(key string, c oauth.Credentials)) error {
	from, _ := connid.ParseCursor(after) // "" (or malformed): from the first
	rows, err := retryRead(ctx, func() (pgx.Rows, error) {
		return s.pool.Query(ctx, `
SELECT key, `+grantColumns+`, `+stateColumns+` FROM memconnect_grants
WHERE (access_token IS NOT NULL OR api_key IS NOT NULL)
	AND ($1 = '' OR split_part(key, '/', 2) COLLATE "C" = $1)
	AND ($2 = '' OR split_part(key, '/', 1) COLLATE "C" = $2)
	AND (split_part(key, '/', 2) COLLATE "C", split_part(key, '/', 1) COLLATE "C") > ($3 COLLATE "C", $4 COLLATE "C")
ORDER BY split_part(key, '/', 2) COLLATE "C", split_part(key, '/', 1) COLLATE "C"
LIMIT $5`, profile, prov, from.Profile, from.Provider, limit)
	})
	if err != nil {
		return fmt.Errorf("pgstore: list the connections: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var row credRow
		if err := rows.Scan(append([]any{&key}, row.dest()...)...); err != nil {
			return fmt.Errorf("pgstore: list the connections: %w", err)
		}
		c, err := s.credentials(key, &row)
		if err != nil {
			return err
		}
		each(key, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pgstore: list the connections: %w", err)
	}
	return nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
