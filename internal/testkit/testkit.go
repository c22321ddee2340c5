// Package testkit holds the small helpers the module's tests share: a
// goroutine-safe log sink and a manual clock. It is internal and imported
// only by tests.
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

// Clock is a clock that moves only when told to. It is safe for concurrent
// use; pass its Now method wherever a func() time.Time is injected.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a Clock at [Start].
func NewClock() *Clock { return &Clock{t: Start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
