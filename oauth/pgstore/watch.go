package pgstore

import (
	"context"
	"sync"
	"time"
)

// channel is the PostgreSQL notification channel of grant changes; the
// payload is the grant's key, never a secret.
const channel = "memconnect_grants"

// notify tells every instance listening that key's grant changed. It is
// best effort: a listener that misses it sees the change at its next read.
func (s *Store) notify(ctx context.Context, key string) {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, key); err != nil {
		s.logger.Warn().Str("grant", s.Describe(key)).Str("error", err.Error()).Msg("pgstore: could not notify the other instances of a change")
	}
}

// listener is a Store's one LISTEN connection, shared by every Watch.
type listener struct {
	mu     sync.Mutex
	subs   map[string]map[chan struct{}]struct{}
	cancel context.CancelFunc // nil while not listening
	done   chan struct{}
}

// Watch returns a channel that receives a value whenever any instance
// commits a change to key's grant (a rotation, a rejection, a new grant, a
// removal), as PostgreSQL notifies it; stop ends the watch. Every Watch of
// a Store shares one connection, taken from the pool for as long as a
// watch is open. Notifications are a hint: a burst may arrive as one.
func (s *Store) Watch(ctx context.Context, key string) (changed <-chan struct{}, stop func(), err error) {
	l := &s.listen
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel == nil {
		lctx, cancel := context.WithCancel(context.Background())
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
			conn.Release()
			cancel()
			return nil, nil, err
		}
		l.cancel, l.done = cancel, make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			defer func() {
				// The connection goes back to the pool listening to
				// nothing.
				uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer ucancel()
				if _, err := conn.Exec(uctx, `UNLISTEN `+channel); err != nil {
					conn.Conn().Close(uctx)
				}
				conn.Release()
			}()
			for {
				n, err := conn.Conn().WaitForNotification(lctx)
				if err != nil {
					// Stopped, or the connection broke: the next Watch
					// listens again.
					l.mu.Lock()
					if l.done == done {
						l.cancel, l.done = nil, nil
					}
					l.mu.Unlock()
					return
				}
				l.mu.Lock()
				for c := range l.subs[n.Payload] {
					select {
					case c <- struct{}{}:
					default: // one pending hint is enough
					}
				}
				l.mu.Unlock()
			}
		}(l.done)
	}
	if l.subs == nil {
		l.subs = make(map[string]map[chan struct{}]struct{})
	}
	if l.subs[key] == nil {
		l.subs[key] = make(map[chan struct{}]struct{})
	}
	c := make(chan struct{}, 1)
	l.subs[key][c] = struct{}{}
	var once sync.Once
	return c, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs[key], c)
			if len(l.subs[key]) == 0 {
				delete(l.subs, key)
			}
			var cancel context.CancelFunc
			var done chan struct{}
			if len(l.subs) == 0 && l.cancel != nil {
				cancel, done = l.cancel, l.done
				l.cancel, l.done = nil, nil
			}
			l.mu.Unlock()
			if cancel != nil {
				cancel()
				<-done
			}
		})
	}, nil
}
