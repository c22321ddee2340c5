package honchotest

import (
	"net/http"
	"time"

	"github.com/memconnect/memconnect/oauth/oauthtest"
)

// Honcho's defaults, which [NewServer] starts from.
const (
	// DefaultClientID is the public client Hermes is registered as.
	DefaultClientID = "hermes-agent"
	// DefaultAccessTokenPrefix starts every access token, as Honcho's do.
	DefaultAccessTokenPrefix = "hch-at-"
	// DefaultRefreshTokenPrefix starts every refresh token, as Honcho's do.
	DefaultRefreshTokenPrefix = "hch-rt-"
	// DefaultScope is Honcho's scope, granted when a request names none.
	DefaultScope = "write"
	// DefaultAccessTokenTTL is the access token lifetime.
	DefaultAccessTokenTTL = oauthtest.DefaultAccessTokenTTL
	// DefaultDeviceInterval is the device polling interval in seconds.
	DefaultDeviceInterval = oauthtest.DefaultDeviceInterval
	// DefaultDeviceCodeTTL is the device code lifetime.
	DefaultDeviceCodeTTL = oauthtest.DefaultDeviceCodeTTL
	// DeviceCodeGrantType is the grant_type of device access token
	// requests (RFC 8628 section 3.4).
	DeviceCodeGrantType = oauthtest.DeviceCodeGrantType
)

// The errors of [Server.ApproveDevice] and [Server.DenyDevice].
var (
	ErrUnknownUserCode = oauthtest.ErrUnknownUserCode
	ErrUserCodeExpired = oauthtest.ErrUserCodeExpired
	ErrUserCodeDecided = oauthtest.ErrUserCodeDecided
)

type (
	// Server is the authorization server; see [oauthtest.Server].
	Server = oauthtest.Server
	// Option configures a [Server].
	Option = oauthtest.Option
	// Stats are a [Server]'s counters.
	Stats = oauthtest.Stats
)

// NewServer starts an authorization server in Honcho's likeness: the client
// [DefaultClientID] (unless [WithClientID] names others), Honcho's token
// prefixes and scope, and "honchotest" on its pages; opts come after those
// and override them. Close it with [Server.Close].
func NewServer(opts ...Option) *Server {
	honcho := []Option{
		oauthtest.WithName("honchotest"),
		oauthtest.WithDefaultClientID(DefaultClientID),
		oauthtest.WithAccessTokenPrefix(DefaultAccessTokenPrefix),
		oauthtest.WithRefreshTokenPrefix(DefaultRefreshTokenPrefix),
		oauthtest.WithDefaultScope(DefaultScope),
	}
	return oauthtest.NewServer(append(honcho, opts...)...)
}

// WithClientID is [oauthtest.WithClientID].
func WithClientID(id string) Option { return oauthtest.WithClientID(id) }

// WithAccessTokenPrefix is [oauthtest.WithAccessTokenPrefix].
func WithAccessTokenPrefix(p string) Option { return oauthtest.WithAccessTokenPrefix(p) }

// WithRefreshTokenPrefix is [oauthtest.WithRefreshTokenPrefix].
func WithRefreshTokenPrefix(p string) Option { return oauthtest.WithRefreshTokenPrefix(p) }

// WithAccessTokenTTL is [oauthtest.WithAccessTokenTTL].
func WithAccessTokenTTL(d time.Duration) Option { return oauthtest.WithAccessTokenTTL(d) }

// WithRefreshTokenTTL is [oauthtest.WithRefreshTokenTTL].
func WithRefreshTokenTTL(d time.Duration) Option { return oauthtest.WithRefreshTokenTTL(d) }

// WithClock is [oauthtest.WithClock].
func WithClock(now func() time.Time) Option { return oauthtest.WithClock(now) }

// WithAutoApprove is [oauthtest.WithAutoApprove].
func WithAutoApprove() Option { return oauthtest.WithAutoApprove() }

// WithAutoDeny is [oauthtest.WithAutoDeny].
func WithAutoDeny() Option { return oauthtest.WithAutoDeny() }

// WithGrantConfig is [oauthtest.WithGrantConfig]: the "config" Honcho
// returns with a new grant, such as {"peerName": "alice"}.
func WithGrantConfig(cfg map[string]any) Option { return oauthtest.WithGrantConfig(cfg) }

// WithUserHome is [oauthtest.WithUserHome]: the "~" of the config_path
// Honcho's consent page shows.
func WithUserHome(dir string) Option { return oauthtest.WithUserHome(dir) }

// WithDefaultScope is [oauthtest.WithDefaultScope].
func WithDefaultScope(scope string) Option { return oauthtest.WithDefaultScope(scope) }

// WithDeviceFlow is [oauthtest.WithDeviceFlow].
func WithDeviceFlow(enabled bool) Option { return oauthtest.WithDeviceFlow(enabled) }

// WithDeviceInterval is [oauthtest.WithDeviceInterval].
func WithDeviceInterval(seconds int) Option { return oauthtest.WithDeviceInterval(seconds) }

// WithDeviceCodeTTL is [oauthtest.WithDeviceCodeTTL].
func WithDeviceCodeTTL(d time.Duration) Option { return oauthtest.WithDeviceCodeTTL(d) }

// WithAPIKey is [oauthtest.WithAPIKey]: an API key Honcho's API accepts.
func WithAPIKey(key string) Option { return oauthtest.WithAPIKey(key) }

// WithClientIDMetadataDocuments is [oauthtest.WithClientIDMetadataDocuments].
func WithClientIDMetadataDocuments(c *http.Client) Option {
	return oauthtest.WithClientIDMetadataDocuments(c)
}
