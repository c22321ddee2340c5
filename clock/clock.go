// Package clock is the one time source memconnect's packages take: the
// flow manager's state expiry and resets, the grant engine's expiry
// decisions, the keeper's rounds, the webhook sender's timestamps and the
// test servers. Tests pass a clock they move by hand instead of waiting.
package clock

import "time"

// Clock tells the time and runs a function later. It must be safe for
// concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, like
	// [time.AfterFunc]; stop prevents that if it has not happened yet and
	// reports whether it did, like [time.Timer.Stop].
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// System returns the clock of the time package.
func System() Clock { return system{} }

// Or returns c, or the [System] clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return system{}
	}
	return c
}

type system struct{}

func (system) Now() time.Time { return time.Now() }

func (system) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Func is a [Clock] whose time is now(), such as the real time moved by an
// offset; its AfterFunc runs on real time, as [time.AfterFunc].
func Func(now func() time.Time) Clock { return funcClock(now) }

type funcClock func() time.Time

func (c funcClock) Now() time.Time { return c() }

func (funcClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
