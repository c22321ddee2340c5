package honchofake

import (
	"time"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
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
)

type (
	// Server is the authorization server; see [oauthfake.Server].
	Server = oauthfake.Server
	// Option configures a [Server].
	Option = oauthfake.Option
)

// NewServer starts an authorization server in Honcho's likeness
// ([Defaults]); opts come after those and override them. Close it with
// [Server.Close].
func NewServer(opts ...Option) *Server {
	return oauthfake.NewServer(append(Defaults(), opts...)...)
}

// Defaults are Honcho's: the client [DefaultClientID] (unless
// [oauthfake.WithClientID] names others), Honcho's token prefixes and
// scope, and "honchotest" on its pages.
func Defaults() []Option {
	return []Option{
		oauthfake.WithName("honchotest"),
		oauthfake.WithDefaultClientID(DefaultClientID),
		oauthfake.WithAccessTokenPrefix(DefaultAccessTokenPrefix),
		oauthfake.WithRefreshTokenPrefix(DefaultRefreshTokenPrefix),
		oauthfake.WithDefaultScope(DefaultScope),
	}
}

// WithAccessTokenPrefix is [oauthfake.WithAccessTokenPrefix].
func WithAccessTokenPrefix(p string) Option { return oauthfake.WithAccessTokenPrefix(p) }

// WithAccessTokenTTL is [oauthfake.WithAccessTokenTTL].
func WithAccessTokenTTL(d time.Duration) Option { return oauthfake.WithAccessTokenTTL(d) }

// WithClock is [oauthfake.WithClock].
func WithClock(c clock.Clock) Option { return oauthfake.WithClock(c) }

// WithAutoApprove is [oauthfake.WithAutoApprove].
func WithAutoApprove() Option { return oauthfake.WithAutoApprove() }

// WithGrantConfig is [oauthfake.WithGrantConfig]: the "config" Honcho
// returns with a new grant, such as {"peerName": "alice"}.
func WithGrantConfig(cfg map[string]any) Option { return oauthfake.WithGrantConfig(cfg) }

// WithUserHome is [oauthfake.WithUserHome]: the "~" of the config_path
// Honcho's consent page shows.
func WithUserHome(dir string) Option { return oauthfake.WithUserHome(dir) }

// WithDeviceFlow is [oauthfake.WithDeviceFlow].
func WithDeviceFlow(enabled bool) Option { return oauthfake.WithDeviceFlow(enabled) }

// WithAPIKey is [oauthfake.WithAPIKey]: an API key Honcho's API accepts.
func WithAPIKey(key string) Option { return oauthfake.WithAPIKey(key) }
