package flow_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/flow"
)

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
// ports, next to a honchotest server.
type flowEnv struct {
	t     *testing.T
	clock *testkit.Clock
	m     *flow.Manager
	srv   *honchofake.Server
	done  *completer
}

// newFlowEnv starts the env; cfg, if not nil, changes the manager's
// configuration after the env filled in its clock, loopback address and
// HTTP client.
func newFlowEnv(t *testing.T, srvOpts []honchofake.Option, cfg func(*flow.Config)) *flowEnv {
	t.Helper()
	e := &flowEnv{t: t, clock: testkit.NewClock(), done: &completer{}}
	e.srv = honchofake.NewServer(srvOpts...)
	t.Cleanup(e.srv.Close)
	c := flow.Config{Clock: e.clock, LoopbackAddr: "127.0.0.1:0", HTTPClient: e.srv.Client(), Words: handlers.FlowWords}
	if cfg != nil {
		cfg(&c)
	}
	e.m = flow.NewManager(c)
	t.Cleanup(func() { e.m.Close() })
	return e
}

// inMemory are the server options of an env made inside a
// [synctest.Test] bubble: there x/oauth2's device polling interval, whole
// seconds of real time outside, passes as soon as everything waits.
var inMemory = []honchofake.Option{oauthfake.WithInMemoryNetwork()}

var flowKeyDefault = connid.ID{Profile: "default", Provider: "honcho"}

// request is a browser flow request against the env's server.
func (e *flowEnv) request(key connid.ID, redirect flow.RedirectMode) flow.Request {
	req := flow.Request{
		Key:      key,
		Method:   flow.MethodBrowser,
		Redirect: redirect,
		Config:   *e.srv.OAuth2Config("", "write"),
		Complete: e.done.Complete,
	}
	if redirect == flow.RedirectCallback {
		req.CallbackURL = "http://127.0.0.1:9/api/memory/profiles/" + key.Profile + "/providers/" + key.Provider + "/callback"
	}
	return req
}

func (e *flowEnv) start(req flow.Request) flow.Flow {
	e.t.Helper()
	f, err := e.m.Start(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	if f.State != flow.StatePending {
		e.t.Fatalf("Start: state %q, want pending", f.State)
	}
	return f
}

// consent approves or denies f's authorization request on the server and
// returns the redirect the browser would follow.
func (e *flowEnv) consent(f flow.Flow, approve bool) *url.URL {
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
func waitFlow(t *testing.T, m *flow.Manager, key connid.ID) (flow.Flow, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := m.Wait(ctx, key)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flow still %q after 30s", f.State)
	}
	return f, err
}

// flowCode returns the Failure code of err, or "".
func flowCode(err error) string {
	var fe *flow.Failure
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
