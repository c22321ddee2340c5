package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/pgstore"
)

// strictServer is a token endpoint that rotates refresh tokens and counts
// replays: a refresh token spent twice, as a server that revokes the grant
// then would see it.
type strictServer struct {
	*httptest.Server
	mu      sync.Mutex // guards the fields below
	spent   map[string]bool
	issued  int
	replays int
	// onRefresh, if not nil, runs before a refresh is answered.
	onRefresh func()
	// unavailable answers this many refreshes 503, spending nothing.
	unavailable int
}

func newStrictServer(t *testing.T) *strictServer {
	s := &strictServer{spent: make(map[string]bool)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		rt := r.PostForm.Get("refresh_token")
		s.mu.Lock()
		if s.unavailable > 0 {
			s.unavailable--
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"temporarily_unavailable"}`)
			return
		}
		if s.spent[rt] {
			s.replays++
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		s.spent[rt] = true
		s.issued++
		n := s.issued
		hook := s.onRefresh
		s.mu.Unlock()
		if hook != nil {
			hook()
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-%d","refresh_token":"rt-%d","expires_in":3600,"token_type":"Bearer"}`, n, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *strictServer) stats() (issued, replays int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued, s.replays
}

// installPlain stores a grant of refresh token rt at srv, expiring at exp.
// waitLeaseOver returns once the lease on key's row has passed, by the
// database's clock: it waits for the lease's own deadline.
func waitLeaseOver(t *testing.T, pool *pgxpool.Pool, key string) {
	t.Helper()
	for {
		var left time.Duration
		if err := pool.QueryRow(t.Context(), `SELECT coalesce(greatest(lease_until - now(), interval '0'), interval '0') FROM memconnect_grants WHERE key = $1`, key).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left <= 0 {
			return
		}
		select {
		case <-time.After(left):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

func installPlain(t *testing.T, gs *oauth.Grants, srv *strictServer, key, at, rt string, exp time.Time) {
	t.Helper()
	tok := &oauth2.Token{AccessToken: at, RefreshToken: rt, Expiry: exp}
	// Tokens an hour old: near its end, a token is due for every holder.
	if _, err := gs.Install(t.Context(), key, tok, oauth.Grant{ClientID: "c", TokenEndpoint: srv.URL, TokenType: "Bearer", Obtained: exp.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

// TestPausedHolderNeverCausesAReplay: holder A spends the refresh token and
// pauses at the server past its lease. B, which takes the lease meanwhile,
// finds the spend unfinished and does not spend again: it keeps the
// current token while that is valid, and errs when it is not. A, woken,
// commits its answer though its lease passed, and everyone adopts it.
func TestPausedHolderNeverCausesAReplay(t *testing.T) {
	pool := testPool(t, false)
	srv := newStrictServer(t)
	paused, wake := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(wake) })
	t.Cleanup(release) // before the server closes
	var once sync.Once
	srv.onRefresh = func() {
		once.Do(func() {
			close(paused)
			<-wake // A is paused while its request is at the server
		})
	}
	short := func(owner string) pgstore.Config {
		return pgstore.Config{Owner: owner, LeaseTTL: 300 * time.Millisecond, SpendWait: 200 * time.Millisecond}
	}
	a := oauth.NewGrants(newStore(t, pool, short("a")))
	installPlain(t, a, srv, "k", "at-0", "rt-0", time.Now().Add(time.Minute))

	type result struct {
		tok *oauth2.Token
		err error
	}
	aDone := make(chan result, 1)
	go func() {
		tok, err := a.TokenSource("k").Token()
		aDone <- result{tok, err}
	}()
	<-paused
	waitLeaseOver(t, pool, "k") // A's

	b := oauth.NewGrants(newStore(t, pool, short("b")))
	tok, err := b.TokenSource("k").Token()
	if err != nil || tok.AccessToken != "at-0" {
		t.Fatalf("B: %v, %v; want the current token, still valid", tok, err)
	}
	// A token that can no longer be kept is an error, not a second spend.
	b2 := oauth.NewGrants(newStore(t, pool, short("b2")))
	if _, err := b2.TokenSource("k").ForceRefresh(t.Context(), "at-0"); err == nil || !strings.Contains(err.Error(), "has not finished") {
		t.Fatalf("B's forced refresh: %v; want an error saying another refresh has not finished", err)
	}
	if issued, replays := srv.stats(); issued != 1 || replays != 0 {
		t.Fatalf("server: %d refreshes, %d replays while A was paused; want 1 and 0", issued, replays)
	}

	release()
	r := <-aDone
	if r.err != nil || r.tok.AccessToken != "at-1" {
		t.Fatalf("A, woken: %v, %v; want its rotation, committed", r.tok, r.err)
	}
	c := oauth.NewGrants(newStore(t, pool, short("c")))
	if tok, err := c.TokenSource("k").Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("C: %v, %v; want A's rotation", tok, err)
	}
	if issued, replays := srv.stats(); issued != 1 || replays != 0 {
		t.Errorf("server: %d refreshes, %d replays; want 1 and 0", issued, replays)
	}
}

// TestAbandonedSpendNeedsSignIn: holder A spends the refresh token and
// never comes back (killed, or paused for good, at the server). Once its
// spend is older than AbandonAfter, the next holder does not spend the
// token again (the server may have rotated it): the grant needs a new
// sign-in, for every process, with an error that says why. A, should it
// wake after all with its answer, still commits it.
func TestAbandonedSpendNeedsSignIn(t *testing.T) {
	pool := testPool(t, false)
	srv := newStrictServer(t)
	paused, wake := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(wake) })
	t.Cleanup(release)
	var once sync.Once
	srv.onRefresh = func() {
		once.Do(func() {
			close(paused)
			<-wake
		})
	}
	cfg := func(owner string) pgstore.Config {
		return pgstore.Config{Owner: owner, LeaseTTL: 300 * time.Millisecond, SpendWait: 100 * time.Millisecond, AbandonAfter: 500 * time.Millisecond}
	}
	a := oauth.NewGrants(newStore(t, pool, cfg("a")))
	installPlain(t, a, srv, "k", "at-0", "rt-0", time.Now().Add(-time.Second)) // expired: due for everyone
	aDone := make(chan error, 1)
	go func() {
		_, err := a.TokenSource("k").Token()
		aDone <- err
	}()
	<-paused
	waitLeaseOver(t, pool, "k")
	// Within the abandon period: the spend may still finish.
	b := oauth.NewGrants(newStore(t, pool, cfg("b")))
	if _, err := b.TokenSource("k").Token(); err == nil || errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("B within the abandon period: %v; want an error that another refresh has not finished", err)
	}
	<-time.After(600 * time.Millisecond) // past AbandonAfter
	c := oauth.NewGrants(newStore(t, pool, cfg("c")))
	_, err := c.TokenSource("k").Token()
	var re *oauth.ReauthError
	if !errors.As(err, &re) || re.Code != oauth.CodeAbandoned || !strings.Contains(err.Error(), "stopped before it got the answer") {
		t.Fatalf("C past the abandon period: %v; want a ReauthError saying why", err)
	}
	st := newStore(t, pool, cfg("d"))
	if cr, err := st.Credentials(t.Context(), "k"); err != nil || cr.Rejected != oauth.CodeAbandoned {
		t.Fatalf("stored: %+v, %v; want the grant recorded as needing a sign-in", cr, err)
	}
	if issued, replays := srv.stats(); issued != 1 || replays != 0 {
		t.Fatalf("server: %d refreshes, %d replays; want 1 and 0", issued, replays)
	}

	release() // A wakes with its answer after all
	if err := <-aDone; err != nil {
		t.Fatalf("A, woken: %v; want its answer committed", err)
	}
	if cr, err := st.Credentials(t.Context(), "k"); err != nil || cr.Rejected != "" || cr.Grant == nil || cr.Grant.AccessToken != "at-1" {
		t.Fatalf("after A: %+v, %v; want A's rotation, the grant alive", cr, err)
	}
}

// TestAnswerSurvivesADatabaseOutage: the database goes away while the
// token endpoint's answer is in flight. The answer is kept in the spill
// directory, Sync says so truthfully, and the next process commits it when
// the database is back: no replay, no rotation lost.
func TestAnswerSurvivesADatabaseOutage(t *testing.T) {
	raw, proxy := fixture.PostgresBehindProxy(t)
	pool := proxy.Pool(t, raw)
	srv := newStrictServer(t)
	spill := t.TempDir()
	log := &testkit.SyncBuffer{}
	a := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "a", SpillDir: spill, LeaseTTL: 500 * time.Millisecond, Logger: zerolog.New(log)}), oauth.WithLogger(zerolog.New(log).With().Timestamp().Logger()))
	t.Cleanup(func() { t.Log(log.String()) })
	installPlain(t, a, srv, "k", "at-0", "rt-0", time.Now().Add(time.Minute))
	srv.mu.Lock()
	srv.onRefresh = proxy.Cut // the database goes away while the answer is in flight
	srv.mu.Unlock()

	ts := a.TokenSource("k")
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token: %v, %v; want the rotation, held while the database is away", tok, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := ts.Sync(ctx); err == nil || !strings.Contains(err.Error(), "answer is kept") {
		t.Fatalf("Sync: %v; want an error saying the answer is kept", err)
	}
	files, _ := os.ReadDir(spill)
	if len(files) != 1 {
		t.Fatalf("spill directory holds %d files; want the one answer", len(files))
	}

	proxy.Restore()
	next := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "next", SpillDir: spill}))
	got, err := next.TokenSource("k").Token()
	if err != nil || got.AccessToken != "at-1" {
		t.Fatalf("next process: %v, %v; want the kept rotation", got, err)
	}
	if issued, replays := srv.stats(); issued != 1 || replays != 0 {
		t.Errorf("server: %d refreshes, %d replays; want 1 and 0", issued, replays)
	}
	if files, _ := os.ReadDir(spill); len(files) != 0 {
		t.Errorf("the spill directory still holds %d files after the commit", len(files))
	}
}

