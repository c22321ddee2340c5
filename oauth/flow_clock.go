package oauth

import "time"

// FlowClock is the time source of a [FlowManager]: state expiry, the loopback
// timeout and the reset of finished flows all run on it, so tests can move
// time instead of waiting. It must be safe for concurrent use.
type FlowClock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, like
	// [time.AfterFunc].
	AfterFunc(d time.Duration, f func()) FlowTimer
}

// FlowTimer is a timer made by [FlowClock.AfterFunc].
type FlowTimer interface {
	// Stop prevents the timer from firing, like [time.Timer.Stop].
	Stop() bool
}

// systemClock is the [FlowClock] of the time package.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) FlowTimer { return time.AfterFunc(d, f) }
