package honchotest

import (
	"time"

	"github.com/memconnect/memconnect/clock"
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
)

type (
	// Server is the authorization server; see [oauthtest.Server].
	Server = oauthtest.Server
	// Option configures a [Server].
	Option = oauthtest.Option
)

// NewServer starts an authorization server in Honcho's likeness: the client
// [DefaultClientID] (unless [oauthtest.WithClientID] names others), Honcho's token
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

// WithAccessTokenPrefix is [oauthtest.WithAccessTokenPrefix].
func WithAccessTokenPrefix(p string) Option { return oauthtest.WithAccessTokenPrefix(p) }

// WithAccessTokenTTL is [oauthtest.WithAccessTokenTTL].
func WithAccessTokenTTL(d time.Duration) Option { return oauthtest.WithAccessTokenTTL(d) }

// WithClock is [oauthtest.WithClock].
func WithClock(c clock.Clock) Option { return oauthtest.WithClock(c) }

// WithAutoApprove is [oauthtest.WithAutoApprove].
func WithAutoApprove() Option { return oauthtest.WithAutoApprove() }

// WithGrantConfig is [oauthtest.WithGrantConfig]: the "config" Honcho
// returns with a new grant, such as {"peerName": "alice"}.
func WithGrantConfig(cfg map[string]any) Option { return oauthtest.WithGrantConfig(cfg) }

// WithUserHome is [oauthtest.WithUserHome]: the "~" of the config_path
// Honcho's consent page shows.
func WithUserHome(dir string) Option { return oauthtest.WithUserHome(dir) }

// WithDeviceFlow is [oauthtest.WithDeviceFlow].
func WithDeviceFlow(enabled bool) Option { return oauthtest.WithDeviceFlow(enabled) }

// WithAPIKey is [oauthtest.WithAPIKey]: an API key Honcho's API accepts.
func WithAPIKey(key string) Option { return oauthtest.WithAPIKey(key) }
