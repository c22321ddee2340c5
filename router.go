// Package memconnect gives a Go web server the "Connect your memory
// provider" feature: [New] returns a chi router with profile-scoped
// connect, status, callback, cancel and disconnect endpoints, which the host
// mounts where it likes:
//
//	memory, err := memconnect.New(memconnect.Config{
//		Registry: registry, // provider.NewRegistry(honcho.New())
//		Profiles: provider.HermesProfiles{Root: hermesHome},
//		Logger:   logger,
//	})
//	if err != nil {
//		return err
//	}
//	defer memory.Close()
//	r.Mount("/api/memory", memory)
//
// The HTTP API is described in openapi.yaml at the root of the module;
// examples/curl.md shows every route in use. [Router.Connector] gives the
// same use cases to Go code, such as the token source of a profile.
package memconnect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/internal/connsession"
	"github.com/memconnect/memconnect/middleware"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/observe"
	"github.com/memconnect/memconnect/provider"
)

// Config holds every dependency of the router. Registry and Profiles are
// required; every other field has a default. New reads the Config once: a
// change made afterwards has no effect.
type Config struct {
	// Registry holds the providers the router offers. Required.
	Registry *provider.Registry

	// Profiles resolves the {profile} path segment; there is no default,
	// as where profiles live is the host's business. Hermes hosts use
	// provider.HermesProfiles{Root: $HERMES_HOME or ~/.hermes}. Required.
	Profiles provider.ProfileResolver

	// LoopbackAddr, when not empty, is where every loopback sign-in's
	// listener binds first, such as "127.0.0.1:0" for any free port. ""
	// means each provider's choice: Honcho's registered 127.0.0.1:8765
	// ([provider.LoopbackAddresser]), any free port for the others. The
	// sign-in flows run in a [flow.Manager] New creates from this Config
	// (Logger, HTTPClient, Clock, FlowStore, Events) and [Router.Close]
	// closes.
	LoopbackAddr string

	// Logger receives the access log (one line per request, path without
	// query), errors and recovered panics. The zero value discards. Tokens,
	// codes, state, verifiers and the session token are never logged.
	Logger zerolog.Logger

	// Authorize, when not nil, decides per request who may act for a
	// profile: it is called on every profile-scoped route (status,
	// connect, cancel, disconnect, events, the callback, the Hermes
	// routes) after the path is validated and before any work, with the
	// request and what it does. An error answers 403 forbidden, or 401
	// unauthorized when it matches handlers.ErrUnauthenticated; nothing is
	// started, read or written then. On the callback it sees the person
	// finishing a sign-in (the host's login cookie reaches it). GET
	// /providers is not profile-scoped and does not call it. nil allows
	// every request that passed the other guards.
	Authorize handlers.AuthorizeFunc

	// SessionKeys, when not empty, let the router accept connect sessions
	// ([Router.MintConnectSession]): short-lived bearer tokens for one
	// profile, signed with the first key (HMAC-SHA256) and verified with
	// any, without a database. Instances given the same keys accept each
	// other's sessions; to replace a key, put the new one first and keep
	// the old one until its sessions have expired. Each key is at least
	// 32 bytes. Set SessionToken too, or requests without a credential
	// pass as before.
	SessionKeys [][]byte

	// SessionToken, when not empty, must be sent as
	// "Authorization: Bearer <token>" with every request but the OAuth
	// callback, which a browser reaches by redirect without it.
	SessionToken string

	// AllowedHosts are the host names (without port) the Host header may
	// name; any other gets 403, the defence against DNS rebinding. Empty
	// means the loopback names localhost, 127.0.0.1 and ::1. The host of
	// CallbackBaseURL is always allowed in addition.
	AllowedHosts []string

	// AllowedOrigins are extra origins ("scheme://host[:port]", such as
	// "tauri://localhost") whose web pages may send state-changing
	// requests. Pages served from an allowed host are accepted anyway;
	// requests without an Origin header (curl, the CLI) too.
	AllowedOrigins []string

	// CallbackBaseURL is the absolute http(s) URL where the host serves
	// this router, such as "http://127.0.0.1:8080/api/memory". When set,
	// browser flows default to the "callback" redirect mode with the
	// redirect URI CallbackBaseURL + "/profiles/{profile}/providers/{provider}/callback";
	// when empty they default to "loopback" and "callback" is refused.
	// The redirect URI is never derived from a request's Host header.
	// New fails when it is not an http(s) URL, or when it names localhost:
	// loopback redirect URIs are IP literals (http://127.0.0.1:...).
	CallbackBaseURL string

	// ConnectTimeout bounds a connect request's work with the provider's
	// servers (discovery, registration, a device authorization): past it
	// the request answers 502 upstream_error naming the server and the
	// step. Zero means [provider.DefaultConnectTimeout] (20 s), well under
	// the 30 s write timeout examples/server sets; keep it under yours.
	// Each step has its own deadline as well ([authserver.StepTimeout]).
	ConnectTimeout time.Duration

	// HTTPClient makes every request to a provider's server: refreshes,
	// revocation, metadata discovery and, for the flow manager New
	// creates, the code exchange and the device flow. nil means
	// http.DefaultClient, and a client with a 30 s timeout for flows. It
	// is used as given but for redirects: a request that carries a secret
	// follows none, and a metadata request only to the same https origin
	// (applied to a copy; the client itself is not changed).
	HTTPClient *http.Client

	// GrantStore, when not nil, keeps every profile's grants instead of
	// the providers' config files, such as the PostgreSQL store of package
	// oauth/pgstore, which several instances share. See
	// [provider.Connector.GrantStore].
	GrantStore oauth.GrantStore

	// FlowStore, when not nil, keeps the pending sign-in flows of the flow
	// manager New creates, such as pgstore's Store.Flows, so that a
	// callback completes on whichever instance it lands.
	FlowStore flow.Store

	// OpenBrowser opens a sign-in page on the person's desktop, for the
	// Hermes desktop's start route (POST /providers/{provider}/oauth/start),
	// which expects the server to open it. Only the host knows whether it
	// runs on that desktop; nil opens nothing, and the answer's
	// authorize_url is for the client to open.
	OpenBrowser func(ctx context.Context, url string) error

	// Events receives what happens to every connection: flows that start
	// or end, grants stored, refreshed through the Connector or removed.
	// The events route streams them, and Go code subscribes with
	// [Router.Events]. nil means a bus New makes.
	Events *events.Bus

	// MaxEventStreams caps the event streams open on this instance in
	// all, and MaxEventStreamsPerProfile those of one profile, so that a
	// busy profile cannot lock the others out; beyond either the events
	// route answers 503. Zero means [events.DefaultMaxSubscribers] and
	// [events.DefaultMaxPerProfile]. They apply to the bus New makes;
	// with Events given, that bus's own caps apply.
	MaxEventStreams           int
	MaxEventStreamsPerProfile int

	// KeepFresh, when not zero, runs a keeper ([keeper.Keeper]) until
	// [Router.Close]: every grant is refreshed at least once per
	// KeepFresh (24h is recommended; at least a minute), and a grant in
	// use shortly before its access token expires, through the same
	// locks and leases as a caller. With a GrantStore that shares out due
	// grants (pgstore), instances share the work; with config files it
	// walks the profiles Profiles can list.
	KeepFresh time.Duration

	// Observer, when not nil, receives what the router does, for
	// metrics: refreshes, lock and lease waits, flows, API-key checks,
	// open event streams and keeper rounds. See package observe.
	Observer observe.Observer

	// EventHeartbeat is how often an event stream sends a heartbeat
	// comment; zero means 15 s. A proxy that closes idle connections
	// sooner needs a shorter one.
	EventHeartbeat time.Duration

	// Clock is the clock of every expiry decision: token refreshes, the
	// status body's expires_in and, for the flow manager New creates, the
	// state expiry and the reset of finished flows. nil means the time
	// package.
	Clock clock.Clock
}

