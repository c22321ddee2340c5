package handlers

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/memconnect/memconnect/events"
)

// MaxStreamsPerSession is how many event streams one connect session may
// hold open at a time: a person's tabs, not a profile's whole allowance.
const MaxStreamsPerSession = 8

// sessionStreams counts the event streams held by connect sessions, per
// session and, all sessions of a profile together, per profile: the
// sessions of a profile may hold at most three quarters of what the bus
// allows the profile, so that the host's own credential (its own viewer
// of the profile) always finds room.
type sessionStreams struct {
	mu        sync.Mutex // guards the maps
	bySession map[[32]byte]int
	byProfile map[string]int
}

// acquire takes a stream for the session whose token is tok, for profile,
// on bus; release gives it back. It fails with an error matching
// [events.ErrTooManySubscribers] when the session, or the sessions of the
// profile, hold as many as they may.
func (s *sessionStreams) acquire(tok, profile string, bus *events.Bus) (release func(), err error) {
	sid := sha256.Sum256([]byte(tok))
	limit := bus.PerProfileLimit()
	profileCap := max(1, limit-max(1, limit/4))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bySession == nil {
		s.bySession, s.byProfile = make(map[[32]byte]int), make(map[string]int)
	}
	if s.bySession[sid] >= MaxStreamsPerSession {
		return nil, fmt.Errorf("%w: this connect session holds %d, the most one may", events.ErrTooManySubscribers, MaxStreamsPerSession)
	}
	if s.byProfile[profile] >= profileCap {
		return nil, fmt.Errorf("%w: connect sessions hold %d for profile %q, the most they may", events.ErrTooManySubscribers, profileCap, profile)
	}
	s.bySession[sid]++
	s.byProfile[profile]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.bySession[sid]--; s.bySession[sid] == 0 {
				delete(s.bySession, sid)
			}
			if s.byProfile[profile]--; s.byProfile[profile] == 0 {
				delete(s.byProfile, profile)
			}
		})
	}, nil
}

// sessionToken is the bearer credential of r, which is a connect session
// when [underSession] says so.
func sessionToken(r *http.Request) string {
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.TrimSpace(cred)
}
