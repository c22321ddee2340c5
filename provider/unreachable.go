package provider

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/memconnect/memconnect/oauth"
)

// UnreachableError is a provider whose servers could not be reached at
// all: a host name that did not resolve, a connection refused, a network
// that did not answer. It is what a preset that points at the internet
// gives on a machine that is offline. Sentence says it for a person.
type UnreachableError struct {
	Provider string // the provider's display name
	Host     string // the host that could not be reached
	Err      error  // the *oauth.UpstreamError
}

func (e *UnreachableError) Error() string { return "provider: " + e.Sentence() }

func (e *UnreachableError) Unwrap() error { return e.Err }

// Sentence is the one sentence a person reads: what could not be reached,
// why, and what to do.
func (e *UnreachableError) Sentence() string {
	why := "no connection could be made"
	if ue, ok := errors.AsType[*oauth.UpstreamError](e.Err); ok {
		why = ue.Reason()
	}
	return fmt.Sprintf("%s can't be reached from here (%s: %s); check the internet connection, then try again", e.Provider, e.Host, why)
}

// unreachable returns err as an [*UnreachableError] of the provider named
// name when it is an [*oauth.UpstreamError] that made no connection;
// any other error as it is.
func (c *Connector) unreachable(name string, err error) error {
	ue, ok := errors.AsType[*oauth.UpstreamError](err)
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
