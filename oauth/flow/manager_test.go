package flow_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider/honcho"
)

// The whole browser flow through the loopback listener, a real consent page,
// the real grant store, and then a refresh of the stored grant that rotates.

// successMessage is what the loopback listener's default page of a
// connected flow says.
const successMessage = "You can close this window and return to the app."

func TestBrowserFlowLoopbackInstallsGrantAndRefreshRotates(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithGrantConfig(map[string]any{"peerName": "alice"})}, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "honcho.json")
	storeNow := time.Now()
	var storeMu sync.Mutex
	storeClock := func() time.Time { storeMu.Lock(); defer storeMu.Unlock(); return storeNow }
	layout := filestore.Layout{Section: "hosts", AccessToken: "apiKey", Fields: "oauth", AccessTokenPrefix: "hch-at-", DefaultScope: "write", RootAPIKey: true}
	file := filestore.New(path, layout)
	store := oauth.NewGrants(file, oauth.WithClock(clock.Func(storeClock)), oauth.WithHTTPClient(e.srv.Client()))

	var calls int
	var mu sync.Mutex
	req := e.request(flowKeyDefault, flow.RedirectLoopback)
	req.AuthParams = url.Values{"source": {"hermes-cli"}, "config_path": {honcho.DisplayPath(path, dir)}}
	req.Complete = func(ctx context.Context, tok *oauth2.Token) error {
		mu.Lock()
		calls++
		mu.Unlock()
		_, err := store.Install(ctx, "hermes", tok, oauth.Grant{ClientID: e.srv.ClientID(), TokenEndpoint: e.srv.TokenURL()})
		return err
	}
	f := e.start(req)
	if !strings.HasPrefix(f.RedirectURI, "http://127.0.0.1:") || !strings.HasSuffix(f.RedirectURI, "/callback") {
		t.Fatalf("RedirectURI = %q, want http://127.0.0.1:<port>/callback", f.RedirectURI)
	}
	// A loopback flow ends when its listener gives up (5 minutes), before
	// the state would expire; ExpiresAt tells the earlier one.
	if got, want := f.ExpiresAt, e.clock.Now().Add(flow.DefaultLoopbackTimeout); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want the loopback timeout %v", got, want)
	}

	back := e.consent(f, true)
	if got := back.Scheme + "://" + back.Host + back.Path; got != f.RedirectURI {
		t.Fatalf("server redirected to %q, want %q", got, f.RedirectURI)
	}
	status, body := flowGet(t, back.String())
	if status != http.StatusOK || !strings.Contains(body, successMessage) {
		t.Fatalf("callback page = %d %q, want 200 with %q", status, body, successMessage)
	}
	mu.Lock()
	n := calls
	mu.Unlock()
	if n != 1 {
		t.Fatalf("Complete called %d times, want 1", n)
	}
	if got := e.m.Status(context.Background(), flowKeyDefault); got.State != flow.StateConnected || got.ID != f.ID {
		t.Fatalf("Status = %+v, want the flow connected", got)
	}
	if got, err := e.m.Wait(context.Background(), flowKeyDefault); err != nil || got.State != flow.StateConnected {
		t.Fatalf("Wait = %q, %v; want connected, nil", got.State, err)
	}
	if q := e.srv.LastAuthorizeQuery(); q.Get("source") != "hermes-cli" || q.Get("config_path") != "~/honcho.json" {
		t.Errorf("authorize query source=%q config_path=%q", q.Get("source"), q.Get("config_path"))
	}
	// The listener closed after completion: the port refuses connections.
	if _, err := http.Get(f.RedirectURI); err == nil {
		t.Errorf("loopback listener still answers after completion")
	}

	// The stored grant refreshes, and the refresh rotates the refresh token.
	creds, err := file.Credentials(context.Background(), "hermes")
	if err != nil || creds.Grant == nil {
		t.Fatalf("Credentials = %+v, %v; want a grant", creds, err)
	}
	first := *creds.Grant
	storeMu.Lock()
	storeNow = first.Expiry.Add(time.Minute) // forced expiry
	storeMu.Unlock()
	tok, err := store.TokenSource("hermes").TokenContext(context.Background())
	if err != nil {
		t.Fatalf("TokenContext after expiry: %v", err)
	}
	if tok.AccessToken == first.AccessToken {
		t.Fatalf("access token did not change after expiry")
	}
	creds, err = file.Credentials(context.Background(), "hermes")
	if err != nil || creds.Grant == nil {
		t.Fatalf("Credentials after refresh = %+v, %v", creds, err)
	}
	if creds.Grant.RefreshToken == first.RefreshToken {
		t.Errorf("refresh token not rotated on disk")
	}
	if e.srv.Active(first.RefreshToken) || !e.srv.Active(creds.Grant.RefreshToken) {
		t.Errorf("server: old refresh token active=%v, new active=%v; want false, true",
			e.srv.Active(first.RefreshToken), e.srv.Active(creds.Grant.RefreshToken))
	}
	if st := e.srv.Stats(); st.AuthorizationCodes != 1 || st.Refreshes != 1 {
		t.Errorf("server stats = %+v, want 1 code, 1 refresh", st)
	}
}

