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

// The store's own bounds on one statement under a lease: a ceiling within
// the caller's context, which may end sooner. A statement after a spend
// gets a context without the caller's cancellation (package oauth passes
// one), so its bound is this alone.
const (
	readTimeout   = 10 * time.Second
	writeTimeout  = 5 * time.Second
	commitTimeout = 10 * time.Second
)

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
	// SpillDir is a directory on this machine where a token endpoint's
	// answer is kept, sealed with Keys, when the database cannot take it
	// (it went away while the answer was in flight), until a holder of
	// the grant commits it: this process, or the next one on this machine
	// that uses the grant. A refresh is made only when the directory takes
	// a new file. Processes of one machine that share grants should share
	// it. Required.
	SpillDir string
	// SpendWait is how long a holder that finds another holder's spend of
	// the refresh token unfinished waits for its outcome before it keeps
	// the current token; zero means the smaller of 20 s and half LeaseTTL.
	SpendWait time.Duration
	// AbandonAfter is how old an unfinished spend must be before a holder
	// takes its holder for gone; zero means [DefaultAbandonAfter]. The
	// token is then never spent again (the server may have rotated it, and
	// a replay revokes the grant): Prepare fails with
	// [oauth.ErrRotationAbandoned] and the grant needs a new sign-in. A
	// holder paused longer than this that then wakes with its answer still
	// commits it, and the grant lives on.
	AbandonAfter time.Duration
}

// DefaultAbandonAfter is [Config.AbandonAfter]'s default.
const DefaultAbandonAfter = 10 * time.Minute

// ErrNoSpillDir is returned by [New] without [Config.SpillDir].
var ErrNoSpillDir = errors.New("pgstore: Config.SpillDir is required: a local directory where an answer the database cannot take is kept")

// Store keeps grants and pending sign-in flows in PostgreSQL, so that any
// number of instances share them. It implements [oauth.GrantStore];
// [Store.Flows] is its [github.com/memconnect/memconnect/oauth/flow.Store].
//
// A Store is safe for concurrent use by multiple goroutines.
type Store struct {
	pool      *pgxpool.Pool
	seal      *sealer
	owner     string
	ttl       time.Duration
	spendWait time.Duration
	abandon   time.Duration
	spill     *spill
	logger    zerolog.Logger
	listen    listener // Watch's shared LISTEN connection
}

var _ oauth.GrantStore = (*Store)(nil)

// New returns the store over pool. It fails without a key or a spill
// directory, and when the schema is not the one this package needs
// ([Migrate] brings it there).
func New(ctx context.Context, pool *pgxpool.Pool, c Config) (*Store, error) {
	seal, err := newSealer(c.Keys)
	if err != nil {
		return nil, err
	}
	if c.SpillDir == "" {
		return nil, ErrNoSpillDir
	}
	if err := checkSchema(ctx, pool); err != nil {
		return nil, err
	}
	s := &Store{pool: pool, seal: seal, owner: c.Owner, ttl: c.LeaseTTL, spendWait: c.SpendWait, abandon: c.AbandonAfter,
		spill: &spill{dir: c.SpillDir, seal: seal}, logger: c.Logger}
	if s.ttl <= 0 {
		s.ttl = DefaultLeaseTTL
	}
	if s.spendWait <= 0 {
		s.spendWait = min(20*time.Second, s.ttl/2)
	}
	if s.abandon <= 0 {
		s.abandon = DefaultAbandonAfter
	}
	if s.owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		s.owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return s, nil
}

// String names the database for people: `PostgreSQL database "memconnect"
// on db.internal:5432`. It never holds the user name or the password.
func (s *Store) String() string { return describePool(s.pool) }

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

