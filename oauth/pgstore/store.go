package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/tokenresp"
	"github.com/memconnect/memconnect/oauth"
)

// DefaultLeaseTTL is how long a lease on a grant lasts unless renewed:
// longer than a whole refresh (20 s), so that a holder that starts one
// within its lease ends it within its lease.
const DefaultLeaseTTL = 30 * time.Second

// Config configures a [Store].
type Config struct {
	// Keys seal the tokens and PKCE verifiers at rest with AES-256-GCM: the
	// first seals, every one opens, so that a key can be replaced by adding
	// the new one first. Required.
	Keys []Key
	// Owner names this instance in the leases it takes; "" means the host
	// name, the process id and a random suffix.
	Owner string
	// LeaseTTL is how long a lease lasts; zero means [DefaultLeaseTTL]. It
	// must be longer than a refresh.
	LeaseTTL time.Duration
	// Logger receives what the store repairs (a journalled rotation
	// finished). It never receives a secret. The zero value discards.
	Logger zerolog.Logger
}

// Store keeps grants and pending sign-in flows in PostgreSQL, so that any
// number of instances share them. It implements [oauth.GrantStore];
// [Store.Flows] is its [github.com/memconnect/memconnect/oauth/flow.Store].
//
// A Store is safe for concurrent use by multiple goroutines.
type Store struct {
	pool   *pgxpool.Pool
	seal   *sealer
	owner  string
	ttl    time.Duration
	logger zerolog.Logger
	listen listener // Watch's shared LISTEN connection
}

var _ oauth.GrantStore = (*Store)(nil)

// New returns the store over pool. It fails without a key, and when the
// schema is not the one this package needs ([Migrate] brings it there).
func New(ctx context.Context, pool *pgxpool.Pool, c Config) (*Store, error) {
	seal, err := newSealer(c.Keys)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, pool); err != nil {
		return nil, err
	}
	s := &Store{pool: pool, seal: seal, owner: c.Owner, ttl: c.LeaseTTL, logger: c.Logger}
	if s.ttl <= 0 {
		s.ttl = DefaultLeaseTTL
	}
	if s.owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		s.owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return s, nil
}

// Describe implements [oauth.GrantStore].
func (s *Store) Describe(key string) string { return fmt.Sprintf("%q in PostgreSQL", key) }