// An http.Client that follows redirects is all a browser needs when the
// server approves at once.
func TestBrowserFlowFollowingRedirects(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	status, body := flowGet(t, f.AuthorizeURL)
	if status != http.StatusOK || !strings.Contains(body, successMessage) {
		t.Fatalf("final page = %d %q", status, body)
	}
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateConnected {
		t.Fatalf("state = %q, want connected", got)
	}
	if n := e.done.Calls(); n != 1 {
		t.Fatalf("Complete called %d times, want 1", n)
	}
	tok := e.done.toks[0]
	if !e.srv.Active(tok.AccessToken) || !e.srv.Active(tok.RefreshToken) {
		t.Errorf("tokens handed to Complete are not active at the server")
	}
}

// The router's callback route goes through Callback: the same completion.
func TestCallbackRedirectMode(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	req := e.request(flowKeyDefault, flow.RedirectCallback)
	req.CallbackURL = "http://127.0.0.1:8080/api/memory/profiles/default/providers/honcho/callback"
	f := e.start(req)
	if f.RedirectURI != req.CallbackURL {
		t.Fatalf("RedirectURI = %q, want the callback URL", f.RedirectURI)
	}
	back := e.consent(f, true)
	got, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query())
	if err != nil || got.State != flow.StateConnected {
		t.Fatalf("Callback = %q, %v; want connected", got.State, err)
	}
	if n := e.done.Calls(); n != 1 {
		t.Errorf("Complete called %d times, want 1", n)
	}
}

func TestLoopbackPortFallback(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, func(c *flow.Config) { c.LoopbackAddr = taken.Addr().String() })
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	u, err := url.Parse(f.RedirectURI)
	if err != nil {
		t.Fatal(err)
	}
	takenPort := taken.Addr().(*net.TCPAddr).Port
	if u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || u.Port() == itoa(takenPort) {
		t.Fatalf("RedirectURI = %q; want 127.0.0.1 on a port other than the taken %d", f.RedirectURI, takenPort)
	}
	if status, body := flowGet(t, f.AuthorizeURL); status != http.StatusOK || !strings.Contains(body, successMessage) {
		t.Fatalf("flow over the fallback port ended %d %q", status, body)
	}
}

// The configured port is used when it is free.
func TestLoopbackConfiguredPort(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	e := newFlowEnv(t, nil, func(c *flow.Config) { c.LoopbackAddr = addr })
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	if want := "http://" + addr + "/callback"; f.RedirectURI != want {
		t.Fatalf("RedirectURI = %q, want %q", f.RedirectURI, want)
	}
}

