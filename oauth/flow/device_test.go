package flow_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
)

// deviceRequest is a device flow request whose device support comes from
// the server's RFC 8414 metadata, as a provider would set it.
func (e *flowEnv) deviceRequest(t *testing.T, key connid.ID) flow.Request {
	t.Helper()
	md, err := authserver.Discover(context.Background(), e.srv.Client(), e.srv.URL)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	req := e.request(key, "")
	req.Method = flow.MethodDevice
	req.DeviceSupported = md.SupportsDeviceFlow()
	return req
}

func TestDeviceFlowApproved(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		e := newFlowEnv(t, inMemory, nil)
		f := e.start(e.deviceRequest(t, flowKeyDefault))
		if f.Method != flow.MethodDevice || f.UserCode == "" || f.VerificationURI != e.srv.DeviceVerificationURL() {
			t.Fatalf("device flow = %+v", f)
		}
		if !strings.HasPrefix(f.AuthorizeURL, e.srv.DeviceVerificationURL()+"?") || !strings.Contains(f.AuthorizeURL, "user_code=") {
			t.Errorf("AuthorizeURL = %q, want verification_uri_complete", f.AuthorizeURL)
		}
		if f.RedirectURI != "" {
			t.Errorf("device flow has a redirect URI %q", f.RedirectURI)
		}
		if d := f.ExpiresAt.Sub(e.clock.Now()); d < oauthfake.DefaultDeviceCodeTTL-5*time.Second || d > oauthfake.DefaultDeviceCodeTTL {
			t.Errorf("ExpiresAt is %v after now, want about %v", d, oauthfake.DefaultDeviceCodeTTL)
		}
		if err := e.srv.ApproveDevice(f.UserCode); err != nil {
			t.Fatalf("ApproveDevice: %v", err)
		}
		got, err := waitFlow(t, e.m, flowKeyDefault)
		if err != nil || got.State != flow.StateConnected {
			t.Fatalf("Wait = %q, %v; want connected", got.State, err)
		}
		if got.UserCode != "" {
			t.Errorf("a finished flow still shows its user code")
		}
		if n := e.done.Calls(); n != 1 {
			t.Fatalf("Complete called %d times, want 1", n)
		}
		if tok := e.done.toks[0]; !e.srv.Active(tok.AccessToken) || tok.RefreshToken == "" {
			t.Errorf("Complete got an unusable token")
		}
		if st := e.srv.Stats(); st.DeviceGrants != 1 {
			t.Errorf("device grants = %d, want 1", st.DeviceGrants)
		}
	})
}

// slow_down is the library's business: the next poll comes 5 s later, and
// the server, which answers slow_down again to a poll that is too fast,
// sees exactly two polls.
// slow_down (RFC 8628 section 3.5) keeps the flow polling: it is not a
// failure. (x/oauth2 adds the 5 s to the interval; waiting for the next poll
// would only test x/oauth2, and cost the suite 6 s.)
func TestDeviceFlowSlowDown(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		e := newFlowEnv(t, inMemory, nil)
		e.srv.SlowDownNextPoll()
		polled := make(chan struct{}, 1)
		e.srv.SetTokenHook(func(http.ResponseWriter, *http.Request) bool {
			select {
			case polled <- struct{}{}:
			default:
			}
			return false // answered as usual: slow_down
		})
		f := e.start(e.deviceRequest(t, flowKeyDefault))
		select {
		case <-polled: // the first poll comes after the 1 s interval
		case <-time.After(10 * time.Second):
			t.Fatal("no poll within 10 s")
		}
		// Had slow_down failed the flow, it would leave pending within moments.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if got, err := e.m.Wait(ctx, flowKeyDefault); got.State != flow.StatePending || got.ID != f.ID {
			t.Fatalf("after slow_down the flow is %q (%v), want still pending", got.State, err)
		}
		if !e.m.Cancel(context.Background(), flowKeyDefault) {
			t.Error("the flow could not be cancelled while polling")
		}
	})
}

func TestDeviceFlowFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		act        func(e *flowEnv, f flow.Flow, skew *atomic.Int64) error
		wantCode   string
		wantDetail string
	}{
		{"denied", func(e *flowEnv, f flow.Flow, _ *atomic.Int64) error {
			return e.srv.DenyDevice(f.UserCode)
		}, flow.CodeAccessDenied, "Sign-in was denied"},
		{"expired", func(_ *flowEnv, _ flow.Flow, skew *atomic.Int64) error {
			skew.Store(int64(11 * time.Minute)) // the server's clock passes the code's expiry
			return nil
		}, flow.CodeExpired, "The code expired before it was approved"},
		{"rate limited while polling", func(e *flowEnv, _ flow.Flow, _ *atomic.Int64) error {
			e.srv.FailNextTokenRequests(1, http.StatusTooManyRequests, "")
			return nil
		}, flow.CodeRateLimited, "Too many sign-in attempts; wait a minute and try again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
				var skew atomic.Int64
				now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
				e := newFlowEnv(t, []honchofake.Option{honchofake.WithClock(clock.Func(now)), oauthfake.WithInMemoryNetwork()}, nil)
				f := e.start(e.deviceRequest(t, flowKeyDefault))
				if err := tc.act(e, f, &skew); err != nil {
					t.Fatal(err)
				}
				got, err := waitFlow(t, e.m, flowKeyDefault)
				if got.State != flow.StateError || flowCode(err) != tc.wantCode || got.Detail != tc.wantDetail {
					t.Fatalf("flow = %q %q, %v; want error %q %q", got.State, got.Detail, err, tc.wantCode, tc.wantDetail)
				}
				if n := e.done.Calls(); n != 0 {
					t.Errorf("Complete called %d times", n)
				}
				e.clock.Advance(flow.DefaultErrorReset)
				if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateIdle {
					t.Errorf("state after the reset = %q, want idle", got)
				}
			})
		})
	}
}

