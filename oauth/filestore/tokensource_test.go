package filestore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/internal/tuning"

	"golang.org/x/oauth2"
)

// expiringGrant writes a grant that is inside the refresh skew at clock's now.
func expiringGrant(t *testing.T, tokenURL string, clock *testkit.Clock) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(tokenURL, "hch-at-old", "hch-rt-old", clock.Now().Add(time.Minute)))
	return path
}

func TestTokenHotPathServesCache(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	ep := newFakeTokenEndpoint(t, rotating)
	path := filepath.Join(t.TempDir(), "honcho.json")
	testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-live", "hch-rt-live", clock.Now().Add(time.Hour)))
	ts := fastStore(path, clock, nil).TokenSource("hermes")
	first, err := ts.Token()
	if err != nil || first.AccessToken != "hch-at-live" {
		t.Fatalf("Token = %v, %v", first, err)
	}
	if first.RefreshToken != "" {
		t.Errorf("the refresh token left the store")
	}
	// The hot path does not read the file: remove it and the token still comes.
	os.Remove(path)
	second, err := ts.Token()
	if err != nil || second != first {
		t.Fatalf("second Token = %v, %v; want the cached pointer", second, err)
	}
	if n := ep.calls.Load(); n != 0 {
		t.Errorf("token endpoint called %d times", n)
	}
}

// TestConcurrentRefreshOnce: 64 goroutines hit a token inside the skew window;
// the server sees exactly one refresh and every caller gets the new token.
func TestConcurrentRefreshOnce(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	srv, grant, path := serverGrant(t, clock.Now().Add(time.Minute))
	s := fastStore(path, clock, nil)
	var wg sync.WaitGroup
	got := make([]string, 64)
	errs := make([]error, 64)
	start := make(chan struct{})
	for i := range 64 {
		wg.Go(func() {
			<-start
			tok, err := s.TokenSource("hermes").Token()
			errs[i] = err
			if tok != nil {
				got[i] = tok.AccessToken
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range 64 {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got[i] != got[0] || got[i] == grant.AccessToken {
			t.Fatalf("caller %d got %q, caller 0 got %q (old %q)", i, got[i], got[0], grant.AccessToken)
		}
	}
	st := srv.Stats()
	if st.Refreshes != 1 || st.Replays != 0 {
		t.Fatalf("server saw %d refreshes, %d replays; want 1, 0", st.Refreshes, st.Replays)
	}
	if !srv.Active(got[0]) {
		t.Errorf("new token not active at the server")
	}
}

// TestSiblingRotationAdopted: two stores (as two processes) share a file; the
// second adopts the first's rotation instead of spending the old token.
func TestSiblingRotationAdopted(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	srv, _, path := serverGrant(t, clock.Now().Add(time.Hour))
	a := fastStore(path, clock, nil).TokenSource("hermes")
	b := fastStore(path, clock, nil).TokenSource("hermes")
	for _, ts := range []*oauth.Source{a, b} {
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(59 * time.Minute) // inside the skew for both caches
	ta, err := a.Token()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Token()
	if err != nil {
		t.Fatal(err)
	}
	if ta.AccessToken != tb.AccessToken {
		t.Fatalf("b did not adopt a's rotation: %q vs %q", tb.AccessToken, ta.AccessToken)
	}
	if st := srv.Stats(); st.Refreshes != 1 || st.Replays != 0 {
		t.Fatalf("stats = %+v; want 1 refresh, 0 replays", st)
	}
}

// TestLostRaceAdopted: the server rejects our refresh token because someone
// changed the file meanwhile (a writer that ignores the lock); the new grant
// on disk is adopted and the grant is not marked dead.
func TestLostRaceAdopted(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	var path string
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		testkit.WriteFile(t, path, configWithGrant("http://unused.invalid", "hch-at-sibling", "hch-rt-sibling", clock.Now().Add(time.Hour)))
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant")
	})
	path = expiringGrant(t, ep.URL, clock)
	s := fastStore(path, clock, nil)
	tok, err := s.TokenSource("hermes").Token()
	if err != nil || tok.AccessToken != "hch-at-sibling" {
		t.Fatalf("Token = %v, %v; want the sibling's token", tok, err)
	}
	if s.ReauthRequired("hermes") {
		t.Errorf("grant marked dead after a lost race")
	}
}

// TestDeadGrant: a rejected grant makes no further network calls until the
// file changes, and reports ErrReauthRequired.
func TestDeadGrant(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"invalid_grant", "invalid_client", "unauthorized_client"} {
		t.Run(code, func(t *testing.T) {
			clock := testkit.NewClock()
			ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
				writeOAuthError(w, http.StatusBadRequest, code)
			})
			path := expiringGrant(t, ep.URL, clock)
			s := fastStore(path, clock, nil)
			ts := s.TokenSource("hermes")
			for i := range 4 {
				_, err := ts.Token()
				var re *oauth.ReauthError
				if !errors.Is(err, oauth.ErrReauthRequired) || !errors.As(err, &re) || re.Code != code {
					t.Fatalf("call %d: err = %v, want ErrReauthRequired with code %s", i, err, code)
				}
				if _, err := ts.ForceRefresh(context.Background(), "hch-at-old"); !errors.Is(err, oauth.ErrReauthRequired) {
					t.Fatalf("ForceRefresh err = %v", err)
				}
			}
			if n := ep.calls.Load(); n != 1 {
				t.Fatalf("token endpoint called %d times, want 1", n)
			}
			if !s.ReauthRequired("hermes") {
				t.Errorf("ReauthRequired = false")
			}
			// Rewriting the same grant is a change of file but not of grant.
			testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-old", "hch-rt-old", clock.Now().Add(time.Minute)))
			if _, err := ts.Token(); !errors.Is(err, oauth.ErrReauthRequired) {
				t.Fatalf("same grant rewritten: err = %v", err)
			}
			if n := ep.calls.Load(); n != 1 {
				t.Fatalf("token endpoint called %d times after a rewrite of the same grant", n)
			}
			// A new sign-in (a new grant in the file) revives the source.
			testkit.WriteFile(t, path, configWithGrant(ep.URL, "hch-at-new", "hch-rt-new", clock.Now().Add(time.Hour)))
			tok, err := ts.Token()
			if err != nil || tok.AccessToken != "hch-at-new" {
				t.Fatalf("after a new grant: %v, %v", tok, err)
			}
			if s.ReauthRequired("hermes") {
				t.Errorf("still dead after a new grant")
			}
		})
	}
}