func TestLoopbackRejectsNonLoopbackAddr(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "localhost:0", "192.0.2.1:0", "nonsense"} {
		t.Run(addr, func(t *testing.T) {
			e := newFlowEnv(t, nil, func(c *flow.Config) { c.LoopbackAddr = addr })
			_, err := e.m.Start(context.Background(), e.request(flowKeyDefault, flow.RedirectLoopback))
			if !errors.Is(err, flow.ErrInvalidRequest) {
				t.Fatalf("Start with %q: %v, want ErrInvalidRequest", addr, err)
			}
			if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateIdle {
				t.Errorf("state after failed start = %q, want idle", got)
			}
		})
	}
}

// Callbacks whose state is not the pending flow's change nothing.
func TestCallbackStateValidation(t *testing.T) {
	other := connid.ID{Profile: "work", Provider: "honcho"}
	tests := []struct {
		name string
		// query builds the callback query from the real callback of the
		// default profile's flow and that of the "work" profile's flow.
		query func(mine, theirs url.Values) url.Values
	}{
		{"missing state", func(mine, _ url.Values) url.Values {
			return url.Values{"code": mine["code"]}
		}},
		{"empty state", func(mine, _ url.Values) url.Values {
			return url.Values{"code": mine["code"], "state": {""}}
		}},
		{"wrong state", func(mine, _ url.Values) url.Values {
			return url.Values{"code": mine["code"], "state": {strings.Repeat("A", 43)}}
		}},
		{"state of another profile", func(mine, theirs url.Values) url.Values {
			return url.Values{"code": mine["code"], "state": theirs["state"]}
		}},
		{"state repeated", func(mine, theirs url.Values) url.Values {
			return url.Values{"code": mine["code"], "state": {mine.Get("state"), theirs.Get("state")}}
		}},
		{"error without state", func(_, _ url.Values) url.Values {
			return url.Values{"error": {"access_denied"}}
		}},
	}
	for _, tc := range tests {
		for _, via := range []string{"Callback", "loopback"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
				mode := flow.RedirectCallback
				if via == "loopback" {
					mode = flow.RedirectLoopback
				}
				f := e.start(e.request(flowKeyDefault, mode))
				g := e.start(e.request(other, mode))
				mine, theirs := e.consent(f, true).Query(), e.consent(g, true).Query()
				q := tc.query(mine, theirs)

				if via == "Callback" {
					got, err := e.m.Callback(context.Background(), flowKeyDefault, q)
					if !errors.Is(err, flow.ErrInvalidState) {
						t.Fatalf("Callback: %v, want ErrInvalidState", err)
					}
					if got.State != flow.StatePending {
						t.Errorf("Callback returned state %q, want pending", got.State)
					}
				} else {
					u, _ := url.Parse(f.RedirectURI)
					u.RawQuery = q.Encode()
					status, body := flowGet(t, u.String())
					if status != http.StatusBadRequest || strings.Contains(body, "Connected") {
						t.Fatalf("loopback page = %d %q, want 400 without Connected", status, body)
					}
				}
				if got := e.m.Status(context.Background(), flowKeyDefault); got.State != flow.StatePending || got.ID != f.ID {
					t.Fatalf("after a bad callback: %+v, want the same flow pending", got)
				}
				if got := e.m.Status(context.Background(), other).State; got != flow.StatePending {
					t.Fatalf("other profile's flow is %q, want pending", got)
				}
				if n := e.done.Calls(); n != 0 {
					t.Fatalf("Complete called %d times", n)
				}
				// The flow still completes with its own callback.
				if got, err := e.m.Callback(context.Background(), flowKeyDefault, mine); err != nil || got.State != flow.StateConnected {
					t.Fatalf("real callback after a bad one: %q, %v", got.State, err)
				}
			})
		}
	}
}

