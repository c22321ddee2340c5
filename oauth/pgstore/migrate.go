package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// describePool names pool's database for people: `PostgreSQL database
// "memconnect" on db.internal:5432`, without the user or the password.
func describePool(pool *pgxpool.Pool) string {
	cc := pool.Config().ConnConfig
	return fmt.Sprintf("PostgreSQL database %q on %s", cc.Database, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))))
}

// migrations are the schema, one step a version. A step is never changed
// once released; a new version appends one.
var migrations = []string{
	1: `
CREATE TABLE memconnect_grants (
	key            text PRIMARY KEY,
	fence          bigint NOT NULL DEFAULT 0,   -- grows with every lease
	lease_owner    text,
	lease_until    timestamptz,
	access_token   bytea,                       -- sealed (each sealed value names its key)
	refresh_token  bytea,                       -- sealed
	refresh_digest text,                        -- SHA-256 of the refresh token: compare-and-swap, verdict
	expires_at     timestamptz,
	client_id      text,
	token_endpoint text,
	scope          text,
	token_type     text,
	rejected       text,                        -- the OAuth error a server rejected refresh_digest's grant with
	journal        bytea,                       -- sealed raw answer of a rotation not yet committed
	journal_from   text,                        -- the refresh_digest it rotates from
	journal_type   text,                        -- its content type
	journal_at     timestamptz,
	updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE memconnect_flows (
	profile      text NOT NULL,
	provider     text NOT NULL,
	id           text NOT NULL,
	phase        text NOT NULL,                 -- pending, claimed (being completed), ended
	state_digest text,                          -- SHA-256 of the state parameter; NULL once claimed
	verifier     bytea,                         -- sealed PKCE verifier; NULL once claimed
	config       jsonb NOT NULL,                -- client, endpoints, scopes, redirect URI: no secret
	flow         jsonb NOT NULL,                -- the flow as every instance reports it: no secret
	expires_at   timestamptz NOT NULL,
	PRIMARY KEY (profile, provider)
);
CREATE INDEX memconnect_flows_expires ON memconnect_flows (expires_at);
`,
	2: `
ALTER TABLE memconnect_grants ADD COLUMN resource text;  -- RFC 8707 resource indicator, sent with each refresh
`,
	3: `
-- A spend of journal_from's refresh token in flight: begun under the lease
-- spend_fence, by spend_owner, at spend_at. Nobody spends that token again
-- while it may be at the server.
ALTER TABLE memconnect_grants ADD COLUMN spend_fence bigint;
ALTER TABLE memconnect_grants ADD COLUMN spend_owner text;
ALTER TABLE memconnect_grants ADD COLUMN spend_at timestamptz;
`,
	4: `
-- When the server issued the grant's tokens (for grants of earlier
-- versions estimated as an hour before expires_at), and which keeper
-- claimed the grant for a keep-alive refresh until when: one instance a
-- grant at a time.
ALTER TABLE memconnect_grants ADD COLUMN obtained_at timestamptz;
UPDATE memconnect_grants SET obtained_at = expires_at - interval '1 hour' WHERE expires_at IS NOT NULL;
ALTER TABLE memconnect_grants ADD COLUMN keep_owner text;
ALTER TABLE memconnect_grants ADD COLUMN keep_until timestamptz;
CREATE INDEX memconnect_grants_obtained ON memconnect_grants (obtained_at);
`,
	5: `
-- Everything else a connection has, for every instance: an API key (sealed
-- like the tokens) for a profile that connects with one instead of a grant;
-- how the refreshes went; the scopes a resource asked for; the last use.
ALTER TABLE memconnect_grants ADD COLUMN api_key bytea;
ALTER TABLE memconnect_grants ADD COLUMN last_refresh_at timestamptz;
ALTER TABLE memconnect_grants ADD COLUMN last_error_at timestamptz;
ALTER TABLE memconnect_grants ADD COLUMN last_error text;
ALTER TABLE memconnect_grants ADD COLUMN failing_since timestamptz;
ALTER TABLE memconnect_grants ADD COLUMN needs_scopes text[];
ALTER TABLE memconnect_grants ADD COLUMN used_at timestamptz;
CREATE INDEX memconnect_grants_used ON memconnect_grants (used_at);
-- The host's list of connections, by profile then provider (keys are
-- "<provider>/<profile>"), a page at a time, in byte order.
CREATE INDEX memconnect_grants_by_profile ON memconnect_grants
	((split_part(key, '/', 2) COLLATE "C"), (split_part(key, '/', 1) COLLATE "C"))
	WHERE access_token IS NOT NULL OR api_key IS NOT NULL;
-- The clients obtained from an authorization server (RFC 7591), and its
-- refusals of a client metadata document, per issuer and redirect URIs:
-- one for the whole deployment, whichever profile or instance asked.
CREATE TABLE memconnect_clients (
	issuer        text NOT NULL,
	redirect_uris text NOT NULL,               -- space-separated, as asked for; "" for the refusal row
	client        jsonb,                       -- the registration: a public client, no secret
	refused_at    timestamptz,                 -- on the refusal row: the issuer refused client metadata documents
	updated_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (issuer, redirect_uris)
);
`,
}

// SchemaVersion is the schema version this package needs.
const SchemaVersion = 5

// Migrate brings the schema to [SchemaVersion], one step a version, each in
// a transaction, and records the version. It never runs by itself: call it
// from a deployment step (examples/server -migrate), never on a request.
// Instances that migrate at once wait for each other.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	// One migrator at a time, across instances.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7151423)`); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS memconnect_schema (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	var have int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM memconnect_schema`).Scan(&have); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if have > SchemaVersion {
		return fmt.Errorf("pgstore: the database schema is version %d, newer than this program's %d", have, SchemaVersion)
	}
	for v := have + 1; v <= SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("pgstore: migrate to version %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memconnect_schema (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("pgstore: migrate to version %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// checkSchema reports a database whose schema is not [SchemaVersion], and
// one that cannot be reached or refuses us as such (naming the host, never
// the password), not as a schema to migrate.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var have int
	err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM memconnect_schema`).Scan(&have)
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "42P01" { // undefined_table: never migrated
		err = nil
	}
	if err != nil {
		return fmt.Errorf("pgstore: the %s cannot be used: %w", describePool(pool), err)
	}
	if have != SchemaVersion {
		return fmt.Errorf("pgstore: the database schema is version %d, this program needs %d: run the migration first (Migrate, or examples/server -migrate)", have, SchemaVersion)
	}
	return nil
}
