package testkit

import (
	"context"
	"crypto/subtle"
	"sync"

	"github.com/memconnect/memconnect/oauth/flow"
)

// FlowStore is a flow.Store that several flow managers can share, as
// instances share a database, and that counts its calls and can be told to
// fail claims. The zero value is ready to use.
type FlowStore struct {
	mu        sync.Mutex // guards the fields below
	m         map[flow.Key]flow.Pending
	puts      int
	failClaim error
}

var _ flow.Store = (*FlowStore)(nil)

// Put implements flow.Store.
func (s *FlowStore) Put(_ context.Context, p flow.Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[flow.Key]flow.Pending)
	}
	s.m[p.Key] = p
	s.puts++
	return nil
}

// Claim implements flow.Store.
func (s *FlowStore) Claim(_ context.Context, key flow.Key, state string) (flow.Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failClaim != nil {
		return flow.Pending{}, s.failClaim
	}
	p, ok := s.m[key]
	if !ok || subtle.ConstantTimeCompare([]byte(p.State), []byte(state)) != 1 {
		return flow.Pending{}, flow.ErrInvalidState
	}
	delete(s.m, key)
	return p, nil
}

// Delete implements flow.Store.
func (s *FlowStore) Delete(_ context.Context, key flow.Key, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.m[key]; ok && p.ID == id {
		delete(s.m, key)
	}
	return nil
}

// Get returns key's record, if any.
func (s *FlowStore) Get(key flow.Key) (flow.Pending, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[key]
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