// TestWatchSurvivesADatabaseRestart: the LISTEN connection breaks; it is
// taken again, every open watch hears of it (a change may have come while
// nobody listened), and later changes are heard as before.
func TestWatchSurvivesADatabaseRestart(t *testing.T) {
	raw, proxy := fixture.PostgresBehindProxy(t)
	proxied := proxy.Pool(t, raw)
	direct, err := pgxpool.New(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	srv := newStrictServer(t)
	watcher := newStore(t, proxied, pgstore.Config{Owner: "watcher"})
	other := oauth.NewGrants(newStore(t, direct, pgstore.Config{Owner: "other"}))

	changed, stop, err := watcher.Watch(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	heard := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(20 * time.Second):
			t.Fatalf("the watch did not hear %s", what)
		}
	}
	installPlain(t, other, srv, "k", "at-0", "rt-0", time.Now().Add(time.Hour))
	heard("a change before the restart")

	proxy.Cut() // the database restarts
	installPlain(t, other, srv, "k", "at-1", "rt-1", time.Now().Add(time.Hour))
	proxy.Restore()
	heard("the change made while it listened to nothing")

	installPlain(t, other, srv, "k", "at-2", "rt-2", time.Now().Add(time.Hour))
	heard("a change after the restart")
}

// TestGrantWithoutRefreshTokenInPostgres: a grant issued without a refresh
// token is kept, served, and once expired reported as needing a sign-in,
// with no request to the server; removing it works as for any grant.
func TestGrantWithoutRefreshTokenInPostgres(t *testing.T) {
	pool := testPool(t, false)
	srv := newStrictServer(t)
	gs := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "a"}))
	tok := &oauth2.Token{AccessToken: "at-only", Expiry: time.Now().Add(time.Hour)}
	if _, err := gs.Install(t.Context(), "k", tok, oauth.Grant{ClientID: "c", TokenEndpoint: srv.URL, TokenType: "Bearer"}); err != nil {
		t.Fatal(err)
	}
	if got, err := gs.TokenSource("k").Token(); err != nil || got.AccessToken != "at-only" {
		t.Fatalf("Token = %v, %v; want the token", got, err)
	}
	if _, err := pool.Exec(t.Context(), `UPDATE memconnect_grants SET expires_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	other := oauth.NewGrants(newStore(t, pool, pgstore.Config{Owner: "b"}))
	if _, err := other.TokenSource("k").Token(); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("Token after expiry: %v; want ErrReauthRequired", err)
	}
	if issued, _ := srv.stats(); issued != 0 {
		t.Errorf("the token endpoint was asked %d times", issued)
	}
	if g, err := other.Remove(t.Context(), "k"); err != nil || g.AccessToken != "at-only" {
		t.Fatalf("Remove = %+v, %v", g, err)
	}
}

// TestFailedSpendDoesNotBlockOthers: a refresh the server answered with an
// error spent nothing, so its record is withdrawn and the next holder
// refreshes at once instead of waiting for a spend that is over.
func TestFailedSpendDoesNotBlockOthers(t *testing.T) {
	pool := testPool(t, false)
	srv := newStrictServer(t)
	cfg := func(owner string) pgstore.Config {
		return pgstore.Config{Owner: owner, SpendWait: 100 * time.Millisecond}
	}
	a := oauth.NewGrants(newStore(t, pool, cfg("a")))
	installPlain(t, a, srv, "k", "at-0", "rt-0", time.Now().Add(time.Minute))
	srv.mu.Lock()
	srv.unavailable = 2 // the attempt and its one retry
	srv.mu.Unlock()
	if tok, err := a.TokenSource("k").Token(); err != nil || tok.AccessToken != "at-0" {
		t.Fatalf("A during the outage: %v, %v; want the current token", tok, err)
	}
	b := oauth.NewGrants(newStore(t, pool, cfg("b")))
	if tok, err := b.TokenSource("k").Token(); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("B after the outage: %v, %v; want a fresh rotation", tok, err)
	}
	if issued, replays := srv.stats(); issued != 1 || replays != 0 {
		t.Errorf("server: %d rotations, %d replays; want 1 and 0", issued, replays)
	}
}
