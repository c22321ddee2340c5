package pgstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/oauth/pgstore"
)

func testPool(t *testing.T, bare bool) *pgxpool.Pool { return fixture.Postgres(t, bare) }

func testKey(id string) pgstore.Key { return fixture.PostgresKey(id) }

func newStore(t *testing.T, pool *pgxpool.Pool, c pgstore.Config) *pgstore.Store {
	t.Helper()
	if c.Keys == nil {
		c.Keys = []pgstore.Key{testKey("k1")}
	}
	if c.SpillDir == "" {
		c.SpillDir = t.TempDir()
	}
	s, err := pgstore.New(t.Context(), pool, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMigrateAndKeys(t *testing.T) {
	pool := testPool(t, true)
	if _, err := pgstore.New(t.Context(), pool, pgstore.Config{Keys: []pgstore.Key{testKey("k1")}, SpillDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "migration") {
		t.Fatalf("New before the migration: %v, want an error saying to migrate", err)
	}
	for range 2 { // idempotent
		if err := pgstore.Migrate(t.Context(), pool); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pgstore.New(t.Context(), pool, pgstore.Config{Keys: []pgstore.Key{testKey("k1")}}); !errors.Is(err, pgstore.ErrNoSpillDir) {
		t.Fatalf("New without a spill directory: %v, want ErrNoSpillDir", err)
	}
	if _, err := pgstore.New(t.Context(), pool, pgstore.Config{}); !errors.Is(err, pgstore.ErrNoKey) {
		t.Fatalf("New without a key: %v, want ErrNoKey", err)
	}
	if _, err := pgstore.New(t.Context(), pool, pgstore.Config{Keys: []pgstore.Key{testKey("k1"), testKey("k1")}}); err == nil {
		t.Error("New accepted two keys with one ID")
	}
	k := testKey("k1")
	if s := fmt.Sprintf("%v %+v %s", k, k, k); strings.Contains(s, string(k.Secret[:8])) {
		t.Errorf("a key prints its secret: %s", s)
	}
}

// install stores a grant of srv as key's, through the engine as a sign-in
// would.
func install(t *testing.T, gs *oauth.Grants, srv *honchofake.Server, key string, expiry time.Time) *oauth2.Token {
	t.Helper()
	tok := srv.IssueGrant("write")
	tok.ExpiresIn = int64(time.Until(expiry) / time.Second)
	// Tokens an hour old: near its end, a token is due for every holder.
	if _, err := gs.Install(t.Context(), key, tok, oauth.Grant{ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL(), TokenType: "Bearer", Obtained: expiry.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// Tokens are sealed at rest: no column holds one, a value moved to another
// row does not open, and a second key reads what the first sealed.
func TestSealedAtRest(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	s := newStore(t, pool, pgstore.Config{})
	tok := install(t, oauth.NewGrants(s, oauth.WithHTTPClient(srv.Client())), srv, "hermes", time.Now().Add(time.Hour))
	rows, err := pool.Query(t.Context(), `SELECT * FROM memconnect_grants`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			b := []byte(fmt.Sprint(v))
			if bb, ok := v.([]byte); ok {
				b = bb
			}
			if bytes.Contains(b, []byte(tok.AccessToken)) || bytes.Contains(b, []byte(tok.RefreshToken)) {
				t.Fatal("a column holds a token in the clear")
			}
		}
	}
	rows.Close()
	// Another store with a new key first and the old one second reads it.
	s2 := newStore(t, pool, pgstore.Config{Keys: []pgstore.Key{testKey("k2"), testKey("k1")}})
	c, err := s2.Credentials(t.Context(), "hermes")
	if err != nil || c.Grant == nil || c.Grant.RefreshToken != tok.RefreshToken {
		t.Fatalf("read with the old key second: %+v, %v", c, err)
	}
	// Without the old key it does not open, and the error holds no token.
	s3 := newStore(t, pool, pgstore.Config{Keys: []pgstore.Key{testKey("k3")}})
	if _, err := s3.Credentials(t.Context(), "hermes"); err == nil || strings.Contains(err.Error(), tok.RefreshToken) {
		t.Fatalf("read without the key: %v", err)
	}
	// The store names its database for people, never the credentials.
	if got := s.String(); !strings.HasPrefix(got, "PostgreSQL database ") || strings.Contains(got, "@") || strings.Contains(got, "password") {
		t.Errorf("String() = %q", got)
	}
	// A key with the right ID and other bytes says so, and no more.
	wrong := testKey("k1")
	wrong.Secret[0] ^= 1
	s4 := newStore(t, pool, pgstore.Config{Keys: []pgstore.Key{wrong}})
	if _, err := s4.Credentials(t.Context(), "hermes"); err == nil || !strings.Contains(err.Error(), "this key does not open what key k1 sealed: is it the right key?") {
		t.Errorf("read with a wrong key named k1: %v", err)
	}
	// A sealed value copied to another row does not open.
	if _, err := pool.Exec(t.Context(), `INSERT INTO memconnect_grants (key, access_token, refresh_token, refresh_digest, client_id, token_endpoint)
SELECT 'copy', access_token, refresh_token, refresh_digest, client_id, token_endpoint FROM memconnect_grants WHERE key = 'hermes'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Credentials(t.Context(), "copy"); err == nil {
		t.Error("a value sealed for one row opened in another")
	}
}

// Three instances with eight goroutines each ask for a token of a grant
// that needs a refresh: exactly one refresh, which every caller adopts, and
// the server sees no replay.
func TestFencedRefreshAcrossInstances(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	first := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "i0"}), oauth.WithHTTPClient(srv.Client()))
	install(t, first, srv, "hermes", time.Now().Add(time.Minute)) // inside the refresh window
	for round := range 3 {
		var wg sync.WaitGroup
		var errs atomic.Int32
		tokens := sync.Map{}
		for i := range 3 {
			gs := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: fmt.Sprintf("i%d-%d", round, i)}), oauth.WithHTTPClient(srv.Client()))
			for range 8 {
				wg.Go(func() {
					tok, err := gs.TokenSource("hermes").Token()
					if err != nil {
						t.Error(err)
						errs.Add(1)
						return
					}
					tokens.Store(tok.AccessToken, true)
				})
			}
		}
		wg.Wait()
		n := 0
		tokens.Range(func(any, any) bool { n++; return true })
		if errs.Load() != 0 || n != 1 {
			t.Fatalf("round %d: %d errors, %d distinct tokens; want one token for all", round, errs.Load(), n)
		}
		if st := srv.Stats(); st.Refreshes != round+1 || st.Replays != 0 {
			t.Fatalf("round %d: %+v; want %d refreshes and no replay", round, st, round+1)
		}
		// Expire the stored token again for the next round.
		if _, err := pool.Exec(t.Context(), `UPDATE memconnect_grants SET expires_at = now() + interval '1 minute', obtained_at = now() - interval '59 minutes'`); err != nil {
			t.Fatal(err)
		}
	}
}

// A holder that paused past its lease: another instance leased the grant
// meanwhile, so the first spends nothing and cannot commit; a holder that
// crashed holding a lease blocks the others only until the lease ends.
func TestStaleAndCrashedLeaseHolders(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	short := pgstore.Config{Owner: "a", LeaseTTL: 300 * time.Millisecond}
	a := newStore(t, pool, short)
	install(t, oauth.NewGrants(a), srv, "hermes", time.Now().Add(time.Hour))

	stale, err := a.Lock(t.Context(), "hermes")
	if err != nil {
		t.Fatal(err)
	}
	c, err := stale.Credentials(t.Context())
	if err != nil || c.Grant == nil {
		t.Fatal(c, err)
	}
	// The holder pauses; its lease ends; b takes it (and "crashes" holding it).
	b := newStore(t, pool, pgstore.Config{Owner: "b", LeaseTTL: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	crashed, err := b.Lock(ctx, "hermes")
	if err != nil {
		t.Fatalf("b could not take the lease after it ended: %v", err)
	}
	_ = crashed // never unlocked: b crashed
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("b took a lease a had %v into it", waited)
	}
	if _, err := stale.Prepare(t.Context(), c.Grant); err == nil {
		t.Fatal("a stale holder may spend the refresh token")
	}
	next := *c.Grant
	next.RefreshToken, next.AccessToken = "hch-rt-stale", "hch-at-stale"
	if err := stale.Commit(t.Context(), c.Grant, &next); !errors.Is(err, oauth.ErrStaleGrant) {
		t.Fatalf("a stale holder's commit: %v, want ErrStaleGrant", err)
	}
	stale.Unlock() // harmless: the lease is b's
	// c waits for b's lease to end, then carries on.
	cs := newStore(t, pool, pgstore.Config{Owner: "c", LeaseTTL: 300 * time.Millisecond})
	l, err := cs.Lock(ctx, "hermes")
	if err != nil {
		t.Fatalf("c never got the lease of a crashed holder: %v", err)
	}
	got, err := l.Credentials(t.Context())
	if err != nil || got.Grant.RefreshToken != c.Grant.RefreshToken {
		t.Errorf("after the stale commit the grant is %+v, %v; want the one before", got.Grant, err)
	}
	l.Unlock()
}

// An answer a holder recorded and never committed (it died after the
// server answered) is committed by the next holder.
func TestJournalFinishedByTheNextHolder(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	s := newStore(t, pool, pgstore.Config{Owner: "a", LeaseTTL: 200 * time.Millisecond})
	tok := install(t, oauth.NewGrants(s), srv, "hermes", time.Now().Add(time.Minute))
	l, err := s.Lock(t.Context(), "hermes")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := l.Credentials(t.Context())
	record, err := l.Prepare(t.Context(), c.Grant)
	if err != nil {
		t.Fatal(err)
	}
	if err := record([]byte(`{"access_token":"hch-at-journal","refresh_token":"hch-rt-journal","expires_in":"3600"}`), "application/json"); err != nil {
		t.Fatal(err)
	}
	// a dies here: no commit, no unlock.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	next, err := newStore(t, pool, pgstore.Config{Owner: "b"}).Lock(ctx, "hermes")
	if err != nil {
		t.Fatal(err)
	}
	got, err := next.Credentials(t.Context())
	next.Unlock()
	if err != nil || got.Grant.RefreshToken != "hch-rt-journal" || got.Grant.AccessToken != "hch-at-journal" || got.Grant.ClientID != srv.ClientID() {
		t.Fatalf("after recovery the grant is %+v, %v; want the journalled rotation of %s", got.Grant, err, tok.RefreshToken)
	}
}

// A rejection is recorded for every instance, bound to the refresh token.
func TestRejectionSeenByEveryInstance(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	a := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "a"}), oauth.WithHTTPClient(srv.Client()))
	tok := install(t, a, srv, "hermes", time.Now().Add(-time.Minute))
	srv.RevokeGrant(tok.RefreshToken)
	if _, err := a.TokenSource("hermes").Token(); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("a: %v, want ErrReauthRequired", err)
	}
	before := srv.Stats().TokenRequests
	b := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "b"}), oauth.WithHTTPClient(srv.Client()))
	if _, err := b.TokenSource("hermes").Token(); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("b: %v, want ErrReauthRequired", err)
	}
	if srv.Stats().TokenRequests != before {
		t.Error("another instance called the server for a rejected grant")
	}
}

// The pending-flow store: a state is claimed once, from any instance, its
// verifier is sealed, and every instance reports and ends every flow.
func TestFlowStore(t *testing.T) {
	pool := testPool(t, false)
	a, b := newStore(t, pool, pgstore.Config{}).Flows(), newStore(t, pool, pgstore.Config{}).Flows()
	key := connid.ID{Profile: "default", Provider: "honcho"}
	expires := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	pending := flow.Flow{ID: "f1", State: flow.StatePending, Method: flow.MethodBrowser, AuthorizeURL: "https://a/authorize?state=x", ExpiresAt: expires}
	p := flow.Pending{Key: key, ID: "f1", State: "the-state", Verifier: "the-verifier-0123456789", ExpiresAt: expires, Flow: pending,
		Issuer: "https://a", IssuerRequired: true, ResumeData: []byte(`{"tokens_only":true}`),
		Config: oauth2.Config{ClientID: "c", RedirectURL: "http://127.0.0.1:9/cb", Endpoint: oauth2.Endpoint{AuthURL: "https://a/authorize", TokenURL: "https://a/token"}}}
	if err := a.Put(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := pool.QueryRow(t.Context(), `SELECT verifier FROM memconnect_flows`).Scan(&raw); err != nil || bytes.Contains(raw, []byte(p.Verifier)) {
		t.Fatalf("verifier at rest: %v (clear: %v)", err, bytes.Contains(raw, []byte(p.Verifier)))
	}
	// The authorize URL holds the state: sealed too.
	if err := pool.QueryRow(t.Context(), `SELECT flow::text FROM memconnect_flows`).Scan(&raw); err != nil || bytes.Contains(raw, []byte("state=x")) {
		t.Fatalf("flow at rest: %v (state in the clear: %s)", err, raw)
	}
	if got, ok, err := b.Status(t.Context(), key); err != nil || !ok || got.ID != "f1" || got.State != flow.StatePending || got.AuthorizeURL != pending.AuthorizeURL {
		t.Fatalf("status on b = %+v, %v, %v", got, ok, err)
	}
	if _, err := b.Claim(t.Context(), key, "wrong"); !errors.Is(err, flow.ErrInvalidState) {
		t.Fatalf("claim with a wrong state: %v", err)
	}
	var wg sync.WaitGroup
	var won atomic.Int32
	for _, st := range []flow.Store{a, b, a, b} {
		wg.Go(func() {
			got, err := st.Claim(t.Context(), key, "the-state")
			if err == nil {
				won.Add(1)
				if got.Verifier != p.Verifier || got.ID != "f1" || got.Config.RedirectURL != p.Config.RedirectURL || !got.ExpiresAt.Equal(p.ExpiresAt) || got.Flow.AuthorizeURL != pending.AuthorizeURL ||
					got.Issuer != p.Issuer || !got.IssuerRequired || string(got.ResumeData) != string(p.ResumeData) {
					t.Errorf("claimed %+v", got)
				}
			} else if !errors.Is(err, flow.ErrInvalidState) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d claims of one state succeeded, want 1", won.Load())
	}
	if err := pool.QueryRow(t.Context(), `SELECT verifier FROM memconnect_flows`).Scan(&raw); err != nil || raw != nil {
		t.Errorf("the verifier outlived its claim: %v", err)
	}
	cancelled := pending
	cancelled.State, cancelled.Detail = flow.StateIdle, "Cancelled"
	if ok, err := b.Finish(t.Context(), key, "", cancelled); err != nil || ok {
		t.Errorf("a claimed flow was cancelled: %v, %v", ok, err)
	}
	connected := pending
	connected.State, connected.AuthorizeURL = flow.StateConnected, ""
	if ok, err := b.Finish(t.Context(), key, "f1", connected); err != nil || !ok {
		t.Fatalf("finish: %v, %v", ok, err)
	}
	if got, _, _ := a.Status(t.Context(), key); got.State != flow.StateConnected {
		t.Errorf("status on a after b finished = %+v", got)
	}
	if err := a.Put(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Finish(t.Context(), key, "", cancelled); err != nil || !ok {
		t.Errorf("cancel of a pending flow: %v, %v", ok, err)
	}
	if _, err := a.Claim(t.Context(), key, "the-state"); !errors.Is(err, flow.ErrInvalidState) {
		t.Errorf("claim after a cancel: %v", err)
	}
	if err := b.Delete(t.Context(), key, "f1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Status(t.Context(), key); ok {
		t.Error("a deleted flow is still reported")
	}
}

func TestParseKey(t *testing.T) {
	secret := strings.Repeat("s", 32)
	for _, in := range []string{"k1:" + base64.StdEncoding.EncodeToString([]byte(secret)), " k1:" + base64.RawURLEncoding.EncodeToString([]byte(secret)) + "\n"} {
		k, err := pgstore.ParseKey(in)
		if err != nil || k.ID != "k1" || string(k.Secret[:]) != secret {
			t.Errorf("ParseKey(%q) = %v, %v", in, k, err)
		}
	}
	for _, in := range []string{"", "k1", ":" + base64.StdEncoding.EncodeToString([]byte(secret)), "k1:short", "k1:" + base64.StdEncoding.EncodeToString([]byte("31 bytes only, one too few....."))} {
		if _, err := pgstore.ParseKey(in); err == nil {
			t.Errorf("ParseKey(%q) accepted", in)
		} else if strings.Contains(err.Error(), "c2hvcnQ") {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
	b64 := func(c string) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(c, 32))) }
	keys, err := pgstore.ParseKeys("k2:" + b64("2") + ", k1:" + b64("1"))
	if err != nil || len(keys) != 2 || keys[0].ID != "k2" || keys[1].ID != "k1" || keys[1].Secret[0] != '1' {
		t.Errorf("ParseKeys = %v, %v; want k2 then k1", keys, err)
	}
	if _, err := pgstore.ParseKeys("k2:" + b64("2") + ","); err == nil {
		t.Error("ParseKeys accepted an empty second key")
	}
}

// Rekey seals every value again with the first key: afterwards a store with
// the new key alone reads every grant, journal and pending flow, while
// instances kept working; a second run has nothing to do.
func TestRekey(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	old := newStore(t, pool, pgstore.Config{})
	gs := oauth.NewGrants(old, oauth.WithHTTPClient(srv.Client()))
	toks := map[string]*oauth2.Token{}
	for _, key := range []string{"honcho/a", "honcho/b"} {
		toks[key] = install(t, gs, srv, key, time.Now().Add(time.Hour))
	}
	// A rotation journalled and not yet committed, as a crash leaves it.
	l, err := old.Lock(t.Context(), "honcho/b")
	if err != nil {
		t.Fatal(err)
	}
	cr, _ := l.Credentials(t.Context())
	record, err := l.Prepare(t.Context(), cr.Grant)
	if err != nil {
		t.Fatal(err)
	}
	if err := record([]byte(`{"access_token":"journalled"}`), "application/json"); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	if _, err := old.SetAPIKey(t.Context(), "honcho/c", "hch-v2-rekey-0123456789"); err != nil {
		t.Fatal(err)
	}
	fkey := connid.ID{Profile: "default", Provider: "honcho"}
	if err := old.Flows().Put(t.Context(), flow.Pending{Key: fkey, ID: "f1", State: "s", Verifier: "the-verifier", ExpiresAt: time.Now().Add(time.Minute),
		Flow: flow.Flow{ID: "f1", State: flow.StatePending}}); err != nil {
		t.Fatal(err)
	}

	both := newStore(t, pool, pgstore.Config{Keys: []pgstore.Key{testKey("k2"), testKey("k1")}})
	if n, err := both.Rekey(t.Context()); err != nil || n != 7 {
		t.Fatalf("Rekey = %d, %v; want 7 values (2 grants × 2 tokens, 1 journal, 1 API key, 1 verifier)", n, err)
	}
	if n, err := both.Rekey(t.Context()); err != nil || n != 0 {
		t.Fatalf("Rekey again = %d, %v; want 0", n, err)
	}
	var left int
	if err := pool.QueryRow(t.Context(), `SELECT
	(SELECT count(*) FROM memconnect_grants WHERE substring(access_token from 1 for 3) = $1
		OR substring(refresh_token from 1 for 3) = $1 OR substring(journal from 1 for 3) = $1 OR substring(api_key from 1 for 3) = $1)
	+ (SELECT count(*) FROM memconnect_flows WHERE substring(verifier from 1 for 3) = $1)`, []byte("k1\x00")).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows still sealed with k1 (%v)", left, err)
	}
	only := newStore(t, pool, pgstore.Config{Keys: []pgstore.Key{testKey("k2")}})
	for key, tok := range toks {
		c, err := only.Credentials(t.Context(), key)
		if err != nil || c.Grant == nil || c.Grant.RefreshToken != tok.RefreshToken || c.Grant.AccessToken != tok.AccessToken {
			t.Fatalf("%s with the new key only: %v", key, err)
		}
	}
	if c, err := only.Credentials(t.Context(), "honcho/c"); err != nil || c.APIKey != "hch-v2-rekey-0123456789" {
		t.Fatalf("the API key with the new key only: %q, %v", c.APIKey, err)
	}
	p, err := only.Flows().Claim(t.Context(), fkey, "s")
	if err != nil || p.Verifier != "the-verifier" {
		t.Fatalf("claim with the new key only: %q, %v", p.Verifier, err)
	}
	// The journal opens under the new key: the next holder finishes it.
	l, err = only.Lock(t.Context(), "honcho/b")
	if err != nil {
		t.Fatalf("lock with the new key only: %v", err)
	}
	l.Unlock()
}

// The engine's rules hold over PostgreSQL as over a file: a transient
// refresh failure keeps the current token and pauses refreshing; a
// database that cannot be reached keeps the token in hand while it is
// valid, and only then fails, naming the grant.
func TestFailOpen(t *testing.T) {
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	t.Run("token endpoint fails", func(t *testing.T) {
		gs := oauth.NewGrants(newStore(t, testPool(t, false), pgstore.Config{}), oauth.WithHTTPClient(srv.Client()))
		tok := install(t, gs, srv, "hermes", time.Now().Add(time.Minute)) // in the refresh window
		srv.FailNextTokenRequests(1, 400, "temporarily_unavailable")
		before := srv.Stats().TokenRequests
		for range 3 {
			got, err := gs.TokenSource("hermes").Token()
			if err != nil || got.AccessToken != tok.AccessToken {
				t.Fatalf("Token = %v; want the current token kept", err)
			}
		}
		if n := srv.Stats().TokenRequests - before; n != 1 {
			t.Errorf("%d token requests; want 1, then the cooldown", n)
		}
	})
	t.Run("database gone", func(t *testing.T) {
		pool, err := pgxpool.New(t.Context(), fixture.PostgresURL(t, false))
		if err != nil {
			t.Fatal(err)
		}
		now := testkit.ClockAt(time.Now())
		var logs testkit.SyncBuffer
		gs := oauth.NewGrants(newStore(t, pool, pgstore.Config{}), oauth.WithHTTPClient(srv.Client()), oauth.WithClock(now),
			oauth.WithLogger(zerolog.New(&logs)))
		tok := install(t, gs, srv, "hermes", now.Now().Add(time.Hour))
		if _, err := gs.TokenSource("hermes").Token(); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		now.Advance(time.Hour - time.Minute) // in the refresh window, still valid
		for range 3 {
			got, err := gs.TokenSource("hermes").Token()
			if err != nil || got.AccessToken != tok.AccessToken {
				t.Fatalf("Token with the database gone = %v; want the token in hand", err)
			}
		}
		if n := strings.Count(logs.String(), "cannot be read"); n != 1 {
			t.Errorf("%d warnings for 3 calls during the outage; want 1:\n%s", n, logs.String())
		}
		now.Advance(2 * time.Minute) // expired
		if _, err := gs.TokenSource("hermes").Token(); err == nil || !strings.Contains(err.Error(), `"hermes" in PostgreSQL`) {
			t.Fatalf("Token with the database gone and the token expired = %v; want an error naming the grant", err)
		}
	})
}

// Rows of flows that expired more than an hour ago are swept by the next
// flow started on any instance; a recent one stays, to be reported.
func TestFlowStoreSweeps(t *testing.T) {
	pool := testPool(t, false)
	a, b := newStore(t, pool, pgstore.Config{}).Flows(), newStore(t, pool, pgstore.Config{}).Flows()
	put := func(fs flow.Store, profile string, expires time.Time) {
		t.Helper()
		key := connid.ID{Profile: profile, Provider: "honcho"}
		if err := fs.Put(t.Context(), flow.Pending{Key: key, ID: profile, State: profile + "-state", Verifier: "v", ExpiresAt: expires,
			Flow: flow.Flow{ID: profile, State: flow.StatePending}}); err != nil {
			t.Fatal(err)
		}
	}
	put(a, "old", time.Now().Add(-2*time.Hour))
	put(a, "recent", time.Now().Add(-time.Minute))
	put(b, "new", time.Now().Add(10*time.Minute))
	for profile, want := range map[string]bool{"old": false, "recent": true, "new": true} {
		if _, ok, err := b.Status(t.Context(), connid.ID{Profile: profile, Provider: "honcho"}); err != nil || ok != want {
			t.Errorf("flow %q recorded = %v (%v); want %v", profile, ok, err, want)
		}
	}
}

var _ oauth.GrantWatcher = (*pgstore.Store)(nil)

// Watch hears the changes another instance commits, through LISTEN/NOTIFY;
// after the last watch stops, a new one listens again.
func TestWatch(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	a := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "a"}), oauth.WithHTTPClient(srv.Client()))
	b := newStore(t, pool, pgstore.Config{Owner: "b"})
	for round := range 2 {
		changed, stop, err := b.Watch(t.Context(), "hermes")
		if err != nil {
			t.Fatal(err)
		}
		install(t, a, srv, "hermes", time.Now().Add(time.Hour))
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no notification of the new grant", round)
		}
		stop()
		stop() // idempotent
	}
}

// A grant's resource (RFC 8707) is kept, and sent with the refresh, which
// a server that requires it refuses without.
func TestResourceKept(t *testing.T) {
	const resource = "https://memory.example/mcp"
	srv := oauthfake.NewServer(oauthfake.WithResource(resource))
	defer srv.Close()
	s := newStore(t, testPool(t, false), pgstore.Config{})
	gs := oauth.NewGrants(s, oauth.WithHTTPClient(srv.Client()))
	tok := srv.IssueGrant("write")
	if _, err := gs.Install(t.Context(), "mcp/default", tok, oauth.Grant{ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL(), Resource: resource}); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Credentials(t.Context(), "mcp/default"); err != nil || c.Grant.Resource != resource {
		t.Fatalf("stored grant = %+v, %v; want resource %s", c.Grant, err, resource)
	}
	if _, err := gs.TokenSource("mcp/default").ForceRefresh(t.Context(), tok.AccessToken); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}

// TestCommitComparesThePreviousToken: under a live lease, a commit whose
// previous grant is not the one stored (a holder working from a stale
// read) is refused with ErrStaleGrant and changes nothing: the lease alone
// is not enough to overwrite a rotation.
func TestCommitComparesThePreviousToken(t *testing.T) {
	pool := testPool(t, false)
	srv := honchofake.NewServer()
	t.Cleanup(srv.Close)
	st := newStore(t, pool, pgstore.Config{Owner: "a"})
	tok := install(t, oauth.NewGrants(st), srv, "hermes", time.Now().Add(time.Hour))
	lg, err := st.Lock(t.Context(), "hermes")
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Unlock()
	c, err := lg.Credentials(t.Context())
	if err != nil || c.Grant == nil {
		t.Fatalf("Credentials = %+v, %v", c, err)
	}
	stale := *c.Grant
	stale.RefreshToken = "rt-superseded"
	next := *c.Grant
	next.AccessToken, next.RefreshToken = "at-from-a-stale-read", "rt-from-a-stale-read"
	if err := lg.Commit(t.Context(), &stale, &next); !errors.Is(err, oauth.ErrStaleGrant) {
		t.Fatalf("Commit with a previous token not stored: %v; want ErrStaleGrant", err)
	}
	if c, err := st.Credentials(t.Context(), "hermes"); err != nil || c.Grant == nil || c.Grant.RefreshToken != tok.RefreshToken {
		t.Fatalf("after the refused commit: %+v, %v; want the grant as it was", c.Grant, err)
	}
}
