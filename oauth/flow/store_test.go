package flow_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/flow"
)

// The secrets of a pending browser flow live in the Store: the state and
// the PKCE verifier of its authorization request, claimed once by the
// callback and forgotten when the flow ends.
func TestPendingFlowStore(t *testing.T) {
	store := &testkit.FlowStore{}
	e := newFlowEnv(t, nil, func(c *flow.Config) { c.Store = store })
	f := e.start(e.request(flowKeyDefault, flow.RedirectCallback))

	p, ok := store.LastPut(flowKeyDefault)
	if !ok || store.Puts() != 1 {
		t.Fatalf("after Start the store holds %+v (%v), %d puts; want the flow's record", p, ok, store.Puts())
	}
	q := mustURL(t, f.AuthorizeURL).Query()
	sum := sha256.Sum256([]byte(p.Verifier))
	if p.ID != f.ID || p.State != q.Get("state") || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") || !p.ExpiresAt.Equal(f.ExpiresAt) {
		t.Fatalf("record = %+v; want the flow's id, state, verifier of its challenge and expiry", p)
	}

	// A store that cannot claim: the callback changes nothing.
	back := e.consent(f, true)
	store.FailClaims(errors.New("database down"))
	if _, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Fatalf("Callback with a failing store: %v, want ErrInvalidState", err)
	}
	if got := e.m.Status(context.Background(), flowKeyDefault); got.State != flow.StatePending {
		t.Fatalf("flow after a failed claim: %s, want still pending", got.State)
	}
	store.FailClaims(nil)

	if got, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); err != nil || got.State != flow.StateConnected {
		t.Fatalf("Callback = %s, %v; want connected", got.State, err)
	}
	if got, ok := store.Get(flowKeyDefault); !ok || got.State != flow.StateConnected {
		t.Errorf("the store reports %+v (%v), want the flow connected", got, ok)
	}
	if _, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Errorf("replayed callback: %v, want ErrInvalidState", err)
	}

	// A cancelled flow's record is deleted.
	key := connid.ID{Profile: "work", Provider: "honcho"}
	e.start(e.request(key, flow.RedirectCallback))
	e.m.Cancel(context.Background(), key)
	if got, ok := store.Get(key); !ok || got.State != flow.StateIdle || got.Detail != "Cancelled" {
		t.Errorf("the store reports the cancelled flow as %+v (%v)", got, ok)
	}
	e.clock.Advance(flow.DefaultErrorReset)
	if _, ok := store.Get(key); ok {
		t.Error("a cancelled flow's record outlived its reset")
	}
}

// A state that another holder of a shared store claimed is spent here too.
func TestPendingFlowStoreSingleUse(t *testing.T) {
	store := &testkit.FlowStore{}
	e := newFlowEnv(t, []honchofake.Option{honchofake.WithAutoApprove()}, func(c *flow.Config) { c.Store = store })
	f := e.start(e.request(flowKeyDefault, flow.RedirectCallback))
	p, _ := store.LastPut(flowKeyDefault)
	if _, err := store.Claim(context.Background(), flowKeyDefault, p.State); err != nil {
		t.Fatal(err) // another instance claimed it
	}
	back := e.consent(f, true)
	if _, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Fatalf("callback of a state claimed elsewhere: %v, want ErrInvalidState", err)
	}
	if n := e.done.Calls(); n != 0 {
		t.Errorf("Complete called %d times for a state claimed elsewhere", n)
	}
}

