package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
)

// FileName is the grant file in each profile's home directory.
const FileName = "memconnect.json"

// SupermemoryURL is Supermemory's MCP server.
const SupermemoryURL = "https://mcp.supermemory.ai/mcp"

// discoveryTTL is how long discovered metadata is reused.
const discoveryTTL = 10 * time.Minute

// Provider is a memory server behind the MCP authorization model. It
// implements [provider.Provider], [provider.Registrar] and
// [provider.KeyChecker]; build it with [New]. It is safe for concurrent
// use by multiple goroutines.
type Provider struct {
	name, display, serverURL string
	clientID                 string // pre-registered; "" = register
	clientName               string
	scopes                   []string // override
	client                   *http.Client
	oauth, apiKeys           bool
	now                      func() time.Time

	mu       sync.Mutex // guards disc, discAt, failedAt and registering
	disc     *discovery
	discAt   time.Time
	failedAt time.Time // the last discovery that failed
	// registering holds the registrations under way, by what they are
	// for, so that concurrent sign-ins share one without waiting on a
	// lock held across the network.
	registering map[string]*registerCall

	regMu sync.Mutex // guards a profile file's registration member across its read and write; never held across a request
}

var (
	_ provider.Provider         = (*Provider)(nil)
	_ provider.MethodDiscoverer = (*Provider)(nil)
	_ provider.IssuerChecker    = (*Provider)(nil)
	_ provider.Registrar        = (*Provider)(nil)
	_ provider.KeyChecker       = (*Provider)(nil)
)

// Option configures a [Provider].
type Option func(*Provider)

// WithClientID uses a client registered with the authorization server
// beforehand instead of registering one.
func WithClientID(id string) Option { return func(p *Provider) { p.clientID = id } }

// WithClientName sets the client_name of a registration; the default is
// "memconnect".
func WithClientName(name string) Option { return func(p *Provider) { p.clientName = name } }

// WithScopes sets the scopes requested, instead of the ones the server
// names.
func WithScopes(scopes ...string) Option {
	return func(p *Provider) { p.scopes = slices.Clone(scopes) }
}

// WithHTTPClient sets the client of discovery, registration and key
// checks; the default is [http.DefaultClient].
func WithHTTPClient(c *http.Client) Option { return func(p *Provider) { p.client = c } }

// WithAPIKeys adds API-key sign-in ([provider.AuthKey]): the key is stored
// as the server's "token" and checked with one request to the server
// first.
func WithAPIKeys() Option { return func(p *Provider) { p.apiKeys = true } }

// WithoutOAuth makes a key-only provider: no browser sign-in. It implies
// [WithAPIKeys].
func WithoutOAuth() Option { return func(p *Provider) { p.oauth, p.apiKeys = false, true } }

