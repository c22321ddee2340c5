package oauth

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/clock"
)

// Option configures [NewGrants] and [NewFileStore]. Each takes the options
// that concern it and ignores the others, so one list can configure both.
type Option func(*options)

type options struct {
	logger      zerolog.Logger
	now         func() time.Time
	client      *http.Client
	lockTimeout time.Duration
}

func newOptions(opts []Option) options {
	o := options{
		logger:      zerolog.Nop(),
		now:         time.Now,
		client:      http.DefaultClient,
		lockTimeout: 30 * time.Second,
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithLogger sets the logger. Tokens are never logged. The default discards.
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock sets the clock of every expiry decision. The default, and
// nil, is the system clock.
func WithClock(c clock.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.now = c.Now
		}
	}
}

// WithHTTPClient sets the client for refresh exchanges. The default is
// [http.DefaultClient]; each attempt has its own deadline either way.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// withLockTimeout bounds how long an operation waits for the locks, for
// tests that need a holder to give up sooner. The default, 30 s, outlasts
// another holder's whole refresh budget.
func withLockTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lockTimeout = d
		}
	}
}