func TestCallbackReplayed(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	back := e.consent(f, true)
	if status, _ := flowGet(t, back.String()); status != http.StatusOK {
		t.Fatalf("first callback: %d", status)
	}
	// The listener is gone; the router's route sees the replay.
	got, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query())
	if !errors.Is(err, flow.ErrInvalidState) {
		t.Fatalf("replayed callback: %v, want ErrInvalidState", err)
	}
	if got.State != flow.StateConnected {
		t.Errorf("state after replay = %q, want still connected", got.State)
	}
	if n := e.done.Calls(); n != 1 {
		t.Errorf("Complete called %d times, want 1", n)
	}
	if st := e.srv.Stats(); st.AuthorizationCodes != 1 {
		t.Errorf("codes redeemed = %d, want 1", st.AuthorizationCodes)
	}
}

func TestCallbackStateExpires(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectCallback))
	back := e.consent(f, true)

	e.clock.Advance(flow.StateTTL - time.Second)
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StatePending {
		t.Fatalf("state just before expiry = %q, want pending", got)
	}
	e.clock.Advance(time.Second) // the prune timer fires without a new Start
	got := e.m.Status(context.Background(), flowKeyDefault)
	if got.State != flow.StateError || got.AuthorizeURL != "" {
		t.Fatalf("after expiry: %+v, want error without authorize URL", got)
	}
	if _, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Fatalf("callback with an expired state: %v, want ErrInvalidState", err)
	}
	if _, err := e.m.Wait(context.Background(), flowKeyDefault); flowCode(err) != flow.CodeExpired {
		t.Errorf("Wait error = %v, want code %q", err, flow.CodeExpired)
	}
	if n := e.done.Calls(); n != 0 {
		t.Errorf("Complete called %d times", n)
	}
	e.clock.Advance(flow.DefaultErrorReset)
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateIdle {
		t.Errorf("state after reset = %q, want idle", got)
	}
}

func TestLoopbackTimeout(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	e.clock.Advance(flow.DefaultLoopbackTimeout)
	got, err := e.m.Wait(context.Background(), flowKeyDefault)
	if got.State != flow.StateError || flowCode(err) != flow.CodeTimedOut {
		t.Fatalf("after the loopback timeout: %q, %v; want error %q", got.State, err, flow.CodeTimedOut)
	}
	if !strings.Contains(got.Detail, "timed out") || !strings.Contains(got.Detail, "redirect URI") {
		t.Errorf("Detail = %q, want it to say timed out and name the likely cause", got.Detail)
	}
	u, _ := url.Parse(f.RedirectURI)
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("port still bound after the timeout: %v", err)
	}
	ln.Close()
}

func TestDeniedConsent(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	back := e.consent(f, false)
	if back.Query().Get("error") != "access_denied" {
		t.Fatalf("server redirected with %q, want error=access_denied", back.RawQuery)
	}
	status, body := flowGet(t, back.String())
	if status != http.StatusBadRequest || !strings.Contains(body, "Sign-in was denied") || strings.Contains(body, "Connected") {
		t.Fatalf("page = %d %q, want 400 saying the sign-in was denied", status, body)
	}
	got := e.m.Status(context.Background(), flowKeyDefault)
	if got.State != flow.StateError || got.Detail != "Sign-in was denied" {
		t.Fatalf("Status = %+v, want error 'Sign-in was denied'", got)
	}
	if n := e.done.Calls(); n != 0 {
		t.Errorf("Complete called %d times", n)
	}
	e.clock.Advance(flow.DefaultErrorReset - time.Second)
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateError {
		t.Fatalf("state before the reset interval = %q, want error", got)
	}
	e.clock.Advance(time.Second)
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateIdle {
		t.Fatalf("state after the reset interval = %q, want idle", got)
	}
}

