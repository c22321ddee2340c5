// Package events carries what happens to a profile's connection to a
// provider, as it happens: a sign-in flow that starts or ends, a grant that
// is stored, refreshed or removed. A [Bus] fans each [Event] out to the
// subscribers of its profile and provider, such as the router's
// Server-Sent Events route, or Go code of a host that is not a browser:
//
//	sub, err := bus.Subscribe(connid.ID{Profile: "default", Provider: "honcho"}, 0)
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
	"fmt"
	"sync"

	"github.com/memconnect/memconnect/connid"
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
	// Recovered: a refresh worked after refreshes had failed
	// (refresh_failed); the connection is healthy again.
	Recovered = "recovered"
)

// Event is one thing that happened to the connection of Key.
type Event struct {
	// ID grows with every event of a Bus; a subscriber that reconnects
	// passes the last one it saw to Subscribe to resume after it.
	ID         uint64
	Key        connid.ID
	Kind       string     // KindFlow or KindConnection
	Flow       *flow.Flow // for KindFlow
	Connection string     // for KindConnection
	// Remote reports a change another process or instance made, seen in
	// the shared store ([provider.Connector.Follow]); false for what this
	// process did. A webhook sender sends only the latter, so that every
	// change is sent once, by the instance that made it.
	Remote bool
}

// ErrTooManySubscribers is matched by the error of [Bus.Subscribe] when
// the bus, or the profile, has as many subscribers as it allows.
var ErrTooManySubscribers = errors.New("events: too many subscribers")

// Sizes of a Bus.
const (
	// DefaultMaxSubscribers is the cap of a Bus made with NewBus(): all
	// subscribers of all profiles.
	DefaultMaxSubscribers = 16384
	// DefaultMaxPerProfile is how many subscribers one profile may have
	// unless [PerProfile] says otherwise, so that a busy profile cannot
	// lock the others out.
	DefaultMaxPerProfile = 64
	// Buffer is how many events a subscriber may fall behind by before
	// it is dropped (its channel is closed and Dropped reports true).
	Buffer = 16
	// replay is how many recent events a Bus keeps for resuming.
	replay = 256
)

// Bus fans events out to subscribers. Publish never blocks: a subscriber
// that falls Buffer events behind is dropped. The zero value is not
// usable; call [NewBus]. A Bus is safe for concurrent use.
type Bus struct {
	mu         sync.Mutex
	max        int
	perProfile int
	lastID     uint64
	recent     []Event // the last replay events, oldest first
	n          int     // subscribers
	subs       map[connid.ID]map[*Subscription]struct{}
	profiles   map[string]int // subscribers by profile
	taps       map[*tap]struct{}
}

type tap struct{ fn func(Event) }

// BusOption configures a [Bus].
type BusOption func(*Bus)

// PerProfile caps the subscribers of one profile at n; zero or less means
// [DefaultMaxPerProfile].
func PerProfile(n int) BusOption {
	return func(b *Bus) {
		if n > 0 {
			b.perProfile = n
		}
	}
}

// MaxSubscribers caps the subscribers of the bus at n in all; zero or less
// means [DefaultMaxSubscribers].
func MaxSubscribers(n int) BusOption {
	return func(b *Bus) {
		if n > 0 {
			b.max = n
		}
	}
}

// NewBus returns a bus that admits at most [DefaultMaxSubscribers]
// subscribers at a time in all and [DefaultMaxPerProfile] of one profile,
// unless [MaxSubscribers] and [PerProfile] say otherwise.
func NewBus(opts ...BusOption) *Bus {
	b := &Bus{max: DefaultMaxSubscribers, perProfile: DefaultMaxPerProfile,
		subs: make(map[connid.ID]map[*Subscription]struct{}), profiles: make(map[string]int), taps: make(map[*tap]struct{})}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Publish gives ev an ID and sends it to the subscribers of ev.Key and to
// every tap. It returns the event as sent.
func (b *Bus) Publish(ev Event) Event {
	b.mu.Lock()
	b.lastID++
	ev.ID = b.lastID
	if len(b.recent) == replay {
		copy(b.recent, b.recent[1:])
		b.recent = b.recent[:replay-1]
	}
	b.recent = append(b.recent, ev)
	for s := range b.subs[ev.Key] {
		b.sendLocked(s, ev)
	}
	var taps []*tap
	for t := range b.taps {
		taps = append(taps, t)
	}
	b.mu.Unlock()
	for _, t := range taps {
		t.fn(ev)
	}
	return ev
}

// Tap calls fn with every event the bus publishes, of every key, after
// its subscribers have it, until untap is called. fn runs on the
// publisher's goroutine and must not block (queue the event, as a webhook
// sender does). Taps are not subscribers: they count against no cap.
func (b *Bus) Tap(fn func(Event)) (untap func()) {
	t := &tap{fn: fn}
	b.mu.Lock()
	b.taps[t] = struct{}{}
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		delete(b.taps, t)
		b.mu.Unlock()
	}
}

// Len returns the number of subscribers.
func (b *Bus) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// PublishFlow publishes f as a [KindFlow] event of key. Its signature is
// that of [flow.Config.OnChange], so that a flow manager reports to the
// bus: flow.Config{OnChange: bus.PublishFlow}.
func (b *Bus) PublishFlow(key connid.ID, f flow.Flow) {
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
	m := b.subs[s.key]
	if _, ok := m[s]; !ok {
		return
	}
	delete(m, s)
	if len(m) == 0 {
		delete(b.subs, s.key)
	}
	b.n--
	if b.profiles[s.key.Profile]--; b.profiles[s.key.Profile] == 0 {
		delete(b.profiles, s.key.Profile)
	}
	close(s.c)
}

// PerProfileLimit is how many subscribers one profile may have ([PerProfile]).
func (b *Bus) PerProfileLimit() int { return b.perProfile }

// Subscribe returns a subscription to the events of key. after is the ID
// of the last event the subscriber saw (0 for none): the recent events of
// key after it are sent first, so that a reconnecting stream misses
// nothing the bus still holds. It fails with an error matching
// [ErrTooManySubscribers] when the bus, or key's profile, is full.
func (b *Bus) Subscribe(key connid.ID, after uint64) (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n >= b.max {
		return nil, fmt.Errorf("%w: %d open on this server, the most it allows", ErrTooManySubscribers, b.n)
	}
	if b.profiles[key.Profile] >= b.perProfile {
		return nil, fmt.Errorf("%w: %d open for profile %q, the most one profile may have", ErrTooManySubscribers, b.profiles[key.Profile], key.Profile)
	}
	s := &Subscription{bus: b, key: key, c: make(chan Event, Buffer)}
	m := b.subs[key]
	if m == nil {
		m = make(map[*Subscription]struct{})
		b.subs[key] = m
	}
	m[s] = struct{}{}
	b.n++
	b.profiles[key.Profile]++
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
	key     connid.ID
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
