// Package oauthtest runs OAuth servers in the test process, for a host's
// tests of a router with memconnect mounted: an OAuth 2.1 authorization
// server to sign in against, offline, and a memory server behind the MCP
// authorization model. Both bind 127.0.0.1 and log nothing.
//
// The [Server] speaks the authorization code grant with PKCE S256 and a
// consent page, refresh token rotation with reuse detection (a superseded
// refresh token revokes the whole grant), the device grant (RFC 8628),
// revocation (RFC 7009), metadata (RFC 8414) and dynamic registration
// (RFC 7591); a test approves consent with [Server.Consent] or
// [Server.ApproveDevice], or starts from a grant with [Server.IssueGrant],
// and reads what happened with [Server.Stats] and [Server.Active].
// Package honchotest is the Server in Honcho's likeness.
package oauthtest

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/clock"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
)

// Defaults of a [Server].
const (
	// DefaultClientID is the public client registered unless
	// [WithClientID] names others.
	DefaultClientID = oauthfake.DefaultClientID
	// DefaultAccessTokenTTL is how long an access token lives unless
	// [WithAccessTokenTTL] says otherwise.
	DefaultAccessTokenTTL = oauthfake.DefaultAccessTokenTTL
	// MCPScope is the scope an [MCPServer] asks for.
	MCPScope = oauthfake.MCPScope
)

type fake = oauthfake.Server

// Option configures [NewServer].
type Option func(*fake)

// WithClock sets the clock of the server's expiry decisions; nil is the
// system clock.
func WithClock(c clock.Clock) Option { return Option(oauthfake.WithClock(c)) }

// WithAccessTokenTTL sets how long access tokens live.
func WithAccessTokenTTL(d time.Duration) Option { return Option(oauthfake.WithAccessTokenTTL(d)) }

// WithClientID registers id as a public client instead of
// [DefaultClientID]; given more than once, every id is registered and the
// first is [Server.ClientID].
func WithClientID(id string) Option { return Option(oauthfake.WithClientID(id)) }

// WithAutoApprove approves every consent at once, redirecting without a
// page, as a person who always clicks Allow.
func WithAutoApprove() Option { return Option(oauthfake.WithAutoApprove()) }

// WithDeviceFlow turns the device grant on or off (on by default).
func WithDeviceFlow(enabled bool) Option { return Option(oauthfake.WithDeviceFlow(enabled)) }

// WithDynamicRegistration accepts client registrations (RFC 7591).
func WithDynamicRegistration() Option { return Option(oauthfake.WithDynamicRegistration()) }

// Server is an OAuth 2.1 authorization server on 127.0.0.1. It is safe
// for concurrent use.
type Server struct {
	// URL is the issuer, http://127.0.0.1:port.
	URL string
	s   *oauthfake.Server
}

// NewServer starts a Server. Close it with [Server.Close].
func NewServer(opts ...Option) *Server {
	s := oauthfake.NewServer(convert[oauthfake.Option](opts)...)
	return &Server{URL: s.URL, s: s}
}

// Close shuts the server down.
func (s *Server) Close() { s.s.Close() }

// Client is an HTTP client that reaches the server.
func (s *Server) Client() *http.Client { return s.s.Client() }

// ClientID is the first registered public client.
func (s *Server) ClientID() string { return s.s.ClientID() }

// MetadataURL is the server's metadata document (RFC 8414).
func (s *Server) MetadataURL() string { return s.s.MetadataURL() }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.s.TokenURL() }

// RevocationURL is the revocation endpoint (RFC 7009).
func (s *Server) RevocationURL() string { return s.s.RevocationURL() }

// DeviceVerificationURL is where a person enters a device sign-in's
// user code.
func (s *Server) DeviceVerificationURL() string { return s.s.DeviceVerificationURL() }

// WhoAmIURL is a protected resource that accepts the server's access
// tokens: 200 with a valid one, 401 otherwise.
func (s *Server) WhoAmIURL() string { return s.s.WhoAmIURL() }

// Endpoint is the server's endpoints for x/oauth2.
func (s *Server) Endpoint() oauth2.Endpoint { return s.s.Endpoint() }

// OAuth2Config is a ready [oauth2.Config] for the registered client.
func (s *Server) OAuth2Config(redirectURL string, scopes ...string) *oauth2.Config {
	return s.s.OAuth2Config(redirectURL, scopes...)
}

// IssueGrant makes a grant with scope without a sign-in and returns its
// tokens, as if a person had signed in earlier.
func (s *Server) IssueGrant(scope string) *oauth2.Token { return s.s.IssueGrant(scope) }

// Consent plays the person at the consent page of authorizeURL with
// client c, approving or denying, and returns the URL the browser is sent
// back to (the redirect URI with the code or the error).
func (s *Server) Consent(ctx context.Context, c *http.Client, authorizeURL string, approve bool) (*url.URL, error) {
	return s.s.Consent(ctx, c, authorizeURL, approve)
}

// ApproveDevice approves the device sign-in of userCode, as a person who
// entered it.
func (s *Server) ApproveDevice(userCode string) error { return s.s.ApproveDevice(userCode) }

// DenyDevice denies the device sign-in of userCode.
func (s *Server) DenyDevice(userCode string) error { return s.s.DenyDevice(userCode) }

// Active reports whether token (access or refresh) is valid now.
func (s *Server) Active(token string) bool { return s.s.Active(token) }

// RevokeGrant revokes the grant token belongs to, as the server's
// administrator would, and reports whether it was active.
func (s *Server) RevokeGrant(token string) bool { return s.s.RevokeGrant(token) }

// Stats counts what the server did.
type Stats struct {
	AuthorizationCodes int // codes exchanged for tokens
	Refreshes          int // refresh token grants that rotated
	Replays            int // superseded refresh tokens presented, each revoking its grant
	RevokedGrants      int // grants revoked, for any reason
	Revocations        int // revocation requests answered 200
	DeviceGrants       int // device grants that issued tokens
	TokenRequests      int // requests to the token endpoint
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats { return Stats(s.s.Stats()) }

// MCPOption configures [NewMCPServer].
type MCPOption func(*oauthfake.MCPServer)

// WithAuthServer configures the MCP server's authorization server.
func WithAuthServer(opts ...Option) MCPOption {
	return MCPOption(oauthfake.WithAuthServer(convert[oauthfake.Option](opts)...))
}

// MCPServer is a memory server behind the MCP authorization model: it
// answers 401 with a challenge naming its protected resource metadata
// (RFC 9728), in front of an authorization server with dynamic
// registration and resource indicators.
type MCPServer struct {
	// AS is the authorization server.
	AS *Server
	// URL is the MCP endpoint, the URL a provider is configured with.
	URL string
	m   *oauthfake.MCPServer
}

// NewMCPServer starts an MCPServer. Close it with [MCPServer.Close].
func NewMCPServer(opts ...MCPOption) *MCPServer {
	m := oauthfake.NewMCPServer(convert[oauthfake.MCPOption](opts)...)
	return &MCPServer{AS: &Server{URL: m.AS.URL, s: m.AS}, URL: m.URL, m: m}
}

// Close shuts both servers down.
func (m *MCPServer) Close() { m.m.Close() }

// Calls counts the MCP requests answered 200 (with a valid token).
func (m *MCPServer) Calls() int { return m.m.Calls() }

// convert turns options of this package into the server's, of the same
// underlying type.
func convert[To, From ~func(*E), E any](opts []From) []To {
	out := make([]To, len(opts))
	for i, o := range opts {
		out[i] = To(o)
	}
	return out
}