// TestTransientFailOpen: a transient failure serves the old token, logs a
// warning and makes no new attempt until the cooldown has passed.
func TestTransientFailOpen(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	fail := true
	var mu sync.Mutex
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := fail
		mu.Unlock()
		if f {
			writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
			return
		}
		rotating(n, w, r)
	})
	path := expiringGrant(t, ep.URL, clock)
	log := &testkit.SyncBuffer{}
	s := fastStore(path, clock, log)
	ts := s.TokenSource("hermes")
	tok, err := ts.Token()
	if err != nil || tok.AccessToken != "hch-at-old" {
		t.Fatalf("Token = %v, %v; want the old token (fail open)", tok, err)
	}
	if n := ep.calls.Load(); n != 2 {
		t.Fatalf("calls = %d, want 2 (one retry after a 503)", n)
	}
	if !strings.Contains(log.String(), `"level":"warn"`) {
		t.Errorf("no warning logged:\n%s", log)
	}
	clock.Advance(29 * time.Second)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "hch-at-old" {
		t.Fatalf("during cooldown: %v, %v", tok, err)
	}
	if _, err := ts.ForceRefresh(context.Background(), "hch-at-old"); err == nil || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("ForceRefresh during cooldown: %v", err)
	}
	if n := ep.calls.Load(); n != 2 {
		t.Fatalf("calls during cooldown = %d, want 2", n)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	clock.Advance(2 * time.Second)
	tok, err = ts.Token()
	if err != nil || !strings.HasPrefix(tok.AccessToken, "hch-at-new") {
		t.Fatalf("after cooldown: %v, %v", tok, err)
	}
}

// TestRetryPolicy: one retry, and only when the refresh token provably did
// not reach the server or the server said 5xx/429.
func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		handler   func(n int, w http.ResponseWriter, r *http.Request)
		budget    time.Duration
		wantCalls int32
	}{
		{"503 then success", func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
				return
			}
			rotating(n, w, r)
		}, 5 * time.Second, 2},
		{"429 twice: one retry only", func(n int, w http.ResponseWriter, r *http.Request) {
			writeOAuthError(w, http.StatusTooManyRequests, "slow_down")
		}, 5 * time.Second, 2},
		{"400 invalid_request: no retry", func(n int, w http.ResponseWriter, r *http.Request) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request")
		}, 5 * time.Second, 1},
		{"response lost after send: no retry", func(n int, w http.ResponseWriter, r *http.Request) {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
		}, 5 * time.Second, 1},
		{"budget spent before the retry", func(n int, w http.ResponseWriter, r *http.Request) {
			writeOAuthError(w, http.StatusBadGateway, "")
		}, 500 * time.Millisecond, 1}, // less left than the 1 s retry delay
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock()
			ep := newFakeTokenEndpoint(t, tt.handler)
			path := expiringGrant(t, ep.URL, clock)
			retry := time.Duration(0)
			if tt.budget < time.Second {
				retry = time.Second
			}
			s := fastStore(path, clock, nil, tuning.Timings(0, retry, tt.budget))
			if _, err := s.TokenSource("hermes").Token(); err != nil {
				t.Fatalf("Token: %v (should fail open)", err)
			}
			if n := ep.calls.Load(); n != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

