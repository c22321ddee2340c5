package provider

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/observe"
)

// Connector connects profiles to providers: the use cases that the HTTP
// handlers and the command-line client share. It resolves names, decides
// every default of a connect request, builds the OAuth configuration from a
// provider's endpoints, drives the flows of a [flow.Manager], keeps one
// [oauth.Grants] per config file, applies the disconnect rules and builds
// the status report.
//
// Registry and Profiles are required; Flows is required by Connect,
// Callback, Cancel and Wait. Set the fields before first use and do not
// change them afterwards. Connector is safe for concurrent use by multiple
// goroutines; do not copy it after first use.
type Connector struct {
	// Registry holds the providers.
	Registry *Registry
	// Profiles resolves profile names.
	Profiles ProfileResolver
	// Flows runs authorization flows.
	Flows *flow.Manager
	// CallbackBaseURL, when not empty, is the absolute http(s) URL where
	// the host serves the callback route, such as
	// "http://127.0.0.1:8080/api/memory"; see [ValidateCallbackBaseURL].
	// Browser flows then default to [flow.RedirectCallback] with the
	// redirect URI CallbackBaseURL + "/profiles/{profile}/providers/{provider}/callback".
	CallbackBaseURL string
	// LoopbackAddr, when not empty, is where every provider's loopback
	// sign-in listens first, whatever the provider prefers
	// ([LoopbackAddresser]); "127.0.0.1:0" is any free port. Empty: the
	// provider's preference, else the flow manager's.
	LoopbackAddr string
	// HTTPClient is used for refreshes, metadata discovery and revocation;
	// nil means [http.DefaultClient].
	HTTPClient *http.Client
	// Logger receives the grant engine's log and warnings such as a failed
	// revocation. The zero value discards them.
	Logger zerolog.Logger
	// Clock is the clock of every expiry decision; nil means the system
	// clock.
	Clock clock.Clock
	// GrantStore, when not nil, keeps every profile's grants, keyed
	// "<provider>/<profile>", instead of the providers' config files: a
	// store that several instances share, such as package pgstore's. Such
	// a Connector knows grants only, no API keys.
	GrantStore oauth.GrantStore
	// Events, when not nil, receives a connection event for every grant
	// this Connector stores (connected), rotates through a TokenSource it
	// made (refreshed; refresh_failed when the server could not be
	// reached) or removes (disconnected).
	Events *events.Bus
	// ConnectTimeout bounds the work of [Connector.Connect] with the
	// provider's servers; zero means [DefaultConnectTimeout]. Each step
	// has its own deadline as well ([authserver.StepTimeout]).
	ConnectTimeout time.Duration
	// Observer, when not nil, receives the refreshes and API-key checks
	// this Connector makes, for metrics.
	Observer observe.Observer
	// OnInstalled, if not nil, is called with the token response of every
	// sign-in this Connector completes, after the grant is stored and
	// before the flow becomes connected; the server's "config" arrives
	// this way ([oauth2.Token.Extra]). It must not block. A sign-in that
	// another instance started and this one completes calls this one's,
	// so give every instance the same.
	OnInstalled func(key connid.ID, tok *oauth2.Token)

	storesOnce sync.Once
	stores     *Stores
	caps       oauth.Capabilities // of GrantStore, read with the stores
	sharedOnce sync.Once
	shared     *oauth.Grants

	mdMu sync.Mutex // guards md
	md   map[string]discovered

	followMu  sync.Mutex // guards followers and published
	followers map[connid.ID]*follower
	published map[connid.ID][]*publishedEvent // within echoWindow
	watch     dirWatch                        // the file watch of every follower

	sourcesMu sync.Mutex // guards sources
	sources   map[connid.ID]struct{}

	forced forced // the forced refreshes of agents' token requests
}

// ValidateCallbackBaseURL checks a callback base URL and returns it without
// a trailing slash. The empty string is valid (no callback mode). Otherwise
// it must be an absolute http or https URL with a host and without user
// information, query or fragment, and must not name localhost: loopback
// redirect URIs are IP literals (RFC 8252 section 8.3), since "localhost"
// may resolve elsewhere and servers such as Ory Hydra match the host
// exactly.
func ValidateCallbackBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("provider: callback base URL %q is not an absolute http(s) URL without query or fragment", raw)
	}
	if strings.EqualFold(u.Hostname(), "localhost") {
		return "", fmt.Errorf("provider: callback base URL %q names localhost; use the IP literal http://127.0.0.1:%s (RFC 8252 section 8.3)", raw, u.Port())
	}
	return strings.TrimRight(raw, "/"), nil
}

// Stores returns the shared stores of the config files, configured with the
// Connector's logger, HTTP client and clock.
func (c *Connector) Stores() *Stores {
	c.storesOnce.Do(func() {
		c.stores = NewStores(c.Logger, c.options()...)
		if c.GrantStore != nil {
			c.caps = oauth.CapabilitiesOf(c.GrantStore)
		}
		c.stores.clients = c.caps.Clients
	})
	return c.stores
}

// storeCaps returns what GrantStore can do beyond keeping grants; none
// without a GrantStore.
func (c *Connector) storeCaps() oauth.Capabilities {
	c.Stores()
	return c.caps
}

func (c *Connector) options() []oauth.Option {
	return []oauth.Option{oauth.WithLogger(c.Logger), oauth.WithHTTPClient(c.HTTPClient), oauth.WithClock(c.Clock)}
}

// grantRef is where a target's grant lives: the engine, the key in it and,
// for a config file, the file.
type grantRef struct {
	grants *oauth.Grants
	key    string
	file   *filestore.Store // nil for a GrantStore
	scope  string           // of a grant whose response names none
}

