// Package events carries what happens to a profile's connection to a
// provider, as it happens: a sign-in flow that starts or ends, a grant that
// is stored, refreshed or removed. A [Bus] fans each [Event] out to the
// subscribers of its profile and provider, such as the router's
// Server-Sent Events route, or Go code of a host that is not a browser:
//
//	sub, err := bus.Subscribe(flow.Key{Profile: "default", Provider: "honcho"}, 0)
//	if err != nil {
//		return err
//	}
//	defer sub.Close()
//	for ev := range sub.Events() {
//		fmt.Println(ev.ID, ev.Kind, ev.Connection)
//	}
//
// An Event never holds a token or any other secret.
package events

import (
	"errors"
	"sync"

	"github.com/memconnect/memconnect/oauth/flow"
)

// Kinds of [Event].
const (
	// KindFlow: a sign-in flow started or ended; Event.Flow says how it
	// stands, as the status body's "flow" does.
	KindFlow = "flow"
	// KindConnection: the connection changed; Event.Connection says how.
	KindConnection = "connection"
)

// Connection changes, the values of Event.Connection.
const (
	Connected    = "connected"    // a grant was stored
	Refreshed    = "refreshed"    // the grant was rotated
	Disconnected = "disconnected" // the grant was removed
	// RefreshFailed: a refresh failed for a reason other than a rejection
	// (the server down); the current token is kept for now.
	RefreshFailed = "refresh_failed"
	// ReauthRequired: the server rejected the grant.
	ReauthRequired = "reauth_required"
)

// Event is one thing that happened to the connection of Key.
type Event struct {
	// ID grows with every event of a Bus; a subscriber that reconnects
	// passes the last one it saw to Subscribe to resume after it.
	ID         uint64
	Key        flow.Key
	Kind       string     // KindFlow or KindConnection
	Flow       *flow.Flow // for KindFlow
	Connection string     // for KindConnection
}

// ErrTooManySubscribers is returned by [Bus.Subscribe] when the bus has as
// many subscribers as it allows.
var ErrTooManySubscribers = errors.New("events: too many subscribers")

// Sizes of a Bus.
const (
	// DefaultMaxSubscribers is the cap of a Bus made with NewBus(0).
	DefaultMaxSubscribers = 64
	// Buffer is how many events a subscriber may fall behind by before
	// it is dropped (its channel is closed and Dropped reports true).
	Buffer = 64
	// replay is how many recent events a Bus keeps for resuming.
	replay = 256
)

// Bus fans events out to subscribers. Publish never blocks: a subscriber
// that falls Buffer events behind is dropped. The zero value is not
// usable; call [NewBus]. A Bus is safe for concurrent use.
type Bus struct {
	mu     sync.Mutex
	max    int
	lastID uint64
	recent []Event // the last replay events, oldest first
	subs   map[*Subscription]struct{}
}

// NewBus returns a bus that admits at most maxSubscribers subscribers at
// a time; zero or less means [DefaultMaxSubscribers].
func NewBus(maxSubscribers int) *Bus {
	if maxSubscribers <= 0 {
		maxSubscribers = DefaultMaxSubscribers
	}
	return &Bus{max: maxSubscribers, subs: make(map[*Subscription]struct{})}
}

// Publish gives ev an ID and sends it to the subscribers of ev.Key. It
// returns the event as sent.
func (b *Bus) Publish(ev Event) Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastID++
	ev.ID = b.lastID
	if len(b.recent) == replay {
		copy(b.recent, b.recent[1:])
		b.recent = b.recent[:replay-1]
	}
	b.recent = append(b.recent, ev)
	for s := range b.subs {
		if s.key == ev.Key {
			b.sendLocked(s, ev)
		}
	}
	return ev
}

// PublishFlow publishes f as a [KindFlow] event of key. Its signature is
// that of [flow.Config.OnChange], so that a flow manager reports to the
// bus: flow.Config{OnChange: bus.PublishFlow}.
func (b *Bus) PublishFlow(key flow.Key, f flow.Flow) {
	b.Publish(Event{Key: key, Kind: KindFlow, Flow: &f})
}

// sendLocked queues ev for s, or drops s when it is Buffer events behind.
func (b *Bus) sendLocked(s *Subscription, ev Event) {
	if s.dropped {
		return // its channel is closed
	}
	select {
	case s.c <- ev:
	default:
		s.dropped = true
		b.removeLocked(s)
	}
}

func (b *Bus) removeLocked(s *Subscription) {
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.c)
	}
}

// Subscribe returns a subscription to the events of key. after is the ID
// of the last event the subscriber saw (0 for none): the recent events of
// key after it are sent first, so that a reconnecting stream misses
// nothing the bus still holds. It fails with [ErrTooManySubscribers] when
// the bus is full.
func (b *Bus) Subscribe(key flow.Key, after uint64) (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.subs) >= b.max {
		return nil, ErrTooManySubscribers
	}
	s := &Subscription{bus: b, key: key, c: make(chan Event, Buffer)}
	b.subs[s] = struct{}{}
	if after > 0 {
		for _, ev := range b.recent {
			if ev.ID > after && ev.Key == key {
				b.sendLocked(s, ev)
			}
		}
	}
	return s, nil
}

// Subscription is one subscriber's events.
type Subscription struct {
	bus     *Bus
	key     flow.Key
	c       chan Event
	dropped bool // guarded by bus.mu
}

// Events returns the channel of events. It is closed by Close, and when
// the subscriber fell too far behind (see Dropped).
func (s *Subscription) Events() <-chan Event { return s.c }

// Dropped reports whether the bus dropped the subscription because it fell
// Buffer events behind; the subscriber should read the status again.
func (s *Subscription) Dropped() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.dropped
}

// Close ends the subscription. It is idempotent.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.removeLocked(s)
}