// TestRetryWhenNeverSent: a connection refused means the refresh token never
// left the process, so the one retry is taken.
func TestRetryWhenNeverSent(t *testing.T) {
	// Not parallel: a parallel test's listener could take the closed port.
	clock := testkit.NewClock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var dials sync.WaitGroup
	dials.Add(2)
	var count int
	var mu sync.Mutex
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		count++
		mu.Unlock()
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	path := expiringGrant(t, "http://"+addr+"/token", clock)
	s := fastStore(path, clock, nil, oauth.WithHTTPClient(client))
	if tok, err := s.TokenSource("hermes").Token(); err != nil || tok.AccessToken != "hch-at-old" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if count != 2 {
		t.Fatalf("dials = %d, want 2 (one retry)", count)
	}
}

func TestForceRefresh(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	srv, grant, path := serverGrant(t, clock.Now().Add(time.Hour))
	s := fastStore(path, clock, nil)
	var changes []string
	ts := s.TokenSource("hermes", oauth.OnTokenChange(func(tok *oauth2.Token) { changes = append(changes, tok.AccessToken) }))
	// A stale access token that is not the one on disk: adopt, no refresh.
	tok, err := ts.ForceRefresh(context.Background(), "hch-at-some-older-token")
	if err != nil || tok.AccessToken != grant.AccessToken {
		t.Fatalf("adopt: %v, %v", tok, err)
	}
	if srv.Stats().Refreshes != 0 || len(changes) != 0 {
		t.Fatalf("refreshed although disk held a different token")
	}
	// The token on disk failed: spend the refresh token even though it is
	// not near expiry.
	tok, err = ts.ForceRefresh(context.Background(), grant.AccessToken)
	if err != nil || tok.AccessToken == grant.AccessToken {
		t.Fatalf("force: %v, %v", tok, err)
	}
	if st := srv.Stats(); st.Refreshes != 1 || st.Replays != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if len(changes) != 1 || changes[0] != tok.AccessToken {
		t.Fatalf("OnTokenChange calls = %v, want exactly the new token", changes)
	}
	// Adopting (another source rotated) does not fire the hook.
	other := fastStore(path, clock, nil).TokenSource("hermes")
	if _, err := other.ForceRefresh(context.Background(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.ForceRefresh(context.Background(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatalf("OnTokenChange fired for an adopted token: %v", changes)
	}
	if st := srv.Stats(); st.Refreshes != 2 || st.Replays != 0 {
		t.Fatalf("stats = %+v; want 2 refreshes, 0 replays", st)
	}
}

// TestCallerContextDoesNotLoseRotation: a caller that gives up while the
// exchange is in flight gets its context error at once; the exchange still
// completes and the rotation is stored.
func TestCallerContextDoesNotLoseRotation(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	release := make(chan struct{})
	arrived := make(chan struct{})
	ep := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		rotating(n, w, r)
	})
	path := expiringGrant(t, ep.URL, clock)
	s := fastStore(path, clock, nil)
	changed := make(chan *oauth2.Token, 1)
	ts := s.TokenSource("hermes", oauth.OnTokenChange(func(tok *oauth2.Token) { changed <- tok }))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := ts.TokenContext(ctx)
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(release)
	tok := <-changed
	v := testkit.ReadJSON(t, path)
	if got := testkit.HostBlock(v, "hermes")["apiKey"]; got != tok.AccessToken {
		t.Fatalf("file holds %v, want the rotated token", got)
	}
}

// TestUnsavedRotationKept: when the rotated grant cannot be written, it is
// kept in memory, served, and written on the next call — never replayed.
func TestUnsavedRotationKept(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	srv, grant, path := serverGrant(t, clock.Now().Add(time.Minute))
	log := &testkit.SyncBuffer{}
	s := fastStore(path, clock, log)
	failures := 2
	s.file.writeFile = func(p string, data []byte) error {
		if failures > 0 {
			failures--
			return errors.New("disk full")
		}
		return writeFileAtomic(p, data)
	}
	ts := s.TokenSource("hermes")
	tok, err := ts.Token()
	if err != nil || tok.AccessToken == grant.AccessToken {
		t.Fatalf("Token = %v, %v; want the rotated token", tok, err)
	}
	if testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["apiKey"] != grant.AccessToken {
		t.Fatalf("the failing write changed the file")
	}
	// Second call: the write fails again; the rotated grant is still served.
	again, err := ts.Token()
	if err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("second Token = %v, %v", again, err)
	}
	// Third call writes it.
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if got := testkit.HostBlock(testkit.ReadJSON(t, path), "hermes")["apiKey"]; got != tok.AccessToken {
		t.Fatalf("file holds %v, want the rotated token", got)
	}
	if st := srv.Stats(); st.Refreshes != 1 || st.Replays != 0 {
		t.Fatalf("stats = %+v; want 1 refresh, 0 replays", st)
	}
	for _, secret := range []string{grant.AccessToken, grant.RefreshToken, tok.AccessToken} {
		if strings.Contains(log.String(), secret) {
			t.Fatalf("log leaks a token")
		}
	}
}