// The server's error words reach the page escaped and the status in clean
// form.
func TestCallbackErrorParamEscaped(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectCallback))
	state, _ := url.ParseQuery(mustURL(t, f.AuthorizeURL).RawQuery)
	q := url.Values{
		"state":             {state.Get("state")},
		"error":             {"<script>alert(1)</script>"},
		"error_description": {"bad\r\nthing <b>"},
	}
	got, err := e.m.Callback(context.Background(), flowKeyDefault, q)
	if flowCode(err) != flow.CodeAuthorization || got.State != flow.StateError {
		t.Fatalf("Callback = %q, %v; want error %q", got.State, err, flow.CodeAuthorization)
	}
	if strings.ContainsAny(got.Detail, "\r\n") {
		t.Errorf("Detail keeps control characters: %q", got.Detail)
	}
	rec := httptest.NewRecorder()
	flow.PlainPage(rec, got, err, "")
	body := rec.Body.String()
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("page = %d %s, want 400 plain text", rec.Code, rec.Header().Get("Content-Type"))
	}
	if strings.Count(body, "\n") != 1 || !strings.Contains(body, "(badthing <b>)") {
		t.Errorf("page %q: want one line with the cleaned error", body)
	}
	if strings.Contains(err.Error(), state.Get("state")) {
		t.Errorf("error text holds the state: %v", err)
	}
}

func TestCompleteFailureShowsErrorPage(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	e.done.err = errors.New("disk full")
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	status, body := flowGet(t, e.consent(f, true).String())
	if status != http.StatusInternalServerError || strings.Contains(body, "Connected") {
		t.Fatalf("page = %d %q, want 500 without Connected", status, body)
	}
	got, err := e.m.Wait(context.Background(), flowKeyDefault)
	if got.State != flow.StateError || flowCode(err) != flow.CodeComplete {
		t.Fatalf("flow = %q, %v; want error %q", got.State, err, flow.CodeComplete)
	}
	if n := e.done.Calls(); n != 1 {
		t.Errorf("Complete called %d times, want 1", n)
	}
}

func TestCompletePanicEndsFlow(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	req := e.request(flowKeyDefault, flow.RedirectLoopback)
	req.Complete = func(context.Context, *oauth2.Token) error { panic("bug in the caller") }
	f := e.start(req)
	status, body := flowGet(t, e.consent(f, true).String())
	if status != http.StatusInternalServerError || strings.Contains(body, "Connected") {
		t.Fatalf("page = %d %q, want 500 without Connected", status, body)
	}
	if got, err := e.m.Wait(context.Background(), flowKeyDefault); got.State != flow.StateError || flowCode(err) != flow.CodeComplete {
		t.Fatalf("flow = %q, %v; want error %q", got.State, err, flow.CodeComplete)
	}
}

func TestExchangeFailure(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectCallback))
	back := e.consent(f, true)
	tests := []struct {
		status int
		code   string
		want   string
	}{
		{http.StatusBadRequest, "invalid_grant", flow.CodeExchange},
		{http.StatusTooManyRequests, "", flow.CodeRateLimited},
	}
	for _, tc := range tests {
		e.srv.FailNextTokenRequests(1, tc.status, tc.code)
		got, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query())
		if got.State != flow.StateError || flowCode(err) != tc.want {
			t.Fatalf("token endpoint %d %q: %q, %v; want error %q", tc.status, tc.code, got.State, err, tc.want)
		}
		if n := e.done.Calls(); n != 0 {
			t.Fatalf("Complete called after a failed exchange")
		}
		// Start over for the next case.
		f = e.start(e.request(flowKeyDefault, flow.RedirectCallback))
		back = e.consent(f, true)
	}
}

func TestStartIdempotentWhilePending(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	req := e.request(flowKeyDefault, flow.RedirectLoopback)
	const n = 16
	flows := make([]flow.Flow, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			flows[i], errs[i] = e.m.Start(context.Background(), req)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Start %d: %v", i, errs[i])
		}
		if flows[i].ID != flows[0].ID || flows[i].RedirectURI != flows[0].RedirectURI || flows[i].AuthorizeURL != flows[0].AuthorizeURL {
			t.Fatalf("Start %d returned another flow: %+v vs %+v", i, flows[i], flows[0])
		}
	}
	// One flow: one state timer and one loopback timer, nothing more.
	if got := e.clock.PendingTimers(); got != 2 {
		t.Errorf("%d timers pending, want 2 (one flow)", got)
	}
	// One listener: cancelling the flow frees the only port bound.
	if !e.m.Cancel(context.Background(), flowKeyDefault) {
		t.Fatal("Cancel = false")
	}
	if again := e.start(req); again.ID == flows[0].ID {
		t.Errorf("Start after Cancel returned the cancelled flow")
	}
}

