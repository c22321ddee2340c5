package pgstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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
//
// When the connection breaks (the database restarts), it is taken again
// with backoff and listens again, and then every open watch receives a
// value, since a change may have been committed while nobody listened.
func (s *Store) Watch(ctx context.Context, key string) (changed <-chan struct{}, stop func(), err error) {
	l := &s.listen
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel == nil {
		conn, err := s.listenConn(ctx)
		if err != nil {
			return nil, nil, err
		}
		lctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go s.listenLoop(lctx, conn, l.done)
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

// listenConn takes a connection from the pool and listens on it.
func (s *Store) listenConn(ctx context.Context) (*pgxpool.Conn, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		conn.Release()
		return nil, err
	}
	return conn, nil
}

// Backoff of the LISTEN connection's reconnection.
const (
	relistenFirst = 100 * time.Millisecond
	relistenMax   = 5 * time.Second
)

// listenLoop hands each notification on conn to the watches of its key,
// until ctx ends; a broken connection is replaced, with backoff.
func (s *Store) listenLoop(ctx context.Context, conn *pgxpool.Conn, done chan struct{}) {
	l := &s.listen
	defer close(done)
	defer func() {
		if conn == nil {
			return
		}
		// The connection goes back to the pool listening to nothing.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `UNLISTEN `+channel); err != nil {
			conn.Conn().Close(uctx)
		}
		conn.Release()
	}()
	wait := relistenFirst
	for {
		if conn == nil {
			var err error
			if conn, err = s.listenConn(ctx); err != nil {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				wait = min(2*wait, relistenMax)
				continue
			}
			wait = relistenFirst
			s.logger.Info().Msg("pgstore: listening for changes again")
			l.mu.Lock()
			for _, subs := range l.subs {
				hint(subs) // a change may have come while nobody listened
			}
			l.mu.Unlock()
		}
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn().Str("error", err.Error()).Msg("pgstore: the connection listening for changes broke; taking another")
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Conn().Close(cctx)
			cancel()
			conn.Release()
			conn = nil
			continue
		}
		l.mu.Lock()
		hint(l.subs[n.Payload])
		l.mu.Unlock()
	}
}

// hint sends each channel of subs a value, unless one is pending already.
func hint(subs map[chan struct{}]struct{}) {
	for c := range subs {
		select {
		case c <- struct{}{}:
		default: // one pending hint is enough
		}
	}
}
