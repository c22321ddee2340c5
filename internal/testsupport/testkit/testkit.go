// Package testkit holds the helpers the module's tests share: a
// goroutine-safe log sink, a manual clock with timers, and the fixtures of
// config files and routers. It is internal and imported only by tests.
package testkit

import (
	"bytes"
	"sync"
	"time"
)

// SyncBuffer is a [bytes.Buffer] safe for concurrent writes, such as those
// of a logger shared by server goroutines. The zero value is ready to use.
type SyncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start is the instant a [Clock] starts at: a fixed date, so that tests do
// not depend on the day they run.
var Start = time.Date(2026, 11, 28, 21, 0, 0, 0, time.UTC)

// Clock is a clock that moves only when told to, with timers that fire when
// it is moved past them. It is safe for concurrent use; it is a
// clock.Clock.
type Clock struct {
	mu     sync.Mutex // guards t and timers
	t      time.Time
	timers []*timer
}

type timer struct {
	when    time.Time
	f       func()
	stopped bool
	fired   bool
}

// NewClock returns a Clock at [Start].
func NewClock() *Clock { return &Clock{t: Start} }

// ClockAt returns a Clock at t.
func ClockAt(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// AfterFunc arranges for f to be called once the clock has been moved d
// past now. Unlike [time.AfterFunc], f runs in the goroutine that calls
// [Clock.Advance], before Advance returns, so a test sees its effect
// without waiting.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{when: c.t.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		active := !t.stopped && !t.fired
		t.stopped = true
		return active
	}
}

// Advance moves the clock forward by d and runs every timer due by then,
// earliest first, outside its lock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	for {
		var next *timer
		for _, t := range c.timers {
			if !t.stopped && !t.fired && !t.when.After(c.t) && (next == nil || t.when.Before(next.when)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		next.fired = true
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
	c.mu.Unlock()
}

// PendingTimers counts the timers that have neither fired nor been
// stopped.
func (c *Clock) PendingTimers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}
