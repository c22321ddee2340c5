package handlers

import (
	"errors"
	"net/http"
	"slices"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/internal/connsession"
	"github.com/memconnect/memconnect/provider"
)

// Action is what a request does with a profile's connection to a
// provider, as an [AuthorizeFunc] is told.
type Action string

// The actions of the profile-scoped routes.
const (
	ActionStatus     Action = "status"     // GET status, and the Hermes status route
	ActionConnect    Action = "connect"    // POST connect, and the Hermes start route
	ActionCancel     Action = "cancel"     // POST cancel
	ActionDisconnect Action = "disconnect" // DELETE connection
	ActionEvents     Action = "events"     // GET events
	ActionCallback   Action = "callback"   // GET callback: the person finishing a sign-in
	ActionToken      Action = "token"      // POST token: an agent of the host getting a token
)

// Access is what a request asks to do: an action on a profile's connection
// to a provider. Profile is the canonical name ("default" for "current");
// both are validated before a hook sees them.
type Access struct {
	Profile  string
	Provider string
	Action   Action
}

// AuthorizeFunc decides whether the request r may do a. It is called on
// every profile-scoped route after the path is validated and before any
// work: on an error nothing is started, read or written. An error that
// matches [ErrUnauthenticated] answers 401 unauthorized (the request does
// not say who makes it), any other 403 forbidden. The error is logged,
// never sent.
type AuthorizeFunc func(r *http.Request, a Access) error

// ErrUnauthenticated is for an [AuthorizeFunc] to return, or wrap, when
// the request does not say who makes it: the answer is then 401, not 403.
var ErrUnauthenticated = errors.New("handlers: the request does not say who makes it")

// WithAuthorize sets the hook that decides who may act for a profile; nil
// (the default) allows every request that passed the router's guards.
func WithAuthorize(f AuthorizeFunc) Option {
	return func(h *Handlers) { h.authorize = f }
}

// access reads the profile and provider of r with params and asks the
// authorization hook whether r may do action with them.
func (h *Handlers) access(r *http.Request, params func(*http.Request) (string, string, error), action Action) (profile, prov string, err error) {
	profile, prov, err = params(r)
	if err != nil {
		return "", "", err
	}
	canonical := profile
	if canonical == "current" {
		canonical = provider.DefaultProfile
	}
	if cs, ok := connsession.FromContext(r.Context()); ok {
		if cs.Profile != canonical {
			return "", "", apierr.Errorf(apierr.CodeForbidden, "This connect session is for another profile.")
		}
		if len(cs.Providers) > 0 && !slices.Contains(cs.Providers, prov) {
			return "", "", apierr.Errorf(apierr.CodeForbidden, "This connect session is for other providers.")
		}
	}
	if h.authorize == nil {
		return profile, prov, nil
	}
	if err := h.authorize(r, Access{Profile: canonical, Provider: prov, Action: action}); err != nil {
		return "", "", refusal(err)
	}
	return profile, prov, nil
}

// refusal is the answer to a request the authorization hook refused.
func refusal(err error) error {
	if errors.Is(err, ErrUnauthenticated) {
		return apierr.Wrap(apierr.CodeUnauthorized, err, "This request does not say who makes it: sign in to the app first.")
	}
	return apierr.Wrap(apierr.CodeForbidden, err, "You may not do this for this profile.")
}