// Router is the memconnect router that [New] returns: an [http.Handler]
// to mount (its routes are fixed once New returns, so it exposes no way to
// add middleware or routes to it), the [provider.Connector] behind it, and
// Close for what New created.
type Router struct {
	mux       chi.Router
	conn      *provider.Connector
	stop      []func() // what Close ends: the keeper, the flow tap, the streams
	closeOnce sync.Once
	sessions  *connsession.Keys // nil without Config.SessionKeys
	now       func() time.Time
	guard     func(http.Handler) http.Handler // for the host's own routes: Guard
}

// Guard returns h behind the guards the router's own routes have that do
// not depend on a profile: the Host allow-list (Config.AllowedHosts, the
// loopback names by default, and the callback's host), and the static
// Config.SessionToken when one is set (connect sessions are not accepted).
// A host puts its own routes that tell about the deployment behind it,
// such as a metrics endpoint, so that a page reached by DNS rebinding, or
// anyone without the token, cannot read them.
func (r *Router) Guard(h http.Handler) http.Handler { return r.guard(h) }

// Connect sessions' lifetimes.
const (
	// DefaultConnectSessionTTL is a connect session's lifetime unless the
	// host asks for another.
	DefaultConnectSessionTTL = 30 * time.Minute
	// MaxConnectSessionTTL is the longest lifetime a connect session may
	// be given.
	MaxConnectSessionTTL = 4 * time.Hour
)

