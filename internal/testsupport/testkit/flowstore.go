package testkit

import (
	"context"
	"sync"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/oauth/flow"
)

// FlowStore is the in-memory flow.Store that several flow managers can
// share, as instances share a database, counting its records and able to
// fail claims. The zero value is ready to use.
type FlowStore struct {
	once      sync.Once
	store     flow.Store
	mu        sync.Mutex // guards puts, failClaim and keys
	puts      int
	last      map[connid.ID]flow.Pending
	failClaim error
}

var _ flow.Store = (*FlowStore)(nil)

func (s *FlowStore) inner() flow.Store {
	s.once.Do(func() { s.store = flow.NewMemoryStore() })
	return s.store
}

// Put implements flow.Store, counting.
func (s *FlowStore) Put(ctx context.Context, p flow.Pending) error {
	s.mu.Lock()
	s.puts++
	if s.last == nil {
		s.last = make(map[connid.ID]flow.Pending)
	}
	s.last[p.Key] = p
	s.mu.Unlock()
	return s.inner().Put(ctx, p)
}

// Claim implements flow.Store, failing as FailClaims says.
func (s *FlowStore) Claim(ctx context.Context, key connid.ID, state string) (flow.Pending, error) {
	s.mu.Lock()
	err := s.failClaim
	s.mu.Unlock()
	if err != nil {
		return flow.Pending{}, err
	}
	return s.inner().Claim(ctx, key, state)
}

// Finish implements flow.Store.
func (s *FlowStore) Finish(ctx context.Context, key connid.ID, id string, f flow.Flow) (bool, error) {
	return s.inner().Finish(ctx, key, id, f)
}

// Status implements flow.Store.
func (s *FlowStore) Status(ctx context.Context, key connid.ID) (flow.Flow, bool, error) {
	return s.inner().Status(ctx, key)
}

// Delete implements flow.Store.
func (s *FlowStore) Delete(ctx context.Context, key connid.ID, id string) error {
	return s.inner().Delete(ctx, key, id)
}

// Get returns key's flow as the store records it, if any.
func (s *FlowStore) Get(key connid.ID) (flow.Flow, bool) {
	f, ok, _ := s.inner().Status(context.Background(), key)
	return f, ok
}

// LastPut returns the last record put for key, secrets included.
func (s *FlowStore) LastPut(key connid.ID) (flow.Pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.last[key]
	return p, ok
}

// Puts counts the records put so far.
func (s *FlowStore) Puts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// FailClaims makes every claim fail with err, or succeed again for nil.
func (s *FlowStore) FailClaims(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failClaim = err
}