// WithClock sets the clock of the discovery cache and registrations; nil
// means [time.Now].
func WithClock(c clock.Clock) Option { return func(p *Provider) { p.now = clock.Or(c).Now } }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// New returns the provider named name (its URL path segment: lower-case
// letters, digits, '-' and '_', at most 32) for the server at serverURL,
// which must be an https URL (http on a loopback host, for tests and local
// development) without query or fragment.
func New(name, displayName, serverURL string, opts ...Option) (*Provider, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("mcp: provider name %q: use at most 32 lower-case letters, digits, '-' or '_'", name)
	}
	if err := authserver.CheckResourceURL(serverURL); err != nil {
		return nil, fmt.Errorf("mcp: provider %s: server URL %w", name, err)
	}
	if displayName == "" {
		displayName = name
	}
	p := &Provider{name: name, display: displayName, serverURL: serverURL, clientName: "memconnect", oauth: true, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Supermemory is the preset for Supermemory's MCP server
// ([SupermemoryURL]): browser sign-in and API keys.
func Supermemory(opts ...Option) *Provider {
	p, err := New("supermemory", "Supermemory", SupermemoryURL, append([]Option{WithAPIKeys()}, opts...)...)
	if err != nil {
		panic(err) // a constant name and URL
	}
	return p
}

// Name implements [provider.Provider].
func (p *Provider) Name() string { return p.name }

// DisplayName implements [provider.Provider].
func (p *Provider) DisplayName() string { return p.display }

// ServerURL is the server's URL, as configured.
func (p *Provider) ServerURL() string { return p.serverURL }

// AuthMethods implements [provider.Provider]: the browser flow unless
// [WithoutOAuth], and [provider.AuthKey] with [WithAPIKeys].
func (p *Provider) AuthMethods() []provider.AuthMethod {
	p.mu.Lock()
	d := p.disc
	p.mu.Unlock()
	return p.methods(d)
}

// methods are the sign-in methods with the discovery d (nil: none yet):
// the device flow when the authorization server announces it (RFC 8628).
func (p *Provider) methods(d *discovery) []provider.AuthMethod {
	var ms []provider.AuthMethod
	if p.oauth {
		ms = append(ms, provider.AuthBrowser)
		if d != nil && d.md.SupportsDeviceFlow() {
			ms = append(ms, provider.AuthDevice)
		}
	}
	if p.apiKeys {
		ms = append(ms, provider.AuthKey)
	}
	return ms
}

// methodsRetry is how long after a failed discovery DiscoverMethods does
// not ask again (a sign-in still does).
const methodsRetry = time.Minute

// DiscoverMethods implements [provider.MethodDiscoverer]: the methods
// with the server's discovery, made within ctx or taken from the last
// one; without it, the methods known without the network.
func (p *Provider) DiscoverMethods(ctx context.Context) []provider.AuthMethod {
	if !p.oauth {
		return p.methods(nil)
	}
	p.mu.Lock()
	recent := p.disc == nil && p.now().Sub(p.failedAt) < methodsRetry
	p.mu.Unlock()
	if recent {
		return p.methods(nil) // a server that just failed is not asked on every listing
	}
	d, err := p.discover(ctx)
	if err != nil {
		return p.AuthMethods()
	}
	return p.methods(d)
}

// layout is where the grant file keeps a server's grant.
func (p *Provider) layout() filestore.Layout {
	return filestore.Layout{Section: "servers", AccessToken: "token", Fields: "oauth", Verdict: "oauthRejected"}
}

// GrantLocation implements [provider.Provider]: the profile's
// [FileName], under "servers" and the provider's name.
func (p *Provider) GrantLocation(prof provider.Profile) (provider.GrantLocation, error) {
	if prof.Home == "" {
		return provider.GrantLocation{}, fmt.Errorf("mcp: profile %q has no home directory", prof.Name)
	}
	path := filepath.Join(prof.Home, FileName)
	return provider.GrantLocation{ReadPath: path, WritePath: path, Host: p.name, Layout: p.layout()}, nil
}

// Status implements [provider.Provider].
func (p *Provider) Status(ctx context.Context, prof provider.Profile, stores *provider.Stores) (provider.Status, error) {
	loc, err := p.GrantLocation(prof)
	if err != nil {
		return provider.Status{}, err
	}
	st := provider.Status{Supported: p.oauth}
	c, err := stores.File(loc.ReadPath, loc.Layout).Credentials(ctx, loc.Host)
	if err != nil {
		return provider.Status{}, err
	}
	switch {
	case c.Grant != nil:
		g := c.Grant
		st.Connected, st.Auth = true, provider.AuthOAuth
		st.ReauthRequired = c.Rejected != "" || stores.Grants(loc.ReadPath, loc.Layout).ReauthRequired(loc.Host)
		st.Token = &provider.TokenInfo{ClientID: g.ClientID, Scope: g.Scope, ExpiresAt: g.Expiry, Refreshable: g.RefreshToken != "", TokenEndpoint: g.TokenEndpoint, Obtained: g.Obtained}
	case c.APIKey != "":
		st.Connected, st.Auth, st.APIKeySource = true, provider.AuthAPIKey, c.APIKeySource
	}
	return st, nil
}

// Moved implements [provider.IssuerChecker]: the last discovery names an
// authorization server whose token endpoint is not tokenEndpoint.
func (p *Provider) Moved(tokenEndpoint string) bool {
	p.mu.Lock()
	d := p.disc
	p.mu.Unlock()
	return d != nil && tokenEndpoint != "" && d.md.TokenEndpoint != tokenEndpoint
}

// CheckAPIKey implements [provider.KeyChecker]: it sends the server one
// MCP initialize request with the key as its Bearer token. 401 or 403 is a
// rejection; any other answer means the key passed the server's
// authentication.
func (p *Provider) CheckAPIKey(ctx context.Context, _ provider.Profile, key string) error {
	status, _, err := authserver.Probe(ctx, p.client, p.serverURL, key)
	if err != nil {
		return fmt.Errorf("mcp: the API key could not be checked at %s: %w", p.serverURL, err)
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return &provider.APIKeyError{Reason: fmt.Sprintf("%s refused the key (HTTP %d); copy it again from %s", p.display, status, p.display)}
	}
	return nil
}

// errNoClient reports a server without a way to get a client.
var errNoClient = errors.New("the authorization server offers no dynamic client registration (RFC 7591); configure a client id registered with it")