// ErrNoSessionKeys is returned by [Router.MintConnectSession] on a router
// without Config.SessionKeys.
var ErrNoSessionKeys = errors.New("memconnect: no session keys are configured (Config.SessionKeys)")

// MintConnectSession returns a connect session for profile: an opaque
// bearer token the router accepts for that profile's routes only (and GET
// /providers), and for the providers named (every one when none are),
// until it expires after ttl (zero: [DefaultConnectSessionTTL]; at most
// [MaxConnectSessionTTL]). A host's backend hands it to a browser, such
// as the Connect page's URL fragment. It is never logged.
func (r *Router) MintConnectSession(profile string, providers []string, ttl time.Duration) (token string, expires time.Time, err error) {
	if r.sessions == nil {
		return "", time.Time{}, ErrNoSessionKeys
	}
	if err := provider.ValidateProfileName(profile); err != nil {
		return "", time.Time{}, err
	}
	if profile == "current" {
		profile = provider.DefaultProfile
	}
	if _, err := r.conn.Profiles.Resolve(profile); err != nil {
		return "", time.Time{}, err // a profile that does not exist gets no session
	}
	for _, p := range providers {
		if _, ok := r.conn.Registry.Lookup(p); !ok {
			return "", time.Time{}, fmt.Errorf("%w: %q", provider.ErrUnknownProvider, p)
		}
	}
	if ttl == 0 {
		ttl = DefaultConnectSessionTTL
	}
	if ttl < 0 || ttl > MaxConnectSessionTTL {
		return "", time.Time{}, fmt.Errorf("memconnect: a connect session lasts at most %s, not %s", MaxConnectSessionTTL, ttl)
	}
	now := r.now().Truncate(time.Second)
	expires = now.Add(ttl)
	return r.sessions.Mint(connsession.Claims{Profile: profile, Providers: providers, Issued: now.Unix(), Expires: expires.Unix()}), expires, nil
}

// Connector returns the use-case layer behind the routes, configured as the
// router is: the token source of a profile, status, connect and
// disconnect for Go code.
func (r *Router) Connector() *provider.Connector { return r.conn }

// ServeHTTP serves the memconnect API.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.mux.ServeHTTP(w, req) }

// Routes returns the router's routes to read, such as with chi.Walk to
// list them; they cannot be changed through it.
func (r *Router) Routes() chi.Routes { return r.mux }

// Events returns the bus of the router's events, for Go code that follows
// a connection as the events route does.
func (r *Router) Events() *events.Bus { return r.conn.Events }

// Close ends what New created: the event streams, the keeper (after its
// round under way), and the flow manager, which ends its pending flows and
// frees their loopback ports. It is idempotent.
func (r *Router) Close() error {
	r.closeOnce.Do(func() {
		for _, stop := range r.stop {
			stop()
		}
	})
	return r.conn.Flows.Close()
}

// Route patterns used outside the route table.
const (
	callbackPattern       = "/profiles/{profile}/providers/{provider}/callback"
	clientMetadataPattern = "/profiles/{profile}/providers/{provider}/client-metadata"
)

