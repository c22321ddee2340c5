package flow

import (
	"context"
	"crypto/subtle"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Pending is what the callback of a pending browser flow needs: the state
// parameter it must carry and the PKCE verifier of the code exchange. A
// [Store] keeps it from [Manager.Start] until a callback claims it or the
// flow ends. State and Verifier are secrets: a Store never logs them.
type Pending struct {
	Key       Key
	ID        string    // the flow's id
	State     string    // the state parameter (RFC 6749 section 10.12)
	Verifier  string    // the PKCE code_verifier (RFC 7636)
	ExpiresAt time.Time // when the state stops being answerable
	// Config is the flow's client, endpoints, scopes and redirect URI:
	// what another instance needs to exchange the code. A public client
	// has no secret in it.
	Config oauth2.Config
}

// Store keeps the [Pending] record of each pending browser flow. The
// in-memory default serves the [Manager] that made it; a store shared by
// several instances lets a callback be claimed on any of them, and makes
// the state single-use across all of them.
//
// Implementations must be safe for concurrent use.
type Store interface {
	// Put records p as the pending flow of p.Key, replacing any earlier
	// record of that key.
	Put(ctx context.Context, p Pending) error
	// Claim removes and returns key's pending flow when state equals its
	// state parameter, compared in constant time. It is atomic: of two
	// claims of one state at most one succeeds. A state that matches
	// nothing is [ErrInvalidState], and nothing changes. Claim does not
	// check the expiry; the caller does.
	Claim(ctx context.Context, key Key, state string) (Pending, error)
	// Delete removes key's pending flow if it is still the flow id.
	Delete(ctx context.Context, key Key, id string) error
}

// memoryStore is the in-memory [Store].
type memoryStore struct {
	mu sync.Mutex // guards m
	m  map[Key]Pending
}

func newMemoryStore() *memoryStore { return &memoryStore{m: make(map[Key]Pending)} }

func (s *memoryStore) Put(_ context.Context, p Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[p.Key] = p
	return nil
}

func (s *memoryStore) Claim(_ context.Context, key Key, state string) (Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[key]
	if !ok || state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(p.State)) != 1 {
		return Pending{}, ErrInvalidState
	}
	delete(s.m, key)
	return p, nil
}

func (s *memoryStore) Delete(_ context.Context, key Key, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.m[key]; ok && p.ID == id {
		delete(s.m, key)
	}
	return nil
}
