package oauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/oauthtest"
	"golang.org/x/oauth2"
)

// flowClock is a manual [oauth.FlowClock]: time moves only with Advance,
// which runs the timers that came due, in order, outside its lock.
type flowClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*flowTimer
}

type flowTimer struct {
	c       *flowClock
	when    time.Time
	f       func()
	stopped bool
	fired   bool
}

func newFlowClock() *flowClock {
	return &flowClock{now: time.Date(2026, 11, 28, 21, 30, 0, 0, time.UTC)}
}

func (c *flowClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *flowClock) AfterFunc(d time.Duration, f func()) oauth.FlowTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &flowTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *flowTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := !t.stopped && !t.fired
	t.stopped = true
	return active
}

// Advance moves the clock by d and runs every timer due by then.
func (c *flowClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	for {
		var due []*flowTimer
		for _, t := range c.timers {
			if !t.stopped && !t.fired && !t.when.After(c.now) {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			break
		}
		sort.Slice(due, func(i, j int) bool { return due[i].when.Before(due[j].when) })
		t := due[0]
		t.fired = true
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.mu.Unlock()
}

// pendingTimers counts timers that have neither fired nor been stopped.
func (c *flowClock) pendingTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// completer counts Complete calls and records the tokens.
type completer struct {
	mu    sync.Mutex
	calls int
	toks  []*oauth2.Token
	err   error // returned by every call
}

func (c *completer) Complete(_ context.Context, tok *oauth2.Token) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.toks = append(c.toks, tok)
	return c.err
}

func (c *completer) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// flowEnv is a manager on a manual clock, binding OS-assigned loopback
// ports, next to an oauthtest server.
type flowEnv struct {
	t     *testing.T
	clock *flowClock
	m     *oauth.FlowManager
	srv   *oauthtest.Server
	done  *completer
}

func newFlowEnv(t *testing.T, srvOpts []oauthtest.Option, opts ...oauth.FlowOption) *flowEnv {
	t.Helper()
	e := &flowEnv{t: t, clock: newFlowClock(), done: &completer{}}
	e.srv = oauthtest.NewServer(srvOpts...)
	t.Cleanup(e.srv.Close)
	all := append([]oauth.FlowOption{
		oauth.WithFlowClock(e.clock),
		oauth.WithLoopbackAddr("127.0.0.1:0"),
		oauth.WithFlowHTTPClient(e.srv.Client()),
	}, opts...)
	e.m = oauth.NewFlowManager(all...)
	t.Cleanup(func() { e.m.Close() })
	return e
}

var flowKeyDefault = oauth.FlowKey{Profile: "default", Provider: "honcho"}

// request is a browser flow request against the env's server.
func (e *flowEnv) request(key oauth.FlowKey, redirect oauth.RedirectMode) oauth.FlowRequest {
	req := oauth.FlowRequest{
		Key:      key,
		Method:   oauth.MethodBrowser,
		Redirect: redirect,
		Config:   *e.srv.OAuth2Config("", "write"),
		Complete: e.done.Complete,
	}
	if redirect == oauth.RedirectCallback {
		req.CallbackURL = "http://127.0.0.1:9/api/memory/profiles/" + key.Profile + "/providers/" + key.Provider + "/callback"
	}
	return req
}

func (e *flowEnv) start(req oauth.FlowRequest) oauth.Flow {
	e.t.Helper()
	f, err := e.m.Start(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	if f.State != oauth.FlowPending {
		e.t.Fatalf("Start: state %q, want pending", f.State)
	}
	return f
}

// consent approves or denies f's authorization request on the server and
// returns the redirect the browser would follow.
func (e *flowEnv) consent(f oauth.Flow, approve bool) *url.URL {
	e.t.Helper()
	u, err := e.srv.Consent(context.Background(), e.srv.Client(), f.AuthorizeURL, approve)
	if err != nil {
		e.t.Fatalf("Consent: %v", err)
	}
	return u
}

// get fetches u without following redirects and returns status and body.
func flowGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET callback: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading callback page: %v", err)
	}
	return resp.StatusCode, string(b)
}

// waitFlow waits, with a deadline, until key's flow leaves pending.
func waitFlow(t *testing.T, m *oauth.FlowManager, key oauth.FlowKey) (oauth.Flow, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := m.Wait(ctx, key)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flow still %q after 30s", f.State)
	}
	return f, err
}

// flowCode returns the FlowFailure code of err, or "".
func flowCode(err error) string {
	var fe *oauth.FlowFailure
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

// countingHandler counts requests and delegates.
type countingHandler struct {
	n atomic.Int64
	h http.Handler
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.h.ServeHTTP(w, r)
}
