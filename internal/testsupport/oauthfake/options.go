package oauthfake

import (
	"time"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/internal/testsupport/memnet"
)

// An Option configures a [Server]. Options are applied by [NewServer], before
// the server starts; calling one on a running server is a data race.
type Option func(*Server)

// WithClientID registers id as a public client (token_endpoint_auth_method
// "none": the client_id travels in the form, no secret). Without this option
// the only client is [DefaultClientID] (or [WithDefaultClientID]'s). Given more than once, every id is
// registered and the first is the primary one ([Server.ClientID]). Requests
// naming any other client id get invalid_client. An empty id is ignored.
func WithClientID(id string) Option {
	return func(s *Server) {
		if id == "" {
			return
		}
		if !s.clientIDsSet {
			s.clientIDs = nil
			s.clientIDsSet = true
		}
		s.clientIDs = append(s.clientIDs, id)
	}
}

// WithDefaultClientID sets the client registered when [WithClientID] is
// not given ([DefaultClientID] otherwise). A server in a provider's
// likeness gives its own client this way, before the caller's options.
func WithDefaultClientID(id string) Option {
	return func(s *Server) {
		if !s.clientIDsSet && id != "" {
			s.clientIDs = []string{id}
		}
	}
}

// WithName names the server on its pages and in its challenges' realm
// ("oauthtest" otherwise).
func WithName(name string) Option { return func(s *Server) { s.name = name } }

// WithAccessTokenPrefix sets the prefix of every access token; the default is
// [DefaultAccessTokenPrefix].
func WithAccessTokenPrefix(p string) Option {
	return func(s *Server) { s.accessPrefix = p }
}

// WithRefreshTokenPrefix sets the prefix of every refresh token; the default
// is [DefaultRefreshTokenPrefix].
func WithRefreshTokenPrefix(p string) Option {
	return func(s *Server) { s.refreshPrefix = p }
}

// WithAccessTokenTTL sets the lifetime of access tokens; the default is one
// hour. The expires_in field of token responses is the lifetime in whole
// seconds, at least 1. Non-positive durations are ignored.
func WithAccessTokenTTL(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.accessTTL = d
		}
	}
}

// WithoutRefreshTokens makes the server issue no refresh tokens, as RFC
// 6749 section 5.1 allows (the MCP TypeScript SDK's example server does
// so): a grant ends with its access token.
func WithoutRefreshTokens() Option { return func(s *Server) { s.noRefresh = true } }

// WithRefreshTokenTTL sets the lifetime of refresh tokens. By default refresh
// tokens never expire; they end only by rotation or revocation. An expired
// refresh token is answered with invalid_grant. Non-positive durations mean
// "never expire".
func WithRefreshTokenTTL(d time.Duration) Option {
	return func(s *Server) {
		if d < 0 {
			d = 0
		}
		s.refreshTTL = d
	}
}

// WithClock sets the clock used for every expiry decision: authorization
// codes, access and refresh tokens, consent requests, device codes and the
// device polling rate. The default is [time.Now]. now must be safe for
// concurrent use and must not call back into the [Server].
//
// The device polling rate is measured with this clock too, so a frozen clock
// makes every device poll after the first one "too fast" (slow_down); advance
// the clock between polls, or poll only once after approving.
func WithClock(c clock.Clock) Option {
	return func(s *Server) {
		if c != nil {
			s.now = c.Now
		}
	}
}

// WithAutoApprove makes GET /authorize redirect straight back to the client
// with an authorization code, as if a person had approved, without showing
// the consent page. It overrides an earlier [WithAutoDeny].
func WithAutoApprove() Option {
	return func(s *Server) { s.consent = consentAutoApprove }
}

// WithAutoDeny makes GET /authorize redirect straight back to the client with
// error=access_denied, as if a person had refused. It overrides an earlier
// [WithAutoApprove].
func WithAutoDeny() Option {
	return func(s *Server) { s.consent = consentAutoDeny }
}

// WithGrantConfig sets a JSON object returned as "config" in the token
// response of the authorization code and device grants (not of refreshes).
// Honcho, for one, returns its default client configuration this way, for
// example {"peerName":"alice","workspace":"hermes"}. The map is encoded once by
// [NewServer], which panics if it cannot be encoded as JSON; later changes to
// the map have no effect. A nil map means no "config" field.
func WithGrantConfig(cfg map[string]any) Option {
	return func(s *Server) { s.grantConfig = cfg }
}

// WithUserHome makes the consent page show a config_path of the form
// "~/..." with "~" replaced by dir, the user home the client made it
// relative to, so that a person trying a development server on their own
// machine sees the file that will really be written. The client still
// never sends an absolute path.
func WithUserHome(dir string) Option {
	return func(s *Server) { s.userHome = dir }
}

// WithDefaultScope sets the scope granted when an authorization or device
// request names none (RFC 6749 section 3.3); the default is "write".
func WithDefaultScope(scope string) Option {
	return func(s *Server) { s.defaultScope = scope }
}

// WithDeviceFlow enables or disables the device authorization grant
// (RFC 8628); it is enabled by default. When disabled, the device endpoints
// answer 404, the metadata omits device_authorization_endpoint and the device
// grant type, and the token endpoint answers unsupported_grant_type.
func WithDeviceFlow(enabled bool) Option {
	return func(s *Server) { s.deviceEnabled = enabled }
}

// WithDeviceInterval sets the polling interval, in seconds, announced in
// device authorization responses; the default is 1 so tests run fast.
// Values below 1 are ignored.
func WithDeviceInterval(seconds int) Option {
	return func(s *Server) {
		if seconds >= 1 {
			s.deviceInterval = seconds
		}
	}
}

// WithDeviceCodeTTL sets the lifetime of device and user codes; the default
// is 10 minutes. Non-positive durations are ignored.
func WithDeviceCodeTTL(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.deviceTTL = d
		}
	}
}

// WithInMemoryNetwork serves on in-memory connections instead of a socket
// on 127.0.0.1, for tests inside a [testing/synctest] bubble: there the
// fake clock moves only while every goroutine waits on something of the
// bubble, which a real socket is not, so a device flow's polling interval
// passes at once instead of in real seconds. The server's URL still names
// a loopback address, but only [Server.Client] reaches it. A server made
// inside a bubble must be closed inside it.
func WithInMemoryNetwork() Option { return WithNetwork(memnet.New()) }

// WithNetwork is [WithInMemoryNetwork] on n, which other servers of the
// test share: n's client reaches them all.
func WithNetwork(n *memnet.Network) Option { return func(s *Server) { s.network = n } }

// WithAPIKey makes key an API key that the protected resource
// ([Server.WhoAmIURL]) accepts as a Bearer token, as a provider's API
// accepts its keys. Given more than once, every key is accepted.
func WithAPIKey(key string) Option {
	return func(s *Server) {
		if s.apiKeys == nil {
			s.apiKeys = make(map[string]bool)
		}
		s.apiKeys[key] = true
	}
}