func TestStartConflictAndValidation(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	got, err := e.m.Start(context.Background(), e.request(flowKeyDefault, flow.RedirectCallback))
	if !errors.Is(err, flow.ErrConflict) || got.ID != f.ID {
		t.Errorf("Start with another redirect mode: %v, %q; want ErrConflict with the pending flow", err, got.ID)
	}

	bad := []struct {
		name string
		mod  func(*flow.Request)
	}{
		{"no profile", func(r *flow.Request) { r.Key.Profile = "" }},
		{"no complete", func(r *flow.Request) { r.Complete = nil }},
		{"no client id", func(r *flow.Request) { r.Config.ClientID = "" }},
		{"no auth url", func(r *flow.Request) { r.Config.Endpoint.AuthURL = "" }},
		{"unknown method", func(r *flow.Request) { r.Method = "carrier-pigeon" }},
		{"unknown redirect", func(r *flow.Request) { r.Redirect = "teleport" }},
		{"no method", func(r *flow.Request) { r.Method = "" }},
		{"browser without redirect", func(r *flow.Request) { r.Redirect = "" }},
		{"device with redirect", func(r *flow.Request) { r.Method, r.DeviceSupported = flow.MethodDevice, true }},
		{"relative callback", func(r *flow.Request) { r.Redirect, r.CallbackURL = flow.RedirectCallback, "/callback" }},
		{"reserved param", func(r *flow.Request) { r.AuthParams = url.Values{"redirect_uri": {"http://evil/"}} }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request(connid.ID{Profile: "p", Provider: "honcho"}, flow.RedirectLoopback)
			tc.mod(&req)
			if _, err := e.m.Start(context.Background(), req); !errors.Is(err, flow.ErrInvalidRequest) {
				t.Errorf("Start: %v, want ErrInvalidRequest", err)
			}
		})
	}
}

func TestCancelFreesPort(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	waited := make(chan error, 1)
	go func() {
		_, err := e.m.Wait(context.Background(), flowKeyDefault)
		waited <- err
	}()
	if !e.m.Cancel(context.Background(), flowKeyDefault) {
		t.Fatal("Cancel = false, want true")
	}
	u, _ := url.Parse(f.RedirectURI)
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("binding the cancelled flow's port: %v", err)
	}
	ln.Close()
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateIdle {
		t.Errorf("state after Cancel = %q, want idle", got)
	}
	if err := <-waited; !errors.Is(err, flow.ErrCancelled) {
		t.Errorf("Wait = %v, want ErrCancelled", err)
	}
	if e.m.Cancel(context.Background(), flowKeyDefault) {
		t.Errorf("second Cancel = true, want false")
	}
	if got := e.clock.PendingTimers(); got != 1 {
		t.Errorf("%d timers pending after Cancel, want only the reset to idle", got)
	}
	if got, err := e.m.Wait(context.Background(), flowKeyDefault); got.State != flow.StateIdle || !errors.Is(err, flow.ErrCancelled) {
		t.Errorf("Wait after Cancel = %q, %v; want idle, ErrCancelled", got.State, err)
	}
}

func TestConnectedStaysObservable(t *testing.T) {
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, nil)
	e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	f := e.m.Status(context.Background(), flowKeyDefault)
	if status, _ := flowGet(t, f.AuthorizeURL); status != http.StatusOK {
		t.Fatalf("flow failed: %d", status)
	}
	e.clock.Advance(time.Minute)
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateConnected {
		t.Fatalf("a minute after connecting: %q, want connected", got)
	}
	e.clock.Advance(flow.DefaultConnectedReset - time.Minute)
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateIdle {
		t.Fatalf("after the connected reset: %q, want idle", got)
	}
}