// New returns the memconnect router. Its route table, relative to where the
// host mounts it (r.Mount("/api/memory", router)):
//
//	GET    /providers                                           registered providers
//	GET    /connections                                         the host's list of connections
//	GET    /profiles/{profile}/providers/{provider}/status      connection and flow status
//	POST   /profiles/{profile}/providers/{provider}/connect     start a browser or device flow (202)
//	GET    /profiles/{profile}/providers/{provider}/callback    OAuth redirect target; HTML
//	POST   /profiles/{profile}/providers/{provider}/cancel      cancel the pending flow
//	DELETE /profiles/{profile}/providers/{provider}/connection  disconnect: revoke, remove the grant
//	GET    /profiles/{profile}/providers/{provider}/events      Server-Sent Events of flows and the connection
//	GET    /profiles/{profile}/providers/{provider}/client-metadata  Client ID Metadata Document (MCP-style providers)
//
// and, deprecated, the two routes a Hermes desktop calls, in the Python
// router's shape, so that it works unchanged against a Go backend:
//
//	POST   /providers/{provider}/oauth/start?profile=P          start a loopback browser flow; Config.OpenBrowser opens it
//	GET    /providers/{provider}/oauth/status?profile=P         {"state", "detail", "connected", "auth", "authorize_url"}
//
// Every request passes, in this order, the request id, access log, panic
// recovery, Host guard, Origin guard, session token (not on the callback
// and the client metadata document, which a browser and an authorization
// server fetch without it)
// and 64 KiB body limit middleware of package middleware. Unknown paths
// and methods get JSON errors "not_found" (404) and "method_not_allowed"
// (405, with an Allow header).
//
// New fails, naming the field, when Registry or Profiles is missing, when
// Profiles cannot resolve any profile (a [provider.HermesProfiles] without
// Root), or when CallbackBaseURL is not an http(s) URL (or names localhost
// instead of 127.0.0.1).
func New(cfg Config) (*Router, error) {
	if cfg.Registry == nil {
		return nil, errors.New("memconnect: Config.Registry is required")
	}
	if cfg.Profiles == nil {
		return nil, errors.New("memconnect: Config.Profiles is required (for Hermes: provider.HermesProfiles{Root: ...})")
	}
	if v, ok := cfg.Profiles.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("memconnect: Config.Profiles: %w", err)
		}
	}
	if cfg.LoopbackAddr != "" {
		if err := flow.CheckLoopbackAddr(cfg.LoopbackAddr); err != nil {
			return nil, fmt.Errorf("memconnect: Config.LoopbackAddr: %w", err)
		}
	}
	callbackBase, err := provider.ValidateCallbackBaseURL(cfg.CallbackBaseURL)
	if err != nil {
		return nil, fmt.Errorf("memconnect: Config.CallbackBaseURL: %w", err)
	}
	now := clock.Or(cfg.Clock).Now
	conn := &provider.Connector{
		Registry:        cfg.Registry,
		Profiles:        cfg.Profiles,
		CallbackBaseURL: callbackBase,
		LoopbackAddr:    cfg.LoopbackAddr,
		HTTPClient:      cfg.HTTPClient,
		Logger:          cfg.Logger,
		Clock:           cfg.Clock,
		GrantStore:      cfg.GrantStore,
		Events:          cfg.Events,
		ConnectTimeout:  cfg.ConnectTimeout,
		Observer:        cfg.Observer,
	}
	if conn.Events == nil {
		conn.Events = events.NewBus(events.MaxSubscribers(cfg.MaxEventStreams), events.PerProfile(cfg.MaxEventStreamsPerProfile))
	}
	var sessions *connsession.Keys
	if len(cfg.SessionKeys) > 0 {
		var err error
		if sessions, err = connsession.New(cfg.SessionKeys); err != nil {
			return nil, fmt.Errorf("memconnect: Config.SessionKeys: %w", err)
		}
	}
	// The flow manager is made last of what can fail, and closed if what
	// follows does.
	conn.Flows = conn.NewFlows(flow.Config{Store: cfg.FlowStore, Page: handlers.WriteCallbackPage, Words: handlers.FlowWords})
	h, err := handlers.New(conn, handlers.WithOpenBrowser(cfg.OpenBrowser), handlers.WithHeartbeat(cfg.EventHeartbeat),
		handlers.WithAuthorize(cfg.Authorize))
	if err != nil {
		conn.Flows.Close()
		return nil, fmt.Errorf("memconnect: %w", err)
	}
	hosts := allowedHosts(cfg.AllowedHosts, callbackBase)
	sessionOpts := []middleware.SessionOption{}
	if sessions != nil {
		sessionOpts = append(sessionOpts, middleware.WithConnectSessions(func(tok string) (string, []string, bool, error) {
			if !connsession.Is(tok) {
				return "", nil, false, nil
			}
			c, err := sessions.Verify(tok, now(), MaxConnectSessionTTL)
			if errors.Is(err, connsession.ErrExpired) {
				err = fmt.Errorf("%w: %w", middleware.ErrSessionExpired, err)
			}
			return c.Profile, c.Providers, true, err
		}))
	}

	r := chi.NewRouter()
	r.Use(
		middleware.RequestID,
		middleware.AccessLog(cfg.Logger),
		middleware.Recoverer,
		middleware.HostGuard(hosts),
		middleware.OriginGuard(cfg.AllowedOrigins, hosts),
		middleware.SessionToken(cfg.SessionToken, isRoute(r, http.MethodGet, callbackPattern, clientMetadataPattern), sessionOpts...),
		middleware.BodyLimit(middleware.DefaultBodyLimit),
	)
	r.NotFound(handlers.NotFound)
	r.MethodNotAllowed(withAllow(r, handlers.MethodNotAllowed))

	r.Get("/providers", h.ListProviders)
	r.Get("/connections", h.Connections)
	r.Get("/profiles/{profile}/providers/{provider}/status", h.Status)
	r.Post("/profiles/{profile}/providers/{provider}/connect", h.Connect)
	r.Get(callbackPattern, h.Callback)
	r.Post("/profiles/{profile}/providers/{provider}/cancel", h.Cancel)
	r.Delete("/profiles/{profile}/providers/{provider}/connection", h.Disconnect)
	r.Get("/profiles/{profile}/providers/{provider}/events", h.Events)
	r.Post("/profiles/{profile}/providers/{provider}/token", h.Token)
	r.Get(clientMetadataPattern, h.ClientMetadata)
	r.Post("/providers/{provider}/oauth/start", h.HermesOAuthStart)
	r.Get("/providers/{provider}/oauth/status", h.HermesOAuthStatus)
	hostGuard, tokenGuard := middleware.HostGuard(hosts), middleware.SessionToken(cfg.SessionToken, nil)
	rt := &Router{mux: r, conn: conn, sessions: sessions, now: now, stop: []func(){h.Close},
		guard: func(h http.Handler) http.Handler { return middleware.RequestID(hostGuard(tokenGuard(h))) }}
	if cfg.Observer != nil {
		rt.stop = append(rt.stop, conn.Events.Tap(flowObserver(cfg.Observer)))
	}
	if cfg.KeepFresh != 0 {
		stop, err := startKeeper(rt, cfg)
		if err != nil {
			rt.Close()
			return nil, fmt.Errorf("memconnect: Config.KeepFresh: %w", err)
		}
		rt.stop = append(rt.stop, stop)
	}
	return rt, nil
}

