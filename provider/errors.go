package provider

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
)

// Errors of the [Connector], for [errors.Is].
var (
	// ErrUnsupported reports that a provider does not support the
	// operation: it has no OAuth at all, or not the requested method.
	ErrUnsupported = errkind.New(errkind.Unsupported, "provider: not supported", unsupportedMessage)

	// ErrConflict reports a request that conflicts with the current state,
	// such as a connect with one method while a flow of another method is
	// pending.
	ErrConflict = errkind.New(errkind.Conflict, "provider: conflict", flow.ConflictMessage)

	// ErrAPIKeyConnection reports a disconnect of a profile that connects
	// with an API key it does not own: one set for every host of the file
	// or in the environment, which disconnecting does not remove.
	ErrAPIKeyConnection = errkind.New(errkind.Conflict, "provider: the profile connects with an API key that disconnect does not remove",
		"This profile uses an API key that is set for every profile of the provider's config file, or in the environment, so disconnecting cannot remove it. Remove the key there.")

	// ErrAPIKeyRejected reports an API key that is not usable: malformed,
	// or refused by the provider's server. Errors that report it are
	// [*APIKeyError] values.
	ErrAPIKeyRejected = errors.New("provider: API key rejected")

	// ErrNoCallbackURL reports a browser flow that asks for the callback
	// redirect mode of a Connector without a callback base URL.
	ErrNoCallbackURL = errkind.New(errkind.Invalid, "provider: no callback base URL is configured, so the callback redirect mode is not available",
		"This server has no callback URL configured, so \"redirect\" cannot be \"callback\"; use \"loopback\" or leave it out.")

	// ErrUnbindable reports a flow that [ConnectRequest.RequireBinding]
	// asks to bind to a browser and that no browser's cookie can reach: a
	// device flow, or a browser flow redirected to a loopback listener.
	ErrUnbindable = errkind.New(errkind.Forbidden, "provider: this sign-in cannot be bound to the browser that starts it",
		"A connect session can start only a sign-in that finishes in this browser, through this server's callback: not a device code, which anyone could enter, nor a sign-in that returns to the server's own machine.")
)

// unsupportedMessage is what a person reads of an operation a provider
// does not support.
const unsupportedMessage = "The provider does not support this: it cannot be connected from here, or not with this sign-in method."

// APIKeyError reports an API key that was not stored. Reason says why, for
// a person, and never holds the key.
type APIKeyError struct {
	Reason string
	Err    error // the cause, if any
}

func (e *APIKeyError) Error() string { return "provider: API key rejected: " + e.Reason }

// Kind is [errkind.Invalid].
func (e *APIKeyError) Kind() errkind.Kind { return errkind.Invalid }

// Message says why the key was not stored, for a person.
func (e *APIKeyError) Message() string { return "The API key was not stored: " + e.Reason + "." }

// Is reports [ErrAPIKeyRejected].
func (e *APIKeyError) Is(target error) bool { return target == ErrAPIKeyRejected }

func (e *APIKeyError) Unwrap() error { return e.Err }

// keyError turns an [*oauth.InvalidAPIKeyError] into an [*APIKeyError].
func keyError(err error) error {
	if ie, ok := errors.AsType[*oauth.InvalidAPIKeyError](err); ok {
		return &APIKeyError{Reason: ie.Reason, Err: err}
	}
	return err
}

// UnreachableError is a provider whose servers could not be reached at
// all: a host name that did not resolve, a connection refused, a network
// that did not answer. It is what a preset that points at the internet
// gives on a machine that is offline. Sentence says it for a person.
type UnreachableError struct {
	Provider string // the provider's display name
	Host     string // the host that could not be reached
	Err      error  // the *authserver.UpstreamError
}

func (e *UnreachableError) Error() string { return "provider: " + e.Sentence() }

// Kind is [errkind.Upstream].
func (e *UnreachableError) Kind() errkind.Kind { return errkind.Upstream }

// Message is the Sentence, as a sentence.
func (e *UnreachableError) Message() string { return e.Sentence() + "." }

func (e *UnreachableError) Unwrap() error { return e.Err }

// Sentence is the one sentence a person reads: what could not be reached,
// why, and what to do.
func (e *UnreachableError) Sentence() string {
	why := "no connection could be made"
	if ue, ok := errors.AsType[*authserver.UpstreamError](e.Err); ok {
		why = ue.Reason()
	}
	return fmt.Sprintf("%s can't be reached from here (%s: %s); check the internet connection, then try again", e.Provider, e.Host, why)
}

// unreachable returns err as an [*UnreachableError] of the provider named
// name when it is an [*authserver.UpstreamError] that made no connection;
// any other error as it is.
func (c *Connector) unreachable(name string, err error) error {
	ue, ok := errors.AsType[*authserver.UpstreamError](err)
	if !ok || !ue.Unreachable() {
		return err
	}
	display := name
	if p, ok := c.Registry.Lookup(name); ok {
		display = p.DisplayName()
	}
	host := ue.URL
	if u, err := url.Parse(ue.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	return &UnreachableError{Provider: display, Host: host, Err: err}
}
