package honcho

import (
	"net/http"
	"slices"
	"sync"

	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
)

// Defaults of the Honcho cloud service and its registered public client.
const (
	// Name is the provider's name in URLs and in a [provider.Registry].
	Name = "honcho"
	// CloudAuthorizeURL is the Honcho cloud's authorization endpoint (the
	// dashboard's consent page).
	CloudAuthorizeURL = "https://app.honcho.dev/authorize"
	// CloudTokenURL is the Honcho cloud's token endpoint.
	CloudTokenURL = "https://api.honcho.dev/oauth/token"
	// LocalAuthorizeURL is the authorization endpoint of a local
	// development setup (environment "local").
	LocalAuthorizeURL = "http://localhost:3000/authorize"
	// LocalTokenURL is the token endpoint of a local development setup.
	LocalTokenURL = "http://localhost:8000/oauth/token"
	// DefaultClientID is the public client Hermes is registered as.
	DefaultClientID = "hermes-agent"
	// LoopbackAddr is where a loopback sign-in listens first: the port
	// DefaultClientID's redirect URI is registered with, on the IPv4
	// loopback literal (RFC 8252 sections 7.3 and 8.3).
	LoopbackAddr = "127.0.0.1:8765"
	// DefaultScope is the scope requested.
	DefaultScope = "write"
	// DefaultAccessTokenPrefix marks a Honcho OAuth access token.
	DefaultAccessTokenPrefix = "hch-at-"
)

// Provider is the Honcho memory provider. It implements
// [provider.Provider]; build it with [New]. It is safe for concurrent use by
// multiple goroutines.
type Provider struct {
	authorizeURL  string // override; "" = derived from the profile's config
	tokenURL      string // override
	deviceAuthURL string // override
	revocationURL string // override
	issuer        string // override
	clientID      string
	scopes        []string
	prefix        string
	userHome      string // "" = no ~/.honcho/config.json fallback and absolute display paths
	configFile    string // override of the file for every profile
	host          string // override of the host key for every profile
	envAPIKey     string // HONCHO_API_KEY; a secret, never logged

	keyCheckURL    string       // "" = API keys are stored unchecked
	keyCheckClient *http.Client // nil = http.DefaultClient

	peerMu sync.Mutex           // guards peers
	peers  map[string]peerCache // the peer name of each config file, by path

	chainMu sync.Mutex // guards chains
	chains  map[provider.Profile]grantChain
}

var (
	_ provider.Provider          = (*Provider)(nil)
	_ provider.LoopbackAddresser = (*Provider)(nil)
)

// Option configures a [Provider].
type Option func(*Provider)

// WithAuthorizeURL sets the authorization endpoint for every profile,
// overriding the one derived from the profile's config.
func WithAuthorizeURL(u string) Option { return func(p *Provider) { p.authorizeURL = u } }

// WithTokenURL sets the token endpoint for every profile, overriding the
// one derived from the profile's config.
func WithTokenURL(u string) Option { return func(p *Provider) { p.tokenURL = u } }

// WithDeviceAuthURL sets the device authorization endpoint (RFC 8628). The
// default is "device_authorization" next to the token endpoint.
func WithDeviceAuthURL(u string) Option { return func(p *Provider) { p.deviceAuthURL = u } }

// WithRevocationURL sets the token revocation endpoint (RFC 7009). Without
// it the endpoint is discovered from the issuer's metadata (RFC 8414).
func WithRevocationURL(u string) Option { return func(p *Provider) { p.revocationURL = u } }

// WithIssuer sets the authorization server's issuer identifier used for
// metadata discovery. The default is the origin of the token endpoint.
func WithIssuer(u string) Option { return func(p *Provider) { p.issuer = u } }

// WithClientID sets the OAuth client identifier; the default is
// [DefaultClientID].
func WithClientID(id string) Option { return func(p *Provider) { p.clientID = id } }

// WithScopes sets the scopes requested; the default is [DefaultScope].
func WithScopes(scopes ...string) Option {
	return func(p *Provider) { p.scopes = slices.Clone(scopes) }
}

// WithAccessTokenPrefix sets the prefix that marks an OAuth access token
// (default [DefaultAccessTokenPrefix]); "" accepts any access token.
func WithAccessTokenPrefix(prefix string) Option { return func(p *Provider) { p.prefix = prefix } }

// WithUserHome sets the user's home directory. It enables the fallback to
// "<home>/.honcho/config.json" and home-relative display paths ("~/..."). The
// package never looks the home directory up itself.
func WithUserHome(dir string) Option { return func(p *Provider) { p.userHome = dir } }

// WithConfigFile makes every profile read and write its grant in the file
// at path, bypassing the fallback chain.
func WithConfigFile(path string) Option { return func(p *Provider) { p.configFile = path } }

// WithHost makes every profile use the host key host instead of "hermes" or
// "hermes_<profile>".
func WithHost(host string) Option { return func(p *Provider) { p.host = host } }

// EnvAPIKey implements [provider.EnvKeyer]: the key of [WithAPIKey], "" for
// none.
func (p *Provider) EnvAPIKey() string { return p.envAPIKey }

var _ provider.EnvKeyer = (*Provider)(nil)

// WithAPIKey sets the API key used when a profile's config has none (the
// value of HONCHO_API_KEY). It only affects [Provider.Status].
func WithAPIKey(key string) Option { return func(p *Provider) { p.envAPIKey = key } }

// New returns the Honcho provider configured by opts.
func New(opts ...Option) *Provider {
	p := &Provider{
		clientID: DefaultClientID,
		scopes:   []string{DefaultScope},
		prefix:   DefaultAccessTokenPrefix,
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name implements [provider.Provider]; it returns "honcho".
func (p *Provider) Name() string { return Name }

// LoopbackAddr implements [provider.LoopbackAddresser]: [LoopbackAddr].
func (p *Provider) LoopbackAddr() string { return LoopbackAddr }

// DisplayName implements [provider.Provider]; it returns "Honcho".
func (p *Provider) DisplayName() string { return "Honcho" }

// AuthMethods implements [provider.Provider]: the browser flow with PKCE,
// the device flow, and an API key (stored as the host block's "apiKey",
// with no "oauth" block).
func (p *Provider) AuthMethods() []provider.AuthMethod {
	return []provider.AuthMethod{provider.AuthBrowser, provider.AuthDevice, provider.AuthKey}
}

// VerdictKey is the member of a host block that records a grant the
// server rejected, so that every process sees that a sign-in is needed:
// {"refreshTokenSha256": "<hex>", "error": "invalid_grant"}. It holds a
// fingerprint of the refresh token, never the token; the Python agent keeps
// it (it rewrites only "apiKey" and "oauth"), and a new grant clears it.
const VerdictKey = "oauthRejected"

// layout is where honcho.json keeps a profile's grant: the host block
// hosts.<host>, with the access token in "apiKey" and the rest in "oauth".
// The root's "apiKey" is the API key of every host without one.
func (p *Provider) layout() filestore.Layout {
	return filestore.Layout{
		Section:           "hosts",
		AccessToken:       "apiKey",
		Fields:            "oauth",
		AccessTokenPrefix: p.prefix,
		PrefixSetting:     EnvTokenPrefix + " (honcho.WithAccessTokenPrefix in Go)",
		DefaultScope:      DefaultScope,
		RootAPIKey:        true,
		Verdict:           VerdictKey,
	}
}