// allowedHosts returns the hosts the guards allow: hosts, or the loopback
// names when there are none, and the host of the callback base URL.
func allowedHosts(hosts []string, callbackBase string) []string {
	out := append([]string(nil), hosts...)
	if len(out) == 0 {
		out = []string{"localhost", "127.0.0.1", "::1"}
	}
	if callbackBase != "" {
		u, err := url.Parse(callbackBase)
		if err == nil && u.Hostname() != "" && !slices.ContainsFunc(out, func(h string) bool {
			return strings.EqualFold(strings.Trim(h, "[]"), u.Hostname())
		}) {
			out = append(out, u.Hostname())
		}
	}
	return out
}

// isRoute returns a predicate reporting whether a request is routed by r to
// the route pattern with the given method. It asks r itself, so it agrees
// with the routing exactly; it may be called only once r's routes are set.
func isRoute(r chi.Routes, method string, patterns ...string) func(*http.Request) bool {
	return func(req *http.Request) bool {
		return req.Method == method && slices.Contains(patterns, r.Find(chi.NewRouteContext(), method, handlers.RoutePath(req)))
	}
}

// withAllow wraps a 405 handler so that the answer carries the Allow header
// (RFC 9110, section 15.5.6) with the methods r routes for the path.
func withAllow(r chi.Routes, next http.HandlerFunc) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions}
	return func(w http.ResponseWriter, req *http.Request) {
		path := handlers.RoutePath(req)
		var allow []string
		for _, m := range methods {
			if r.Find(chi.NewRouteContext(), m, path) != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
		}
		next(w, req)
	}
}
