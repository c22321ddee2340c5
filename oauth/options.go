package oauth

import (
	"net/http"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/oauth/internal/tuning"
)

// Option configures [NewGrants].
type Option func(*options)

// options are the engine's settings; tests beside the engine set the ones
// no option here reaches (package tuning).
type options = tuning.Options

func newOptions(opts []Option) options {
	o := tuning.Defaults()
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithLogger sets the logger. Tokens are never logged. The default discards.
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.Logger = l } }

// WithClock sets the clock of every expiry decision. The default, and
// nil, is the system clock.
func WithClock(c clock.Clock) Option {
	return func(o *options) {
		if c != nil {
			o.Now = c.Now
		}
	}
}

// WithHTTPClient sets the client for refresh exchanges. The default is
// [http.DefaultClient]; each attempt has its own deadline either way.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.Client = c
		}
	}
}
