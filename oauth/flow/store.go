package flow

import (
	"context"
	"crypto/subtle"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
)

// Pending is a pending browser flow as a [Store] keeps it: what its
// callback needs (the state parameter it must carry and the PKCE verifier of
// the code exchange, both secret), and what any instance reports of it. A
// Store keeps it from [Manager.Start] until the flow ends and its key
// reverts to [StateIdle]. A Store never logs the secrets.
type Pending struct {
	Key       connid.ID
	ID        string    // the flow's id
	State     string    // the state parameter (RFC 6749 section 10.12)
	Verifier  string    // the PKCE code_verifier (RFC 7636)
	ExpiresAt time.Time // when the state stops being answerable
	// Config is the flow's client, endpoints, scopes and redirect URI:
	// what another instance needs to exchange the code. A public client
	// has no secret in it.
	Config oauth2.Config
	// TokenParams are the extra parameters of the code exchange
	// ([Request.TokenParams]).
	TokenParams url.Values
	// Binding is the request's browser binding (a digest, no secret).
	Binding string
	// Issuer and IssuerRequired are the request's, for the check of the
	// authorization response's "iss" (RFC 9207) on any instance.
	Issuer         string
	IssuerRequired bool
	// ResumeData is the request's [Request.ResumeData], for Resume.
	ResumeData []byte
	// Flow is the flow as [Manager.Status] reports it while it is pending.
	Flow Flow
}

// Store keeps the pending browser flows. The in-memory default serves the
// [Manager] that made it; a store shared by several instances lets a
// callback be claimed on any of them, the state be single-use across all of
// them, and every instance report and cancel every flow.
//
// A [Manager] calls Put, Finish and Delete while it holds its lock, each
// bounded by 5 s, so a store should answer in milliseconds: a slow one
// slows every flow of the Manager.
//
// Implementations must be safe for concurrent use.
type Store interface {
	// Put records p as the pending flow of p.Key, replacing any earlier
	// record of that key.
	Put(ctx context.Context, p Pending) error
	// Claim returns the secrets of key's pending flow when state equals
	// its state parameter, compared in constant time, and forgets them: of
	// two claims of one state at most one succeeds. The flow stays
	// recorded, as pending, until Finish. A state that matches no pending
	// flow is [ErrInvalidState], and nothing changes. Claim does not check
	// the expiry; the caller does.
	Claim(ctx context.Context, key connid.ID, state string) (Pending, error)
	// Finish records that key's flow id ended as f, unless it ended
	// already, and forgets its secrets; id "" means whichever flow of key
	// is pending. A cancellation (f.State [StateIdle]) applies only to a
	// flow not claimed yet: a claimed one is being completed. Finish
	// reports whether it recorded the end.
	Finish(ctx context.Context, key connid.ID, id string, f Flow) (bool, error)
	// Status returns key's flow as last recorded: pending, or how it
	// ended. ok is false when there is none.
	Status(ctx context.Context, key connid.ID) (f Flow, ok bool, err error)
	// Delete forgets key's flow if it is still the flow id.
	Delete(ctx context.Context, key connid.ID, id string) error
}

// storeTimeout bounds each call to a Store given in [Config.Store]: the
// Manager makes some while it holds its lock, and a database that hangs
// must not hold every flow of the Manager with it.
const storeTimeout = 5 * time.Second

// MaxResumeData bounds [Request.ResumeData]: a shared Store keeps it with
// every pending flow.
const MaxResumeData = 4096

// boundedStore is a Store whose every call ends within storeTimeout.
type boundedStore struct {
	s Store
	d time.Duration
}

func (b boundedStore) Put(ctx context.Context, p Pending) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.s.Put(ctx, p)
}

func (b boundedStore) Claim(ctx context.Context, key connid.ID, state string) (Pending, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.s.Claim(ctx, key, state)
}

func (b boundedStore) Finish(ctx context.Context, key connid.ID, id string, f Flow) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.s.Finish(ctx, key, id, f)
}

func (b boundedStore) Status(ctx context.Context, key connid.ID) (Flow, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.s.Status(ctx, key)
}

func (b boundedStore) Delete(ctx context.Context, key connid.ID, id string) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.s.Delete(ctx, key, id)
}

// NewMemoryStore returns a [Store] in this process's memory: the default of
// a [Manager], and a store several Managers of one process can share.
func NewMemoryStore() Store { return newMemoryStore() }

// memoryStore is the in-memory [Store].
type memoryStore struct {
	mu sync.Mutex // guards m
	m  map[connid.ID]*memRecord
}

type memRecord struct {
	p       Pending
	claimed bool
	ended   bool
}

func newMemoryStore() *memoryStore { return &memoryStore{m: make(map[connid.ID]*memRecord)} }

func (s *memoryStore) Put(_ context.Context, p Pending) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[p.Key] = &memRecord{p: p}
	return nil
}

func (s *memoryStore) Claim(_ context.Context, key connid.ID, state string) (Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	if !ok || r.claimed || r.ended || state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(r.p.State)) != 1 {
		return Pending{}, ErrInvalidState
	}
	p := r.p
	r.claimed = true
	r.p.State, r.p.Verifier = "", ""
	return p, nil
}

func (s *memoryStore) Finish(_ context.Context, key connid.ID, id string, f Flow) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	if !ok || r.ended || (id != "" && r.p.ID != id) || (f.State == StateIdle && r.claimed) {
		return false, nil
	}
	r.ended = true
	r.p.State, r.p.Verifier = "", ""
	r.p.Flow = f
	return true, nil
}

func (s *memoryStore) Status(_ context.Context, key connid.ID) (Flow, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	if !ok {
		return Flow{}, false, nil
	}
	return r.p.Flow, true, nil
}

func (s *memoryStore) Delete(_ context.Context, key connid.ID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[key]; ok && r.p.ID == id {
		delete(s.m, key)
	}
	return nil
}
