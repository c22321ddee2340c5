// Package tuning holds the settings of the grant engine (package oauth's
// NewGrants), so that the engine's own tests and the stores' tests beside it
// can set what the public options do not: shorter refresh timings and the
// hooks of the crash harness. A function this package returns is an
// oauth.Option.
package tuning

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// Options are the engine's settings. Package oauth's Option is a function
// over them.
type Options struct {
	Logger zerolog.Logger
	Now    func() time.Time
	Client *http.Client

	LockTimeout    time.Duration // waiting for the locks
	AttemptTimeout time.Duration // one exchange attempt
	RetryDelay     time.Duration // before the one retry
	Budget         time.Duration // all attempts
	Cooldown       time.Duration // no new attempt after a transient failure

	// LateJournal records a refresh's answer only once it is parsed, as
	// the first version did: the crash harness measures the window the
	// early record closes.
	LateJournal bool
	// AnswerArrived is called the moment a refresh's answer has been read
	// off the wire, before anything parses it.
	AnswerArrived func()
	// Uncache, when not nil, is set by the engine to a function that
	// drops a key's cached access token (a benchmark's cache miss).
	Uncache *func(key string)
}

// Defaults are the engine's settings when no option changes them.
func Defaults() Options {
	return Options{
		Logger:         zerolog.Nop(),
		Now:            time.Now,
		Client:         http.DefaultClient,
		LockTimeout:    30 * time.Second,
		AttemptTimeout: 15 * time.Second,
		RetryDelay:     2 * time.Second,
		Budget:         20 * time.Second,
		Cooldown:       30 * time.Second,
	}
}

// LockTimeout bounds how long an operation waits for the locks.
func LockTimeout(d time.Duration) func(*Options) {
	return func(o *Options) { o.LockTimeout = d }
}

// Timings sets the refresh's attempt timeout, the delay before its retry
// and its whole budget; a zero leaves that one as it is.
func Timings(attempt, retry, budget time.Duration) func(*Options) {
	return func(o *Options) {
		if attempt > 0 {
			o.AttemptTimeout = attempt
		}
		if retry > 0 {
			o.RetryDelay = retry
		}
		if budget > 0 {
			o.Budget = budget
		}
	}
}

// Crash sets the crash harness's hooks: lateJournal for the first
// version's late record, arrived called when an answer arrives.
func Crash(lateJournal bool, arrived func()) func(*Options) {
	return func(o *Options) { o.LateJournal, o.AnswerArrived = lateJournal, arrived }
}

// Uncacher has the engine set *fn to a function that drops a key's cached
// access token.
func Uncacher(fn *func(key string)) func(*Options) {
	return func(o *Options) { o.Uncache = fn }
}
