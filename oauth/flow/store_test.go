package flow_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sync"
	"testing"

	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

// recordingStore is a map-backed flow.Store that counts its calls and can
// be told to fail claims, as a shared store whose database is down would.
type recordingStore struct {
	mu        sync.Mutex
	m         map[flow.Key]flow.Pending
	puts      int
	deletes   int
	failClaim error
}

func (s *recordingStore) Put(_ context.Context, p flow.Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[flow.Key]flow.Pending)
	}
	s.m[p.Key] = p
	s.puts++
	return nil
}

func (s *recordingStore) Claim(_ context.Context, key flow.Key, state string) (flow.Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failClaim != nil {
		return flow.Pending{}, s.failClaim
	}
	p, ok := s.m[key]
	if !ok || p.State != state {
		return flow.Pending{}, flow.ErrInvalidState
	}
	delete(s.m, key)
	return p, nil
}

func (s *recordingStore) Delete(_ context.Context, key flow.Key, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes++
	if p, ok := s.m[key]; ok && p.ID == id {
		delete(s.m, key)
	}
	return nil
}

func (s *recordingStore) get(key flow.Key) (flow.Pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[key]
	return p, ok
}

// The secrets of a pending browser flow live in the Store: the state and
// the PKCE verifier of its authorization request, claimed once by the
// callback and forgotten when the flow ends.
func TestPendingFlowStore(t *testing.T) {
	store := &recordingStore{}
	e := newFlowEnv(t, nil, func(c *flow.Config) { c.Store = store })
	f := e.start(e.request(flowKeyDefault, flow.RedirectCallback))

	p, ok := store.get(flowKeyDefault)
	if !ok || store.puts != 1 {
		t.Fatalf("after Start the store holds %+v (%v), %d puts; want the flow's record", p, ok, store.puts)
	}
	q := mustURL(t, f.AuthorizeURL).Query()
	sum := sha256.Sum256([]byte(p.Verifier))
	if p.ID != f.ID || p.State != q.Get("state") || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") || !p.ExpiresAt.Equal(f.ExpiresAt) {
		t.Fatalf("record = %+v; want the flow's id, state, verifier of its challenge and expiry", p)
	}

	// A store that cannot claim: the callback changes nothing.
	back := e.consent(f, true)
	store.mu.Lock()
	store.failClaim = errors.New("database down")
	store.mu.Unlock()
	if _, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Fatalf("Callback with a failing store: %v, want ErrInvalidState", err)
	}
	if got := e.m.Status(flowKeyDefault); got.State != flow.StatePending {
		t.Fatalf("flow after a failed claim: %s, want still pending", got.State)
	}
	store.mu.Lock()
	store.failClaim = nil
	store.mu.Unlock()

	if got, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); err != nil || got.State != flow.StateConnected {
		t.Fatalf("Callback = %s, %v; want connected", got.State, err)
	}
	if _, ok := store.get(flowKeyDefault); ok {
		t.Error("the record outlived its claim")
	}
	if _, err := e.m.Callback(context.Background(), flowKeyDefault, back.Query()); !errors.Is(err, flow.ErrInvalidState) {
		t.Errorf("replayed callback: %v, want ErrInvalidState", err)
	}

	// A cancelled flow's record is deleted.
	key := flow.Key{Profile: "work", Provider: "honcho"}
	e.start(e.request(key, flow.RedirectCallback))
	e.m.Cancel(key)
	if _, ok := store.get(key); ok {
		t.Error("a cancelled flow's record is still stored")
	}
}

// A state that another holder of a shared store claimed is spent here too.
func TestPendingFlowStoreSingleUse(t *testing.T) {
	store := &recordingStore{}
	e := newFlowEnv(t, []honchotest.Option{honchotest.WithAutoApprove()}, func(c *flow.Config) { c.Store = store })
	f := e.start(e.request(flowKeyDefault, flow.RedirectCallback))
	p, _ := store.get(flowKeyDefault)
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