// A flow started on one instance completes on another that shares its
// Store: the callback claims the state there, exchanges the code and stores
// the grant with what Resume gives for the key. Without Resume the other
// instance refuses the callback and leaves the state alone. The callback
// request's context gives the completion its values but not its end: a
// browser that leaves at once does not abandon a claimed state.
func TestFlowCompletesOnAnotherInstance(t *testing.T) {
	store := &testkit.FlowStore{}
	a := newFlowEnv(t, nil, func(c *flow.Config) { c.Store = store })
	other := &completer{}
	var resumed []connid.ID
	type requestKey struct{}
	b := flow.NewManager(flow.Config{Store: store, Clock: a.clock, HTTPClient: a.srv.Client(),
		Resume: func(ctx context.Context, key connid.ID, _ oauth2.Config, data []byte) (flow.Completion, error) {
			if string(data) != `{"tokens_only":true}` {
				t.Errorf("Resume's data %q; want the starting request's", data)
			}
			if ctx.Value(requestKey{}) != "r1" || ctx.Err() != nil {
				t.Errorf("Resume's context: value %v, err %v; want the request's value and no end", ctx.Value(requestKey{}), ctx.Err())
			}
			resumed = append(resumed, key)
			return flow.Completion{Complete: other.Complete}, nil
		}})
	t.Cleanup(func() { b.Close() })
	c := flow.NewManager(flow.Config{Store: store, Clock: a.clock, HTTPClient: a.srv.Client()}) // no Resume
	t.Cleanup(func() { c.Close() })

	req := a.request(flowKeyDefault, flow.RedirectCallback)
	req.ResumeData = []byte(`{"tokens_only":true}`) // the starter's options, for whoever completes
	f := a.start(req)
	back := a.consent(f, true)
	if _, err := c.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Fatalf("callback on an instance without Resume: %v, want ErrInvalidState", err)
	}
	if got, ok := store.Get(flowKeyDefault); !ok || got.State != flow.StatePending {
		t.Fatal("an instance without Resume claimed the state")
	}
	gone, leave := context.WithCancel(context.WithValue(context.Background(), requestKey{}, "r1"))
	leave() // the browser went away as it sent the callback
	got, err := b.Callback(gone, flowKeyDefault, back.Query())
	if err != nil || got.State != flow.StateConnected || got.ID != f.ID {
		t.Fatalf("callback on the other instance = %+v, %v; want flow %s connected", got, err, f.ID)
	}
	if other.Calls() != 1 || a.done.Calls() != 0 || len(resumed) != 1 || resumed[0] != flowKeyDefault {
		t.Fatalf("Complete calls: other instance %d, starting instance %d; resumed %v", other.Calls(), a.done.Calls(), resumed)
	}
	if tok := other.toks[0]; !a.srv.Active(tok.RefreshToken) {
		t.Error("the grant stored on the other instance is not active at the server")
	}
	if _, err := b.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Errorf("replayed callback: %v, want ErrInvalidState", err)
	}
	// A new sign-in on A is a new flow, not A's copy of the one that
	// completed on B (its state is spent: its link would be a dead end).
	again := a.start(a.request(flowKeyDefault, flow.RedirectCallback))
	if again.ID == f.ID || again.State != flow.StatePending || again.AuthorizeURL == f.AuthorizeURL {
		t.Errorf("Start after the flow completed elsewhere = %+v, want a new pending flow", again)
	}
}

// A flow completed on another instance reports a client the token endpoint
// rejects to the completion Resume gave, as the starting instance's
// Request.ClientRejected would have been told.
func TestResumedFlowReportsRejectedClient(t *testing.T) {
	store := &testkit.FlowStore{}
	a := newFlowEnv(t, nil, func(c *flow.Config) { c.Store = store })
	rejected := 0
	b := flow.NewManager(flow.Config{Store: store, Clock: a.clock, HTTPClient: a.srv.Client(),
		Resume: func(context.Context, connid.ID, oauth2.Config, []byte) (flow.Completion, error) {
			return flow.Completion{Complete: (&completer{}).Complete, ClientRejected: func() { rejected++ }}, nil
		}})
	t.Cleanup(func() { b.Close() })

	f := a.start(a.request(flowKeyDefault, flow.RedirectCallback))
	back := a.consent(f, true)
	a.srv.FailNextTokenRequests(1, http.StatusUnauthorized, "invalid_client")
	if _, err := b.Callback(context.Background(), flowKeyDefault, back.Query()); err == nil {
		t.Fatal("the callback succeeded although the token endpoint rejected the client")
	}
	if rejected != 1 {
		t.Fatalf("ClientRejected was called %d times on the completing instance; want once", rejected)
	}
}

