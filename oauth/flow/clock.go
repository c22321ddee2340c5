package flow

import "time"

// Clock is the time source of a [Manager]: state expiry, the loopback
// timeout and the reset of finished flows all run on it, so tests can move
// time instead of waiting. It must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, like
	// [time.AfterFunc]; stop prevents that if it has not happened yet and
	// reports whether it did, like [time.Timer.Stop].
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// systemClock is the [Clock] of the time package.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
