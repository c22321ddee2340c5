// Package errkind says what kind of failure an error is, and what to tell a
// person about it, so that the layer that knows says it once: a store, a
// flow or a provider gives its errors a [Kind] and a sentence, and whoever
// shows them (the HTTP API, a command line) maps kinds to what it sends.
//
// An error is classified when it, or an error in its chain, implements
// [Classified]. Sentinels are made with [New]; an error that wraps another
// and classifies it with [Wrap].
package errkind

import "time"

// Kind is what kind of failure an error is.
type Kind int

// The kinds. The zero Kind is [Unknown].
const (
	// Unknown: not classified; an internal error, whose details are for
	// the log alone.
	Unknown Kind = iota
	// Invalid: the request or its input is not valid.
	Invalid
	// InvalidProfile: a profile name is not valid.
	InvalidProfile
	// ProfileNotFound: there is no such profile.
	ProfileNotFound
	// UnknownProvider: no provider has that name.
	UnknownProvider
	// Unsupported: the provider, or this server, does not do that.
	Unsupported
	// Conflict: the request conflicts with the current state (a sign-in
	// already waiting, a grant that needs a new sign-in, nothing to
	// remove).
	Conflict
	// NotConnected: the profile has no grant and no key for the provider.
	NotConnected
	// ReauthRequired: a token was asked for, and the grant needs a new
	// sign-in first.
	ReauthRequired
	// Forbidden: the request is not allowed.
	Forbidden
	// Unavailable: this server cannot serve it now (its store is
	// restarting, or was sealed with a key it lacks); a failure here, not
	// at the provider.
	Unavailable
	// Upstream: the provider's server failed or answered badly.
	Upstream
	// Internal: a failure of this server that has a sentence for a person
	// (a config file it cannot read, a shutdown).
	Internal
)

var names = [...]string{"unknown", "invalid", "invalid profile", "profile not found", "unknown provider",
	"unsupported", "conflict", "not connected", "reauth required", "forbidden", "unavailable", "upstream", "internal"}

// String names the kind, for logs and tests.
func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return "unknown"
}

// Classified is an error that knows its kind. Message is a sentence for a
// person, ending with a period, or "" for the kind's general words; it
// never holds a secret or a server's local path.
type Classified interface {
	error
	Kind() Kind
	Message() string
}

// Error is a classified error: a sentinel ([New]) or an error that
// classifies the one it wraps ([Wrap]).
type Error struct {
	kind    Kind
	text    string
	message string
	retry   time.Duration
	err     error
}

var _ Classified = (*Error)(nil)

// New returns a sentinel of kind k: text is its Go error text, message the
// sentence for a person ("" for the kind's general words).
func New(k Kind, text, message string) *Error {
	return &Error{kind: k, text: text, message: message}
}

// Wrap returns err classified as k with message; its text is err's.
func Wrap(k Kind, err error, message string) *Error {
	return &Error{kind: k, text: err.Error(), message: message, err: err}
}

// RetryAfter returns a copy of e that tells when to try again.
func (e *Error) RetryAfter(d time.Duration) *Error {
	c := *e
	c.retry = d
	return &c
}

// Error returns the Go error text.
func (e *Error) Error() string { return e.text }

// Kind returns e's kind.
func (e *Error) Kind() Kind { return e.kind }

// Message returns the sentence for a person; "" for the kind's words.
func (e *Error) Message() string { return e.message }

// Unwrap returns the error e classifies; nil for a sentinel.
func (e *Error) Unwrap() error { return e.err }

// Of returns the classification of err: the first error in its chain
// that is [Classified], unless the chain holds a failure of this server
// ([Unavailable] or [Internal]): then the deepest of those, since the
// problem is here whatever step met it (a config file that cannot be
// read fails the sign-in that tried to store a grant in it).
func Of(err error) (Classified, bool) {
	var first, local Classified
	for e := range chain(err) {
		c, ok := e.(Classified)
		if !ok {
			continue
		}
		if first == nil {
			first = c
		}
		if k := c.Kind(); k == Unavailable || k == Internal {
			local = c
		}
	}
	if local != nil {
		return local, true
	}
	return first, first != nil
}

// RetryAfter returns when to try again after err: the first positive one
// an error in its chain gives (see [Error.RetryAfter]), else 0.
func RetryAfter(err error) time.Duration {
	for e := range chain(err) {
		if r, ok := e.(interface{ retryAfter() time.Duration }); ok && r.retryAfter() > 0 {
			return r.retryAfter()
		}
	}
	return 0
}

func (e *Error) retryAfter() time.Duration { return e.retry }

// chain yields err and every error it wraps, depth first, in the order
// [errors.Is] visits them.
func chain(err error) func(yield func(error) bool) {
	return func(yield func(error) bool) {
		var walk func(error) bool
		walk = func(err error) bool {
			for err != nil {
				if !yield(err) {
					return false
				}
				switch u := err.(type) {
				case interface{ Unwrap() []error }:
					for _, e := range u.Unwrap() {
						if !walk(e) {
							return false
						}
					}
					return true
				case interface{ Unwrap() error }:
					err = u.Unwrap()
				default:
					return true
				}
			}
			return true
		}
		walk(err)
	}
}

// Is reports whether err is classified as k.
func Is(err error, k Kind) bool {
	c, ok := Of(err)
	return ok && c.Kind() == k
}