func TestCloseEndsFlows(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	waited := make(chan error, 1)
	go func() {
		_, err := e.m.Wait(context.Background(), flowKeyDefault)
		waited <- err
	}()
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; flowCode(err) != flow.CodeClosed {
		t.Errorf("Wait = %v, want code %q", err, flow.CodeClosed)
	}
	u, _ := url.Parse(f.RedirectURI)
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatalf("port still bound after Close: %v", err)
	}
	ln.Close()
	if _, err := e.m.Start(context.Background(), e.request(flowKeyDefault, flow.RedirectLoopback)); !errors.Is(err, flow.ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	if err := e.m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLoopbackServesOnlyCallback(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	u, _ := url.Parse(f.RedirectURI)
	for _, p := range []string{"/", "/callback/", "/favicon.ico", "/other?state=x"} {
		if status, _ := flowGet(t, "http://"+u.Host+p); status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, status)
		}
	}
	resp, err := http.Post(f.RedirectURI, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /callback = %d, want 405", resp.StatusCode)
	}
	// A HEAD with the real state (a link prefetcher) must not spend it.
	state := mustURL(t, f.AuthorizeURL).Query().Get("state")
	resp, err = http.Head(f.RedirectURI + "?code=abc&state=" + url.QueryEscape(state))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD /callback = %d, want 405", resp.StatusCode)
	}
	if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StatePending {
		t.Errorf("state = %q, want pending", got)
	}
}

func TestAuthorizeURLParams(t *testing.T) {
	tests := []struct {
		name       string
		params     url.Values
		wantSource string // "" = absent
		wantPath   string // "" = absent
	}{
		{"none", nil, "", ""},
		{"empty values", url.Values{"source": {""}, "config_path": {""}}, "", ""},
		{"source only", url.Values{"source": {"hermes-desktop"}}, "hermes-desktop", ""},
		{"both", url.Values{"source": {"hermes-cli"}, "config_path": {"~/.hermes/profiles/work/honcho.json"}}, "hermes-cli", "~/.hermes/profiles/work/honcho.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFlowEnv(t, nil, nil)
			req := e.request(flowKeyDefault, flow.RedirectCallback)
			req.AuthParams = tc.params
			f := e.start(req)
			q := mustURL(t, f.AuthorizeURL).Query()
			for name, want := range map[string]string{"source": tc.wantSource, "config_path": tc.wantPath} {
				if _, present := q[name]; present != (want != "") || q.Get(name) != want {
					t.Errorf("%s = %q (present %v), want %q", name, q.Get(name), present, want)
				}
			}
			if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
				t.Errorf("PKCE: method %q, challenge %q", q.Get("code_challenge_method"), q.Get("code_challenge"))
			}
			if len(q.Get("state")) != 43 { // 256 bits, base64url
				t.Errorf("state has %d characters, want 43", len(q.Get("state")))
			}
			if q.Get("client_id") != e.srv.ClientID() || q.Get("redirect_uri") != req.CallbackURL || q.Get("response_type") != "code" {
				t.Errorf("authorize query = %v", q)
			}
		})
	}
}

func TestStatesAreUnique(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	seen := map[string]bool{}
	for i := range 20 {
		key := connid.ID{Profile: "p" + itoa(i), Provider: "honcho"}
		q := mustURL(t, e.start(e.request(key, flow.RedirectCallback)).AuthorizeURL).Query()
		if seen[q.Get("state")] || seen[q.Get("code_challenge")] {
			t.Fatalf("state or challenge repeated after %d flows", i)
		}
		seen[q.Get("state")], seen[q.Get("code_challenge")] = true, true
	}
}