// where returns the grant of t: where it is read from, or with write where
// a new one goes.
func (c *Connector) where(t target, write bool) (grantRef, error) {
	loc, err := t.provider.GrantLocation(t.profile)
	if err != nil {
		return grantRef{}, err
	}
	if c.GrantStore != nil {
		c.sharedOnce.Do(func() { c.shared = oauth.NewGrants(c.GrantStore, c.options()...) })
		return grantRef{grants: c.shared, key: t.key.String(), scope: loc.Layout.DefaultScope}, nil
	}
	path := loc.ReadPath
	if write {
		path = loc.WritePath
	}
	st := c.Stores()
	return grantRef{grants: st.Grants(path, loc.Layout), key: loc.Host, file: st.File(path, loc.Layout), scope: loc.Layout.DefaultScope}, nil
}

// target is a resolved (profile, provider) pair.
type target struct {
	profile  Profile
	provider Provider
	key      connid.ID
}

// resolve looks up the provider and resolves the profile. The provider is
// looked up first so that an unknown provider is reported as such whatever
// the profile.
func (c *Connector) resolve(profileName, providerName string) (target, error) {
	if c.Registry == nil || c.Profiles == nil {
		return target{}, errors.New("provider: Connector needs a Registry and a ProfileResolver")
	}
	pv, ok := c.Registry.Lookup(providerName)
	if !ok {
		return target{}, fmt.Errorf("%w %s", ErrUnknownProvider, quoteShort(providerName))
	}
	p, err := c.Profiles.Resolve(profileName)
	if err != nil {
		return target{}, err
	}
	return target{profile: p, provider: pv, key: connid.ID{Profile: p.Name, Provider: pv.Name()}}, nil
}

// oauthTarget is resolve for an operation that needs OAuth.
func (c *Connector) oauthTarget(profileName, providerName string) (target, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return target{}, err
	}
	return t, t.needOAuth()
}

// needOAuth reports [ErrUnsupported] for a provider without OAuth.
func (t target) needOAuth() error {
	if !SupportsOAuth(t.provider) {
		return fmt.Errorf("%w: %s does not support OAuth", ErrUnsupported, t.provider.DisplayName())
	}
	return nil
}

// flowTarget is resolve for an operation on flows: it also returns the
// flow manager.
func (c *Connector) flowTarget(profileName, providerName string) (target, *flow.Manager, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return target{}, nil, err
	}
	if c.Flows == nil {
		return target{}, nil, errors.New("provider: Connector has no flow.Manager")
	}
	return t, c.Flows, nil
}

func (c *Connector) now() time.Time { return clock.Or(c.Clock).Now() }

func (c *Connector) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// loopbackAddr is where t's loopback listener binds first; "" for the flow
// manager's choice.
func (c *Connector) loopbackAddr(t target) string {
	if c.LoopbackAddr != "" {
		return c.LoopbackAddr
	}
	if la, ok := t.provider.(LoopbackAddresser); ok {
		return la.LoopbackAddr()
	}
	return ""
}

// callbackURL returns the redirect URI of the callback route for t, or ""
// when no callback base URL is configured.
func (c *Connector) callbackURL(t target) string {
	if c.CallbackBaseURL == "" {
		return ""
	}
	return strings.TrimRight(c.CallbackBaseURL, "/") + "/profiles/" + url.PathEscape(t.profile.Name) +
		"/providers/" + url.PathEscape(t.provider.Name()) + "/callback"
}

// publishedEvent is a connection event a Connector published, or is about
// to publish, for a key, so that Follow does not publish it again when it
// sees the write.
type publishedEvent struct {
	what string
	at   time.Time
}

// expect records, before a write of this Connector's, the event the write
// will publish, so that Follow does not publish the write as another
// process's when it sees it before the publish does. undo forgets it, for
// a write that failed or changed nothing. Every event of the last
// echoWindow is kept, not only the last: a watch that looks late at one
// write (a sign-in) may look after the next one (a disconnect) was
// expected.
func (c *Connector) expect(key connid.ID, what string) (undo func()) {
	if c.Events == nil {
		return func() {}
	}
	e := &publishedEvent{what, time.Now()}
	c.followMu.Lock()
	defer c.followMu.Unlock()
	if c.published == nil {
		c.published = make(map[connid.ID][]*publishedEvent)
	}
	recent := slices.DeleteFunc(c.published[key], func(p *publishedEvent) bool { return time.Since(p.at) >= echoWindow })
	c.published[key] = append(recent, e)
	return func() {
		c.followMu.Lock()
		defer c.followMu.Unlock()
		c.published[key] = slices.DeleteFunc(c.published[key], func(p *publishedEvent) bool { return p == e })
		if len(c.published[key]) == 0 {
			delete(c.published, key)
		}
	}
}

// publish sends a connection event for key, when the Connector has a bus.
func (c *Connector) publish(key connid.ID, what string) {
	if c.Events == nil {
		return
	}
	c.expect(key, what)
	c.Events.Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: what})
}

// NewFlows returns a flow manager for c's sign-ins, to set as c.Flows
// (the caller closes it): cfg, with its Clock, HTTPClient and Logger
// replaced by c's, Resume by c's (a sign-in started by another instance
// completes here as one started here), and OnChange by c.Events' when c
// has a bus. The router and a command-line sign-in build their managers
// with it, so that both wire a flow the same way.
func (c *Connector) NewFlows(cfg flow.Config) *flow.Manager {
	cfg.Clock, cfg.HTTPClient, cfg.Logger = c.Clock, c.HTTPClient, c.Logger
	cfg.Resume = c.Resume
	cfg.OnChange = nil
	if c.Events != nil {
		cfg.OnChange = c.Events.PublishFlow
	}
	return flow.NewManager(cfg)
}
