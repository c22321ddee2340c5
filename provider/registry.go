package provider

import (
	"errors"
	"fmt"
	"slices"

	"github.com/memconnect/memconnect/errkind"
)

// ErrUnknownProvider reports a provider name that no [Registry] entry has.
var ErrUnknownProvider = errkind.New(errkind.UnknownProvider, "provider: unknown provider",
	"There is no provider with this name. GET /providers lists the providers.")

// ErrDuplicateProvider reports two providers registered under one name.
var ErrDuplicateProvider = errors.New("provider: duplicate provider name")

// Registry is the set of providers a server offers, by name. It is a value
// built once with [NewRegistry] and never changed afterwards, so it is safe
// for concurrent use.
type Registry struct {
	byName  map[string]Provider
	ordered []Provider // as registered
}

// NewRegistry returns a registry of ps. It fails when a provider is nil, has
// an empty name, or shares its name with another; the error names the
// duplicate and wraps [ErrDuplicateProvider].
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{byName: make(map[string]Provider, len(ps))}
	for i, p := range ps {
		if p == nil {
			return nil, fmt.Errorf("provider: provider %d is nil", i)
		}
		name := p.Name()
		if name == "" {
			return nil, fmt.Errorf("provider: provider %d has an empty name", i)
		}
		if _, dup := r.byName[name]; dup {
			return nil, fmt.Errorf("%w %q", ErrDuplicateProvider, name)
		}
		r.byName[name] = p
		r.ordered = append(r.ordered, p)
	}
	return r, nil
}

// Lookup returns the provider registered under name.
func (r *Registry) Lookup(name string) (Provider, bool) {
	if r == nil {
		return nil, false
	}
	p, ok := r.byName[name]
	return p, ok
}

// List returns the registered providers in the order [NewRegistry] was
// given them, so that the host's first is offered first. The slice is a
// copy.
func (r *Registry) List() []Provider {
	if r == nil {
		return nil
	}
	return slices.Clone(r.ordered)
}