// Lock implements [oauth.GrantStore]: it takes the lease on key's row (the
// row is made when there is none), waiting while another holder's lease
// runs, until ctx is done. Every lease gets a fence number larger than any
// before it; only the holder of the current fence can commit. The one
// statement that takes the lease also reads the row, which the lease's
// first Credentials returns.
func (s *Store) Lock(ctx context.Context, key string) (oauth.LockedGrant, error) {
	wait := 5 * time.Millisecond
	for {
		var (
			fence   int64
			journal bool
			row     credRow
		)
		err := s.pool.QueryRow(ctx, `
INSERT INTO memconnect_grants AS g (key, fence, lease_owner, lease_until)
VALUES ($1, 1, $2, now() + $3::bigint * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE SET fence = g.fence + 1, lease_owner = $2, lease_until = now() + $3::bigint * interval '1 millisecond'
WHERE g.lease_until IS NULL OR g.lease_until < now()
RETURNING fence, journal IS NOT NULL, `+grantColumns+`, `+stateColumns, key, s.owner, s.ttl.Milliseconds()).
			Scan(append([]any{&fence, &journal}, row.dest()...)...)
		if err == nil {
			l := &lease{s: s, key: key, fence: fence, row: &row}
			if journal {
				l.row = nil
				if err := l.recoverJournal(ctx); err != nil {
					l.Unlock()
					return nil, err
				}
			}
			if err := l.recoverSpill(ctx); err != nil {
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
	// row is the row as the lease found it, for the first Credentials;
	// nil once read, or written.
	row *credRow
	// released: a commit ended the lease; Unlock has nothing to do.
	released bool
}

// Credentials implements [oauth.LockedGrant]: the row as the lease found
// it the first time (no second statement), read anew after.
func (l *lease) Credentials(ctx context.Context) (oauth.Credentials, error) {
	if r := l.row; r != nil {
		l.row = nil
		return l.s.credentials(l.key, r)
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return l.s.read(ctx, l.s.pool, l.key)
}

// Prepare renews the lease for a whole refresh and records, under the
// fence, that prev's refresh token is being spent; it fails, so that
// nothing is spent, when the lease is no longer this holder's, when the
// spill directory does not take a file, or, with [oauth.ErrRotationInFlight],
// when another holder's spend of the same token has not finished (it may
// be at the server). It waits up to SpendWait for that spend to end, and
// commits an answer that holder recorded meanwhile.
//
// The returned record keeps the answer in the row, or, when the database
// cannot take it, in the spill directory, whatever became of ctx.
func (l *lease) Prepare(ctx context.Context, prev *oauth.Grant) (func(body []byte, contentType string) error, error) {
	if err := l.s.spill.check(); err != nil {
		return nil, err
	}
	from := digest(prev.RefreshToken)
	deadline := time.Now().Add(l.s.spendWait)
	wait := 20 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, writeTimeout)
		tag, err := l.s.pool.Exec(sctx, `
UPDATE memconnect_grants SET lease_until = now() + $4::bigint * interval '1 millisecond',
	journal = NULL, journal_type = NULL, journal_at = NULL,
	journal_from = $5, spend_fence = $2, spend_owner = $3, spend_at = now()
WHERE key = $1 AND fence = $2 AND lease_owner = $3 AND lease_until > now() AND refresh_digest = $5
	AND (journal_from IS DISTINCT FROM $5 OR spend_fence IS NULL OR spend_fence = $2)`,
			l.key, l.fence, l.s.owner, l.s.ttl.Milliseconds(), from)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("pgstore: renew the lease on %s: %w", l.s.Describe(l.key), err)
		}
		if tag.RowsAffected() == 1 {
			cancel()
			l.from = from
			rctx := context.WithoutCancel(ctx)
			return func(body []byte, contentType string) error { return l.record(rctx, body, contentType) }, nil
		}
		st, err := l.spendState(sctx)
		if err == nil && st.answered && st.journalFrom == from {
			// The other holder's answer arrived: commit it for them.
			err = l.recoverJournal(sctx)
			if err == nil {
				err = fmt.Errorf("%w: another holder's answer was committed", oauth.ErrRotationInFlight)
			}
		}
		cancel()
		inFlight := st.journalFrom == from
		switch {
		case err != nil:
			return nil, err
		case st.refreshDigest != from:
			return nil, fmt.Errorf("%w: %s holds another grant by now", oauth.ErrRotationInFlight, l.s.Describe(l.key))
		case inFlight && st.abandoned:
			return nil, fmt.Errorf("%w: %s began the refresh of %s at %s and has not recorded an answer in %s",
				oauth.ErrRotationAbandoned, st.owner, l.s.Describe(l.key), st.at.UTC().Format(time.RFC3339), l.s.abandon)
		case inFlight && (!st.leased || time.Now().After(deadline)):
			return nil, fmt.Errorf("%w: the refresh of %s that %s began at %s has not finished, and the token is not spent again while it may be at the server",
				oauth.ErrRotationInFlight, l.s.Describe(l.key), st.owner, st.at.UTC().Format(time.RFC3339))
		case !st.leased:
			return nil, fmt.Errorf("pgstore: the lease on %s ended before the refresh; nothing was spent", l.s.Describe(l.key))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("pgstore: wait for another holder's refresh of %s: %w", l.s.Describe(l.key), ctx.Err())
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// spendState is what a Prepare that could not record its spend found.
type spendState struct {
	leased        bool // the lease is still this holder's
	refreshDigest string
	journalFrom   string
	answered      bool // a journal answer is recorded
	owner         string
	at            time.Time
	abandoned     bool // the spend began more than AbandonAfter ago
}

func (l *lease) spendState(ctx context.Context) (spendState, error) {
	var (
		st                   spendState
		rdigest, from, owner *string
		at                   *time.Time
	)
	err := l.s.pool.QueryRow(ctx, `
SELECT fence = $2 AND lease_owner = $3 AND lease_until > now(), refresh_digest, journal_from, journal IS NOT NULL, spend_owner, spend_at,
	COALESCE(spend_at < now() - $4::bigint * interval '1 millisecond', false)
FROM memconnect_grants WHERE key = $1`, l.key, l.fence, l.s.owner, l.s.abandon.Milliseconds()).Scan(&st.leased, &rdigest, &from, &st.answered, &owner, &at, &st.abandoned)
	if err != nil {
		return st, fmt.Errorf("pgstore: read the lease on %s: %w", l.s.Describe(l.key), err)
	}
	st.refreshDigest, st.journalFrom, st.owner = str(rdigest), str(from), str(owner)
	if at != nil {
		st.at = *at
	}
	return st, nil
}

// record keeps the token endpoint's answer of this holder's spend: in the
// row, bound to the spend; when the database does not take it, in the
// spill directory.
func (l *lease) record(ctx context.Context, body []byte, contentType string) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	tag, err := l.s.pool.Exec(ctx, `
UPDATE memconnect_grants SET journal = $3, journal_type = $5, journal_at = now()
WHERE key = $1 AND spend_fence = $2 AND journal_from = $4 AND refresh_digest = $4`,
		l.key, l.fence, l.s.seal.seal(string(body), aad("grants", l.key, "journal")), l.from, contentType)
	if err == nil && tag.RowsAffected() == 1 {
		return nil
	}
	serr := l.s.spill.put(spilled{Key: l.key, From: l.from, Body: string(body), ContentType: contentType, Received: time.Now()})
	if serr != nil {
		return errors.Join(err, serr)
	}
	l.s.logger.Warn().Str("grant", l.s.Describe(l.key)).Str("dir", l.s.spill.dir).
		Msg("pgstore: the database did not take the token endpoint's answer; kept in the spill directory")
	return nil
}

// Commit implements [oauth.LockedGrant]: a compare-and-swap on the fence
// and on prev's refresh token.
// The statement also tells the other instances (NOTIFY).
func (l *lease) Commit(ctx context.Context, prev, next *oauth.Grant) error {
	return l.commit(ctx, prev, next, false)
}

// CommitAndUnlock implements [oauth.FinalCommitter]: Commit that also ends
// the current lease, in the same statement.
func (l *lease) CommitAndUnlock(ctx context.Context, prev, next *oauth.Grant) error {
	return l.commit(ctx, prev, next, true)
}

var _ oauth.FinalCommitter = (*lease)(nil)

// commit is Commit, and with release also ends the lease when it is still
// this holder's.
func (l *lease) commit(ctx context.Context, prev, next *oauth.Grant, release bool) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
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
		expires, obtained                           *time.Time
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
		ob := next.ObtainedOrEstimate()
		obtained = &ob
	}
	// Under this lease; or, for the holder whose spend of prev's token is
	// recorded, after its lease ended (it paused at the server): the
	// compare-and-swap on the refresh token is what keeps a rotation from
	// being lost or applied twice.
	var n int
	err := l.s.pool.QueryRow(ctx, `
WITH u AS (
UPDATE memconnect_grants SET access_token = $4, refresh_token = $5, refresh_digest = $6, expires_at = $7,
	client_id = $8, token_endpoint = $9, scope = $10, token_type = $11, resource = $12, obtained_at = $13, rejected = NULL,
	journal = NULL, journal_from = NULL, journal_type = NULL, journal_at = NULL,
	spend_fence = NULL, spend_owner = NULL, spend_at = NULL, updated_at = now(),
	keep_owner = NULL, keep_until = NULL,
	lease_owner = CASE WHEN $14 AND fence = $2 THEN NULL ELSE lease_owner END,
	lease_until = CASE WHEN $14 AND fence = $2 THEN NULL ELSE lease_until END,
	api_key = CASE WHEN $4::bytea IS NULL THEN api_key END,
	last_refresh_at = CASE WHEN $3::text IS NULL THEN NULL ELSE now() END,
	last_error_at = CASE WHEN $3::text IS NULL THEN NULL ELSE last_error_at END,
	last_error = CASE WHEN $3::text IS NULL THEN NULL ELSE last_error END,
	failing_since = CASE WHEN $3::text IS NULL THEN NULL ELSE failing_since END,
	needs_scopes = CASE WHEN $3::text IS NULL THEN NULL ELSE needs_scopes END
WHERE key = $1 AND ($3::text IS NULL AND fence = $2
	OR refresh_digest = $3 AND (fence = $2 OR spend_fence = $2 AND journal_from = $3))
RETURNING key)
SELECT count(*) FROM u, LATERAL (SELECT pg_notify($15, u.key)) n`,
		l.key, l.fence, prevDigest, access, refresh, rdigest, expires, client, endpoint, scope, tokenType, resource, obtained,
		release, channel).Scan(&n)
	if err != nil {
		return fmt.Errorf("pgstore: store %s: %w", l.s.Describe(l.key), err)
	}
	if n != 1 {
		return fmt.Errorf("%w: %s has another lease or another grant", oauth.ErrStaleGrant, l.s.Describe(l.key))
	}
	l.row = nil
	l.released = l.released || release
	if prevDigest != nil {
		l.s.spill.forget(l.key, *prevDigest)
	}
	return nil
}

// Abandon implements [oauth.SpendAbandoner]: it withdraws this holder's
// record of a spend that did not happen (the server answered with an error,
// or was never reached), so that the next holder need not wait for it.
func (l *lease) Abandon(ctx context.Context, prev *oauth.Grant) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	_, err := l.s.pool.Exec(ctx, `
UPDATE memconnect_grants SET journal_from = NULL, spend_fence = NULL, spend_owner = NULL, spend_at = NULL
WHERE key = $1 AND spend_fence = $2 AND journal_from = $3 AND journal IS NULL`, l.key, l.fence, digest(prev.RefreshToken))
	return err
}