func TestDeviceFlowRateLimitedAtStart(t *testing.T) {
	t.Parallel()
	e := newFlowEnv(t, nil, nil)
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer busy.Close()
	req := e.deviceRequest(t, flowKeyDefault)
	req.Config.Endpoint.DeviceAuthURL = busy.URL
	got, err := e.m.Start(context.Background(), req)
	if flowCode(err) != flow.CodeRateLimited {
		t.Fatalf("Start = %v, want code %q", err, flow.CodeRateLimited)
	}
	if got.State != flow.StateError || got.Detail != "Too many sign-in attempts; wait a minute and try again" {
		t.Fatalf("flow = %q %q", got.State, got.Detail)
	}
	if st := e.m.Status(context.Background(), flowKeyDefault); st.State != flow.StateError {
		t.Errorf("Status = %q, want error", st.State)
	}
}

func TestDeviceFlowUnsupported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		server []honchofake.Option
		mod    func(*flow.Request)
	}{
		{"metadata without device grant", []honchofake.Option{honchofake.WithDeviceFlow(false)}, func(r *flow.Request) {
			r.Config.Endpoint.DeviceAuthURL = "http://127.0.0.1:9/device" // configured, but the server says no
		}},
		{"support unknown", nil, func(r *flow.Request) { r.DeviceSupported = false }},
		{"no device endpoint", nil, func(r *flow.Request) { r.Config.Endpoint.DeviceAuthURL = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newFlowEnv(t, tc.server, nil)
			req := e.deviceRequest(t, flowKeyDefault)
			tc.mod(&req)
			if _, err := e.m.Start(context.Background(), req); !errors.Is(err, flow.ErrDeviceUnsupported) {
				t.Fatalf("Start: %v, want ErrDeviceUnsupported", err)
			}
			if got := e.m.Status(context.Background(), flowKeyDefault).State; got != flow.StateIdle {
				t.Errorf("state = %q, want idle", got)
			}
		})
	}
}

// countingTransport counts requests by URL path.
type countingTransport struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

func TestDeviceStartConcurrentAndCancel(t *testing.T) {
	t.Parallel()
	ct := &countingTransport{}
	e := newFlowEnv(t, nil, func(c *flow.Config) { c.HTTPClient = &http.Client{Transport: ct} })
	req := e.deviceRequest(t, flowKeyDefault)
	const n = 16
	flows := make([]flow.Flow, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			flows[i], errs[i] = e.m.Start(context.Background(), req)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || flows[i].ID != flows[0].ID || flows[i].UserCode != flows[0].UserCode {
			t.Fatalf("Start %d = %+v, %v; want the one flow", i, flows[i], errs[i])
		}
	}
	if got := ct.count("/oauth/device_authorization"); got != 1 {
		t.Fatalf("device authorization requests = %d, want 1", got)
	}

	if !e.m.Cancel(context.Background(), flowKeyDefault) {
		t.Fatal("Cancel = false")
	}
	if err := e.srv.ApproveDevice(flows[0].UserCode); err != nil {
		t.Fatal(err)
	}
	// Close waits for the poller; a poller that ignored Cancel would block it
	// until the device code expires.
	closed := make(chan struct{})
	go func() { e.m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return: the device poller outlived Cancel")
	}
	if n := e.done.Calls(); n != 0 {
		t.Errorf("a cancelled device flow called Complete %d times", n)
	}
	if got := e.srv.Stats().DeviceGrants; got != 0 {
		t.Errorf("a cancelled device flow redeemed its code")
	}
}

// TestDeviceAuthorizationFollowsNoRedirect: a device authorization
// endpoint that redirects to another origin fails the start, and the
// other origin receives nothing.
func TestDeviceAuthorizationFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	var stolen atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stolen.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/device", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	e := newFlowEnv(t, nil, nil)
	req := e.deviceRequest(t, flowKeyDefault)
	req.Config.Endpoint.DeviceAuthURL = redirect.URL + "/device"
	f, err := e.m.Start(context.Background(), req)
	if err == nil || f.State != flow.StateError {
		t.Fatalf("Start = %+v, %v; want the start refused", f, err)
	}
	if n := stolen.Load(); n != 0 {
		t.Errorf("the other origin received %d requests", n)
	}
}