func digest(token string) string {
	if token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// aad binds a sealed value to its table, row and column.
func aad(table, key, column string) string { return table + "\x00" + key + "\x00" + column }

const grantColumns = `access_token, refresh_token, refresh_digest, expires_at, client_id, token_endpoint, scope, token_type, rejected, resource`

// Credentials implements [oauth.GrantStore]. A key without a grant is the
// zero Credentials.
func (s *Store) Credentials(ctx context.Context, key string) (oauth.Credentials, error) {
	return s.read(ctx, s.pool, key)
}

func (s *Store) read(ctx context.Context, q querier, key string) (oauth.Credentials, error) {
	var (
		access, refresh                                         []byte
		rdigest, clientID, endpoint, scope, tokenType, rejected *string
		resource                                                *string
		expires                                                 *time.Time
	)
	err := q.QueryRow(ctx, `SELECT `+grantColumns+` FROM memconnect_grants WHERE key = $1`, key).
		Scan(&access, &refresh, &rdigest, &expires, &clientID, &endpoint, &scope, &tokenType, &rejected, &resource)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && len(refresh) == 0) {
		return oauth.Credentials{}, nil
	}
	if err != nil {
		return oauth.Credentials{}, fmt.Errorf("pgstore: read %s: %w", s.Describe(key), err)
	}
	g := &oauth.Grant{ClientID: str(clientID), TokenEndpoint: str(endpoint), Scope: str(scope), TokenType: str(tokenType), Resource: str(resource)}
	if expires != nil {
		g.Expiry = *expires
	}
	if g.AccessToken, err = s.seal.open(access, aad("grants", key, "access_token")); err != nil {
		return oauth.Credentials{}, fmt.Errorf("%w (%s)", err, s.Describe(key))
	}
	if g.RefreshToken, err = s.seal.open(refresh, aad("grants", key, "refresh_token")); err != nil {
		return oauth.Credentials{}, fmt.Errorf("%w (%s)", err, s.Describe(key))
	}
	return oauth.Credentials{Grant: g, Rejected: str(rejected)}, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Lock implements [oauth.GrantStore]: it takes the lease on key's row (the
// row is made when there is none), waiting while another holder's lease
// runs, until ctx is done. Every lease gets a fence number larger than any
// before it; only the holder of the current fence can commit.
func (s *Store) Lock(ctx context.Context, key string) (oauth.LockedGrant, error) {
	wait := 5 * time.Millisecond
	for {
		var fence int64
		err := s.pool.QueryRow(ctx, `
INSERT INTO memconnect_grants AS g (key, fence, lease_owner, lease_until)
VALUES ($1, 1, $2, now() + $3::bigint * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE SET fence = g.fence + 1, lease_owner = $2, lease_until = now() + $3::bigint * interval '1 millisecond'
WHERE g.lease_until IS NULL OR g.lease_until < now()
RETURNING fence`, key, s.owner, s.ttl.Milliseconds()).Scan(&fence)
		if err == nil {
			l := &lease{s: s, key: key, fence: fence}
			if err := l.recoverJournal(ctx); err != nil {
				l.Unlock()
				return nil, err
			}
			return l, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("pgstore: lease %s: %w", s.Describe(key), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("pgstore: lease %s: another instance holds it: %w", s.Describe(key), ctx.Err())
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// lease is the [oauth.LockedGrant] of a [Store]: a row leased under a fence.
type lease struct {
	s     *Store
	key   string
	fence int64
	from  string // the refresh digest a journal started by Prepare rotates from
}

func (l *lease) Credentials() (oauth.Credentials, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.s.read(ctx, l.s.pool, l.key)
}

// Prepare renews the lease for a whole refresh, and fails, so that nothing
// is spent, when the lease is no longer this holder's: a holder that
// paused past its lease never spends a token another may be spending.
func (l *lease) Prepare(prev *oauth.Grant) (func(body []byte, contentType string) error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tag, err := l.s.pool.Exec(ctx, `
UPDATE memconnect_grants SET lease_until = now() + $4::bigint * interval '1 millisecond', journal = NULL, journal_from = NULL
WHERE key = $1 AND fence = $2 AND lease_owner = $3 AND lease_until > now()`, l.key, l.fence, l.s.owner, l.s.ttl.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("pgstore: renew the lease on %s: %w", l.s.Describe(l.key), err)
	}
	if tag.RowsAffected() != 1 {
		return nil, fmt.Errorf("pgstore: the lease on %s ended before the refresh; nothing was spent", l.s.Describe(l.key))
	}
	l.from = digest(prev.RefreshToken)
	return func(body []byte, contentType string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := l.s.pool.Exec(ctx, `
UPDATE memconnect_grants SET journal = $3, journal_from = $4, journal_type = $5, journal_at = now()
WHERE key = $1 AND fence = $2`, l.key, l.fence, l.s.seal.seal(string(body), aad("grants", l.key, "journal")), l.from, contentType)
		return err
	}, nil
}

// Commit implements [oauth.LockedGrant]: a compare-and-swap on the fence
// and on prev's refresh token.
func (l *lease) Commit(prev, next *oauth.Grant) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var prevDigest *string
	if prev != nil {
		d := digest(prev.RefreshToken)
		prevDigest = &d
	}
	var (
		access, refresh                             []byte
		rdigest, client, endpoint, scope, tokenType *string
		resource                                    *string
		expires                                     *time.Time
	)
	if next != nil {
		access = l.s.seal.seal(next.AccessToken, aad("grants", l.key, "access_token"))
		refresh = l.s.seal.seal(next.RefreshToken, aad("grants", l.key, "refresh_token"))
		d := digest(next.RefreshToken)
		rdigest, client, endpoint, scope, tokenType = &d, &next.ClientID, &next.TokenEndpoint, &next.Scope, &next.TokenType
		if next.Resource != "" {
			resource = &next.Resource
		}
		expires = &next.Expiry
	}
	tag, err := l.s.pool.Exec(ctx, `
UPDATE memconnect_grants SET access_token = $4, refresh_token = $5, refresh_digest = $6, expires_at = $7,
	client_id = $8, token_endpoint = $9, scope = $10, token_type = $11, resource = $12, rejected = NULL,
	journal = NULL, journal_from = NULL, journal_type = NULL, journal_at = NULL, updated_at = now()
WHERE key = $1 AND fence = $2 AND ($3::text IS NULL OR refresh_digest = $3)`,
		l.key, l.fence, prevDigest, access, refresh, rdigest, expires, client, endpoint, scope, tokenType, resource)
	if err != nil {
		return fmt.Errorf("pgstore: store %s: %w", l.s.Describe(l.key), err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%w: %s has another lease or another grant", oauth.ErrStaleGrant, l.s.Describe(l.key))
	}
	l.s.notify(ctx, l.key)
	return nil
}

// Reject implements [oauth.LockedGrant].
func (l *lease) Reject(prev *oauth.Grant, code string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tag, err := l.s.pool.Exec(ctx, `UPDATE memconnect_grants SET rejected = $4 WHERE key = $1 AND fence = $2 AND refresh_digest = $3`,
		l.key, l.fence, digest(prev.RefreshToken), code)
	if err == nil && tag.RowsAffected() == 1 {
		l.s.notify(ctx, l.key)
	}
	return err
}

// Unlock implements [oauth.LockedGrant]: it ends the lease, unless another
// holder took it meanwhile.
func (l *lease) Unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = l.s.pool.Exec(ctx, `UPDATE memconnect_grants SET lease_owner = NULL, lease_until = NULL WHERE key = $1 AND fence = $2`, l.key, l.fence)
}

// recoverJournal finishes a rotation a holder recorded and did not commit
// (it died, or its lease ended): when the row still holds the refresh
// token the answer rotated from, the answer's grant is committed under
// this lease. A journal of another grant is dropped.
func (l *lease) recoverJournal(ctx context.Context) error {
	var (
		sealed                         []byte
		from, ctype, rdigest           *string
		at                             *time.Time
		client, endpoint, scope, ttype *string
	)
	err := l.s.pool.QueryRow(ctx, `SELECT journal, journal_from, journal_type, journal_at, refresh_digest, client_id, token_endpoint, scope, token_type
FROM memconnect_grants WHERE key = $1`, l.key).Scan(&sealed, &from, &ctype, &at, &rdigest, &client, &endpoint, &scope, &ttype)
	if err != nil || len(sealed) == 0 {
		return nil
	}
	clear := func() error {
		_, err := l.s.pool.Exec(ctx, `UPDATE memconnect_grants SET journal = NULL, journal_from = NULL WHERE key = $1 AND fence = $2`, l.key, l.fence)
		return err
	}
	if str(from) == "" || str(from) != str(rdigest) || at == nil {
		return clear() // the grant moved on
	}
	body, err := l.s.seal.open(sealed, aad("grants", l.key, "journal"))
	if err != nil {
		return err
	}
	tok, _, err := tokenresp.Parse([]byte(body), str(ctype), *at)
	if err != nil {
		l.s.logger.Warn().Str("grant", l.s.Describe(l.key)).Str("error", err.Error()).Msg("pgstore: a journalled answer without a grant was dropped")
		return clear()
	}
	prev, err := l.s.read(ctx, l.s.pool, l.key)
	if err != nil || prev.Grant == nil {
		return err
	}
	next := prev.Grant.Rotated(tok, *at)
	if err := l.Commit(prev.Grant, next); err != nil {
		return err
	}
	l.s.logger.Info().Str("grant", l.s.Describe(l.key)).Msg("pgstore: finished a rotation another holder left in the journal")
	return nil
}