// Every instance sharing the store reports and cancels every flow: B sees
// A's pending flow, cancels it, and A reports it cancelled and refuses its
// callback; a flow completed on B is connected on A too.
func TestStatusAndCancelFromAnotherInstance(t *testing.T) {
	store := &testkit.FlowStore{}
	a := newFlowEnv(t, nil, func(c *flow.Config) { c.Store = store })
	other := &completer{}
	b := flow.NewManager(flow.Config{Store: store, Clock: a.clock, HTTPClient: a.srv.Client(),
		Resume: func(context.Context, connid.ID, oauth2.Config, []byte) (flow.Completion, error) {
			return flow.Completion{Complete: other.Complete}, nil
		}})
	t.Cleanup(func() { b.Close() })

	f := a.start(a.request(flowKeyDefault, flow.RedirectCallback))
	if got := b.Status(context.Background(), flowKeyDefault); got.ID != f.ID || got.State != flow.StatePending || got.AuthorizeURL != f.AuthorizeURL {
		t.Fatalf("B reports %+v, want A's pending flow", got)
	}
	back := a.consent(f, true)
	if !b.Cancel(context.Background(), flowKeyDefault) {
		t.Fatal("B could not cancel A's flow")
	}
	if got := a.m.Status(context.Background(), flowKeyDefault); got.ID != f.ID || got.State != flow.StateIdle || got.Detail != "Cancelled" {
		t.Fatalf("A reports %+v after B cancelled it", got)
	}
	if _, err := a.m.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Errorf("the callback of a flow cancelled elsewhere: %v, want ErrInvalidState", err)
	}

	a.clock.Advance(flow.DefaultErrorReset) // the key is idle again
	f = a.start(a.request(flowKeyDefault, flow.RedirectCallback))
	back = a.consent(f, true)
	if got, err := b.Callback(context.Background(), flowKeyDefault, back.Query()); err != nil || got.State != flow.StateConnected {
		t.Fatalf("completion on B = %+v, %v", got, err)
	}
	if got := a.m.Status(context.Background(), flowKeyDefault); got.ID != f.ID || got.State != flow.StateConnected {
		t.Errorf("A reports %+v after B completed the flow, want connected", got)
	}
	if b.Cancel(context.Background(), flowKeyDefault) {
		t.Error("B cancelled a flow that had ended")
	}
}

// A device flow is polled only by the instance that started it, and every
// instance sharing the store reports and cancels it: one cancelled from
// another instance is not completed when the person approves it after.
func TestDeviceFlowAcrossInstances(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) { // device polling waits on the fake clock
		store := &testkit.FlowStore{}
		a := newFlowEnv(t, inMemory, func(c *flow.Config) { c.Store = store })
		b := flow.NewManager(flow.Config{Store: store, Clock: a.clock, HTTPClient: a.srv.Client()})
		t.Cleanup(func() { b.Close() })
		f := a.start(a.deviceRequest(t, flowKeyDefault))
		if got := b.Status(context.Background(), flowKeyDefault); got.ID != f.ID || got.State != flow.StatePending || got.UserCode != f.UserCode {
			t.Fatalf("B reports %+v, want A's device flow", got)
		}
		if !b.Cancel(context.Background(), flowKeyDefault) {
			t.Fatal("B could not cancel A's device flow")
		}
		if err := a.srv.ApproveDevice(f.UserCode); err != nil {
			t.Fatal(err)
		}
		got, err := waitFlow(t, a.m, flowKeyDefault)
		if got.State != flow.StateIdle || !errors.Is(err, flow.ErrCancelled) {
			t.Fatalf("A's flow = %+v, %v; want cancelled", got, err)
		}
		if n := a.done.Calls(); n != 0 {
			t.Errorf("a flow cancelled elsewhere stored a grant (%d Complete calls)", n)
		}
	})
}

// hangingStore is a Store that does not answer until its caller gives up,
// as a database that hangs.
type hangingStore struct{ flow.Store }

func (hangingStore) Put(ctx context.Context, _ flow.Pending) error {
	<-ctx.Done()
	return ctx.Err()
}

// A store that hangs holds no flow, and no lock, for longer than the
// Manager's bound on each call: the start fails, saying so, and the
// Manager goes on answering.
func TestHangingStore(t *testing.T) {
	e := newFlowEnv(t, nil, func(c *flow.Config) { c.Store = hangingStore{flow.NewMemoryStore()} })
	flow.SetStoreTimeout(e.m, time.Millisecond)
	_, err := e.m.Start(context.Background(), e.request(flowKeyDefault, flow.RedirectCallback))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "pending flow") {
		t.Fatalf("Start on a hanging store: %v, want a deadline naming the pending flow", err)
	}
	if f := e.m.Status(context.Background(), flowKeyDefault); f.State != flow.StateIdle {
		t.Errorf("status after the failed start = %+v, want idle", f)
	}
}

// OnChange is told each flow that starts and each that ends, with no secret.
func TestOnChange(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	e := newFlowEnv(t, nil, func(c *flow.Config) {
		c.OnChange = func(key connid.ID, f flow.Flow) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, key.Profile+" "+string(f.State)+" "+f.Detail)
		}
	})
	e.start(e.request(flowKeyDefault, flow.RedirectCallback))
	e.m.Cancel(context.Background(), flowKeyDefault)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[default pending Waiting for browser consent default idle Cancelled]" {
		t.Errorf("OnChange saw %q", seen)
	}
}