func TestFlowNeverLogsSecrets(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, func(c *flow.Config) { c.Logger = zerolog.New(w) })
	f := e.start(e.request(flowKeyDefault, flow.RedirectLoopback))
	back := e.consent(f, true)
	flowGet(t, back.String())
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	if !strings.Contains(logs, f.ID) {
		t.Fatalf("logs do not mention the flow: %s", logs)
	}
	tok := e.done.toks[0]
	for name, secret := range map[string]string{
		"state": back.Query().Get("state"), "code": back.Query().Get("code"),
		"access token": tok.AccessToken, "refresh token": tok.RefreshToken,
		"challenge": mustURL(t, f.AuthorizeURL).Query().Get("code_challenge"),
	} {
		if secret == "" || strings.Contains(logs, secret) {
			t.Errorf("logs hold the %s (or it is empty)", name)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func itoa(i int) string { return strconv.Itoa(i) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Unanswered runs when a browser flow ends without an authorization
// response (cancelled, expired), not when it completes or the Manager
// closes.
func TestUnanswered(t *testing.T) {
	e := newFlowEnv(t, nil, nil)
	var calls atomic.Int32
	req := func() flow.Request {
		r := e.request(flowKeyDefault, flow.RedirectCallback)
		r.Unanswered = func() { calls.Add(1) }
		return r
	}
	e.start(req())
	e.m.Cancel(context.Background(), flowKeyDefault)
	if n := calls.Load(); n != 1 {
		t.Fatalf("after Cancel: %d calls, want 1", n)
	}
	e.m.Cancel(context.Background(), flowKeyDefault) // nothing pending: no second call
	f := e.start(req())
	if _, err := e.m.Callback(context.Background(), flowKeyDefault, e.consent(f, true).Query()); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("after a completed flow: %d calls, want still 1", n)
	}
	e.clock.Advance(flow.DefaultConnectedReset)
	e.start(req())
	e.clock.Advance(flow.StateTTL)
	if _, err := e.m.Wait(context.Background(), flowKeyDefault); flowCode(err) != flow.CodeExpired {
		t.Fatalf("Wait = %v, want expired", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("after an expired flow: %d calls, want 2", n)
	}
	e.clock.Advance(flow.DefaultErrorReset)
	e.start(req())
	e.m.Close()
	if n := calls.Load(); n != 2 {
		t.Errorf("after Close: %d calls, want still 2", n)
	}
}

// TestAuthorizationResponseIssuer: the authorization response's iss is
// checked (RFC 9207): a different one, or none when the metadata announce
// one, ends the flow before the code is exchanged; the right one, or none
// when none is announced, completes it.
func TestAuthorizationResponseIssuer(t *testing.T) {
	const issuer = "https://as.example"
	for _, tt := range []struct {
		name     string
		required bool
		iss      []string // nil: no iss parameter
		ok       bool
	}{
		{"right", true, []string{issuer}, true},
		{"absent, not announced", false, nil, true},
		{"absent, announced", true, nil, false},
		{"another", false, []string{"https://evil.example"}, false},
		{"twice", false, []string{issuer, issuer}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newFlowEnv(t, nil, nil)
			req := e.request(flowKeyDefault, flow.RedirectCallback)
			req.Issuer, req.IssuerRequired = issuer, tt.required
			f := e.start(req)
			q := e.consent(f, true).Query()
			if tt.iss != nil {
				q["iss"] = tt.iss
			}
			got, err := e.m.Callback(context.Background(), flowKeyDefault, q)
			if tt.ok {
				if err != nil || got.State != flow.StateConnected {
					t.Fatalf("Callback = %+v, %v; want connected", got, err)
				}
				return
			}
			if err == nil || got.State != flow.StateError || !strings.Contains(got.Detail, "RFC 9207") {
				t.Fatalf("Callback = %+v, %v; want the response refused", got, err)
			}
			if n := e.done.Calls(); n != 0 {
				t.Errorf("Complete called %d times; want none", n)
			}
			if st := e.srv.Stats(); st.AuthorizationCodes != 0 {
				t.Errorf("the code was exchanged: %+v", st)
			}
		})
	}
}