var _ oauth.SpendAbandoner = (*lease)(nil)

// Reject implements [oauth.LockedGrant].
func (l *lease) Reject(ctx context.Context, prev *oauth.Grant, code string) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
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
	if l.released {
		return // the commit ended it
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
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
		_, err := l.s.pool.Exec(ctx, `UPDATE memconnect_grants SET journal = NULL, journal_from = NULL, spend_fence = NULL, spend_owner = NULL, spend_at = NULL
WHERE key = $1 AND fence = $2`, l.key, l.fence)
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
	if err := l.Commit(ctx, prev.Grant, next); err != nil {
		return err
	}
	l.s.logger.Info().Str("grant", l.s.Describe(l.key)).Msg("pgstore: finished a rotation another holder left in the journal")
	return nil
}

// recoverSpill commits the answers this machine kept for the grant while
// the database was away, in the order they rotate it, and removes them;
// one that no longer applies (the grant moved on) is removed too.
func (l *lease) recoverSpill(ctx context.Context) error {
	kept, err := l.s.spill.list(l.key)
	if err != nil || len(kept) == 0 {
		return err
	}
	for progress := true; progress; {
		progress = false
		cur, err := l.s.read(ctx, l.s.pool, l.key)
		if err != nil {
			return err
		}
		if cur.Grant == nil {
			break
		}
		d := digest(cur.Grant.RefreshToken)
		for i, e := range kept {
			if e.From != d {
				continue
			}
			tok, _, err := tokenresp.Parse([]byte(e.Body), e.ContentType, e.Received)
			if err != nil {
				l.s.logger.Warn().Str("grant", l.s.Describe(l.key)).Str("error", err.Error()).Msg("pgstore: a kept answer without a grant was dropped")
			} else if err := l.Commit(ctx, cur.Grant, cur.Grant.Rotated(tok, e.Received)); err != nil {
				return err
			} else {
				l.s.logger.Info().Str("grant", l.s.Describe(l.key)).Msg("pgstore: stored a rotation this machine kept while the database was away")
			}
			l.s.spill.remove(e)
			kept = append(kept[:i], kept[i+1:]...)
			progress = true
			break
		}
	}
	for _, e := range kept {
		l.s.spill.remove(e) // the grant moved on without it
	}
	return nil
}