// TestRedaction drives every failure path with a debug logger and checks
// that no token value appears in the log or in returned errors.
func TestRedaction(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	log := &testkit.SyncBuffer{}
	var errs []error
	secretsFor := func(n int) []string {
		return []string{"hch-at-old", "hch-rt-old", fmt.Sprintf("hch-at-new%d", n), fmt.Sprintf("hch-rt-new%d", n)}
	}
	handlers := map[string]func(n int, w http.ResponseWriter, r *http.Request){
		"503 echoing the form": func(n int, w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "upstream down; you sent %s", r.PostForm.Encode())
		},
		"invalid_grant echoing": func(n int, w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"invalid_grant","error_description":"token %s was revoked"}`, r.PostForm.Get("refresh_token"))
		},
		"200 garbage": func(n int, w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"oops": %q`, r.PostForm.Get("refresh_token"))
		},
		"dropped": func(n int, w http.ResponseWriter, r *http.Request) {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
		},
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			ep := newFakeTokenEndpoint(t, h)
			path := expiringGrant(t, ep.URL, clock)
			s := fastStore(path, clock, log)
			ts := s.TokenSource("hermes")
			if _, err := ts.Token(); err != nil {
				errs = append(errs, err)
			}
			_, err := ts.ForceRefresh(context.Background(), "hch-at-old")
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	// A failed write of a rotation.
	ep := newFakeTokenEndpoint(t, rotating)
	path := expiringGrant(t, ep.URL, clock)
	s := fastStore(path, clock, log)
	s.file.writeFile = func(string, []byte) error { return errors.New("disk full") }
	if _, err := s.TokenSource("hermes").Token(); err != nil {
		errs = append(errs, err)
	}
	if !strings.Contains(log.String(), "oauth:") {
		t.Fatalf("nothing was logged; the test would prove nothing:\n%s", log)
	}
	for n := range 4 {
		for _, secret := range secretsFor(n + 1) {
			if strings.Contains(log.String(), secret) {
				t.Errorf("log contains %q:\n%s", secret, log)
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error contains %q: %v", secret, err)
				}
			}
		}
	}
}

func TestTransport(t *testing.T) {
	t.Parallel()
	type result struct {
		status   int
		attempts int
	}
	tests := []struct {
		name         string
		alwaysReject bool
		body         func() (*http.Request, error)
		want         result
	}{
		{"no body: retried once with the new token", false, func() (*http.Request, error) {
			return http.NewRequest("GET", "/", nil)
		}, result{200, 2}},
		{"replayable body: retried", false, func() (*http.Request, error) {
			return http.NewRequest("POST", "/", strings.NewReader("payload"))
		}, result{200, 2}},
		{"non-replayable body: not retried", false, func() (*http.Request, error) {
			r, err := http.NewRequest("POST", "/", strings.NewReader("payload"))
			if err == nil {
				r.GetBody = nil
			}
			return r, err
		}, result{401, 1}},
		{"always 401: no loop", true, func() (*http.Request, error) {
			return http.NewRequest("GET", "/", nil)
		}, result{401, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testkit.NewClock()
			srv, grant, path := serverGrant(t, clock.Now().Add(time.Hour))
			s := fastStore(path, clock, nil)
			var attempts int
			var mu sync.Mutex
			api := newFakeTokenEndpoint(t, func(n int, w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				attempts++
				mu.Unlock()
				b := make([]byte, 16)
				k, _ := r.Body.Read(b)
				if r.Method == "POST" && string(b[:k]) != "payload" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				if tt.alwaysReject || r.Header.Get("Authorization") == "Bearer "+grant.AccessToken {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			req, err := tt.body()
			if err != nil {
				t.Fatal(err)
			}
			u := api.URL + "/"
			req.URL, _ = req.URL.Parse(u)
			req.Host = ""
			c := &http.Client{Transport: &oauth.Transport{Source: s.TokenSource("hermes")}}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := (result{resp.StatusCode, attempts}); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if st := srv.Stats(); st.Replays != 0 || st.Refreshes > 1 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}
