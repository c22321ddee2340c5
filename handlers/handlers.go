package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/internal/apierr"
	"github.com/memconnect/memconnect/provider"
)

// Handlers serves the routes of the HTTP API on top of a
// [provider.Connector]; the router (memconnect.New) mounts its methods on the
// route table. The handlers translate HTTP and nothing else: every rule of
// connecting, disconnecting and reporting status is the Connector's.
//
// The handlers read the path parameters {profile} and {provider} with
// [chi.URLParam], so they must be served by a chi router with those
// parameters. Every answer but the callback's page is JSON, whatever the
// request's Accept header says, written like [render.JSON] but without
// HTML escaping (URLs keep their "&"); every error goes through
// [renderError].
//
// Handlers is safe for concurrent use by multiple goroutines.
type Handlers struct {
	conn        *provider.Connector
	openBrowser func(context.Context, string) error // nil: the client opens the page
	heartbeat   time.Duration                       // of event streams
	authorize   AuthorizeFunc                       // nil: every request may

	done          chan struct{} // closed by Close: detached event streams end
	closeOnce     sync.Once
	lastFormatted atomic.Pointer[formatted]
	streams       sessionStreams // event streams held by connect sessions
}

// Close ends the event streams the handlers serve on their own goroutines
// (see [Handlers.Events]); a server's Shutdown does not see them. It is
// idempotent.
func (h *Handlers) Close() {
	h.closeOnce.Do(func() { close(h.done) })
}

// New returns the handlers of c. c must have a Registry, a Profiles
// resolver and a flow manager, and must not be changed afterwards.
func New(c *provider.Connector, opts ...Option) (*Handlers, error) {
	if c == nil || c.Registry == nil || c.Profiles == nil || c.Flows == nil {
		return nil, errors.New("handlers: the Connector needs a Registry, a ProfileResolver and a flow manager")
	}
	h := &Handlers{conn: c, heartbeat: HeartbeatInterval, done: make(chan struct{})}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// pathParams returns the {profile} and {provider} path parameters, decoded.
// A profile name that is not well-formed is an error wrapping
// [provider.ErrInvalidProfile].
//
// chi matches the escaped path when the URL has one (r.URL.RawPath is set
// when a segment holds an escape that decodes to something else, such as
// "%2e%2e" or "a%2Fb"); its parameters are then still escaped and are
// decoded here, once. Otherwise they are already decoded and are taken as
// they are, so "%2561" is never decoded twice into "a".
func pathParams(r *http.Request) (profile, providerName string, err error) {
	profile = chi.URLParam(r, "profile")
	if r.URL.RawPath != "" {
		p, err := url.PathUnescape(profile)
		if err != nil {
			return "", "", provider.ValidateProfileName("%")
		}
		profile = p
	}
	if err := provider.ValidateProfileName(profile); err != nil {
		return "", "", err
	}
	if providerName, err = providerParam(r); err != nil {
		return "", "", err
	}
	return profile, providerName, nil
}

// providerParam returns the {provider} path parameter, decoded once as
// pathParams decodes it.
func providerParam(r *http.Request) (string, error) {
	name := chi.URLParam(r, "provider")
	if r.URL.RawPath == "" {
		return name, nil
	}
	name, err := url.PathUnescape(name)
	if err != nil {
		return "", apierr.Errorf(apierr.CodeUnknownProvider, "There is no provider with this name. GET /providers lists the providers.")
	}
	return name, nil
}

// respond renders v as the JSON answer: v's Render method runs first and
// may set the status with [render.Status]; the answer is never cached (a
// status body holds a flow's authorization URL). It is always JSON: content
// negotiation (render.Respond) could answer XML.
func respond(w http.ResponseWriter, r *http.Request, v render.Renderer) {
	if err := v.Render(w, r); err != nil {
		renderError(w, r, err)
		return
	}
	// Without HTML escaping: a flow's authorize_url keeps its "&" instead
	// of "\u0026", so a person can copy it from curl's output.
	apierr.WriteJSON(w, r, v)
}

// displayName is the provider's name for people, or its registry name.
func (h *Handlers) displayName(prov string) string {
	if p, ok := h.conn.Registry.Lookup(prov); ok {
		return p.DisplayName()
	}
	return prov
}
