package oauthfake

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/memnet"
)

// Defaults for a [Server] built without options.
const (
	// DefaultClientID is the registered public client; see [WithClientID].
	DefaultClientID = "test-client"
	// DefaultAccessTokenPrefix starts every access token; see [WithAccessTokenPrefix].
	DefaultAccessTokenPrefix = "test-at-"
	// DefaultRefreshTokenPrefix starts every refresh token; see [WithRefreshTokenPrefix].
	DefaultRefreshTokenPrefix = "test-rt-"
	// DefaultAccessTokenTTL is the access token lifetime; see [WithAccessTokenTTL].
	DefaultAccessTokenTTL = time.Hour
	// DefaultScope is granted when a request names none; see [WithDefaultScope].
	DefaultScope = "write"
	// DefaultDeviceInterval is the device polling interval in seconds; see [WithDeviceInterval].
	DefaultDeviceInterval = 1
	// DefaultDeviceCodeTTL is the device code lifetime; see [WithDeviceCodeTTL].
	DefaultDeviceCodeTTL = 10 * time.Minute
)

// Lifetimes that are not configurable.
const (
	codeTTL    = 10 * time.Minute // authorization codes (RFC 6749 section 4.1.2)
	consentTTL = 10 * time.Minute // a consent page waiting for a person
	maxForm    = 64 << 10         // request bodies
)

// DeviceCodeGrantType is the grant_type of device access token requests
// (RFC 8628 section 3.4).
const DeviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"

type consentMode int

const (
	consentPage consentMode = iota
	consentAutoApprove
	consentAutoDeny
)

// Server is an OAuth 2.1 authorization server running on an
// [httptest.Server] bound to 127.0.0.1. Build one with [NewServer] and stop
// it with [Server.Close].
//
// Endpoints, relative to URL:
//
//	GET  /.well-known/oauth-authorization-server  metadata (RFC 8414)
//	GET  /authorize                               authorization request; consent page (RFC 6749 4.1.1)
//	POST /authorize/decision                      the consent page's form
//	POST /oauth/token                             token endpoint (RFC 6749 3.2)
//	POST /oauth/revoke                            revocation (RFC 7009)
//	POST /oauth/introspect                        introspection (RFC 7662), no client authentication
//	POST /oauth/device_authorization              device authorization (RFC 8628 3.1), when enabled
//	GET  /device, POST /device                    the device verification page, when enabled
//	GET  /api/whoami                              a protected resource (RFC 6750)
//
// Server is safe for concurrent use by multiple goroutines.
type Server struct {
	// URL is the issuer base URL, of the form http://127.0.0.1:port, without
	// a trailing slash.
	URL string

	ts       *httptest.Server
	stopReqs context.CancelFunc // ends every request's context, on Close

	// Configuration, set by the options and fixed once NewServer returns.
	name           string // on pages and in challenges
	clientIDs      []string
	clientIDsSet   bool
	accessPrefix   string
	refreshPrefix  string
	accessTTL      time.Duration
	refreshTTL     time.Duration // 0: never expires
	noRefresh      bool          // WithoutRefreshTokens
	now            func() time.Time
	consent        consentMode
	grantConfig    map[string]any
	userHome       string          // "~" of the config_path shown on the consent page; "" shows it as sent
	configJSON     json.RawMessage // grantConfig, encoded once; nil for none
	defaultScope   string
	deviceEnabled  bool
	deviceInterval int
	deviceTTL      time.Duration
	network        *memnet.Network // [WithInMemoryNetwork], [WithNetwork]
	apiKeys        map[string]bool // accepted by the protected resource
	dcr            bool            // dynamic client registration enabled
	resource       string          // RFC 8707 resource required; "" for none

	cimd *http.Client // fetches Client ID Metadata Documents; nil: not taken

	regMu      sync.Mutex          // guards dynamic, registered, asked and docs
	dynamic    map[string][]string // dynamically registered clients: their redirect URIs
	registered int
	asked      [][]string        // the redirect URIs of every registration asked for
	names      map[string]string // the client_name each dynamic client registered with
	// redirectRule, if not nil, refuses a registration's redirect URI.
	redirectRule func(string) bool
	docs         map[string][]string // documented clients: their redirect URIs

	mu            sync.Mutex // guards the fields below
	stats         Stats
	requests      map[string]*authRequest  // consent pages waiting for a decision, by request id
	codes         map[string]*authCode     // authorization codes, used ones included
	tokens        map[string]*tokenRecord  // access and refresh tokens, by value
	devices       map[string]*deviceRecord // by device code
	userCodes     map[string]*deviceRecord // by normalized user code
	lastAuthorize url.Values               // query of the latest GET /authorize
	tokenHook     func(http.ResponseWriter, *http.Request) bool
	failN         int // FailNextTokenRequests: how many are left
	failStatus    int
	failCode      string
	slowDownNext  bool
}

// Stats counts what a [Server] has done since it started.
type Stats struct {
	// AuthorizationCodes counts successful authorization_code grants: codes
	// exchanged for tokens.
	AuthorizationCodes int
	// Refreshes counts successful refresh_token grants.
	Refreshes int
	// Replays counts presentations of a superseded refresh token at the token
	// endpoint (reuse detection), each of which revokes its grant.
	Replays int
	// RevokedGrants counts grants revoked, by refresh token replay,
	// authorization code replay, revocation requests or [Server.RevokeGrant].
	// A grant is counted once.
	RevokedGrants int
	// Revocations counts requests to the revocation endpoint answered 200,
	// including those naming unknown tokens.
	Revocations int
	// DeviceGrants counts successful device_code grants.
	DeviceGrants int
	// TokenRequests counts every request to the token endpoint, including
	// those answered by a token hook or by [Server.FailNextTokenRequests].
	TokenRequests int
}

// grant is one authorization: the tokens issued from one code or device
// approval and all of their rotations.
type grant struct {
	clientID string
	scope    string
	revoked  bool
}

type tokenKind int

const (
	accessToken tokenKind = iota
	refreshToken
)

// tokenRecord is what the server knows about one token value.
type tokenRecord struct {
	grant      *grant
	kind       tokenKind
	scope      string
	issued     time.Time
	expiry     time.Time // zero: never expires
	superseded bool      // refresh tokens: rotated away
}

// NewServer starts a Server on 127.0.0.1 with an OS-assigned port and
// returns it. It panics if the listener cannot be created, as
// [httptest.NewServer] does, or if the [WithGrantConfig] map cannot be
// encoded as JSON.
func NewServer(opts ...Option) *Server {
	s := &Server{
		name:           "oauthtest",
		clientIDs:      []string{DefaultClientID},
		accessPrefix:   DefaultAccessTokenPrefix,
		refreshPrefix:  DefaultRefreshTokenPrefix,
		accessTTL:      DefaultAccessTokenTTL,
		now:            time.Now,
		defaultScope:   DefaultScope,
		deviceEnabled:  true,
		deviceInterval: DefaultDeviceInterval,
		deviceTTL:      DefaultDeviceCodeTTL,
		requests:       make(map[string]*authRequest),
		codes:          make(map[string]*authCode),
		tokens:         make(map[string]*tokenRecord),
		devices:        make(map[string]*deviceRecord),
		userCodes:      make(map[string]*deviceRecord),
	}
	for _, opt := range opts {
		opt(s)
	}
	if s.grantConfig != nil {
		b, err := json.Marshal(s.grantConfig)
		if err != nil {
			panic(fmt.Sprintf("oauthtest: WithGrantConfig: %v", err))
		}
		s.configJSON = b
	}
	s.ts = httptest.NewUnstartedServer(s.routes())
	if s.network != nil {
		s.network.Serve(s.ts)
	}
	base, stop := context.WithCancel(context.Background())
	s.stopReqs = stop
	s.ts.Config.BaseContext = func(net.Listener) context.Context { return base }
	// URL is set before Start so that handlers read it race-free.
	s.URL = "http://" + s.ts.Listener.Addr().String()
	s.ts.Start()
	if s.network != nil {
		s.ts.Client().Transport.(*http.Transport).DialContext = s.network.Dial
	}
	return s
}

// routes is the whole route table.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleMetadata)
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /authorize/decision", s.handleDecision)
	mux.HandleFunc("/oauth/token", s.handleToken) // any method: the token hook sees every request
	mux.HandleFunc("POST /oauth/revoke", s.handleRevoke)
	mux.HandleFunc("POST /oauth/introspect", s.handleIntrospect)
	mux.HandleFunc("GET /api/whoami", s.handleWhoAmI)
	if s.dcr {
		mux.HandleFunc("POST /oauth/register", s.handleRegister)
	}
	if s.deviceEnabled {
		mux.HandleFunc("POST /oauth/device_authorization", s.handleDeviceAuthorization)
		mux.HandleFunc("GET /device", s.handleDevicePage)
		mux.HandleFunc("POST /device", s.handleDeviceDecision)
	}
	return mux
}

// Close shuts the server down. It cancels the context of every outstanding
// request, so token hooks waiting on [http.Request.Context] return, and
// blocks until all of them have completed, as [httptest.Server.Close] does.
func (s *Server) Close() {
	s.stopReqs()
	s.ts.Close()
}

// Client returns an HTTP client configured for requests to the server; it is
// the [httptest.Server.Client], closed with the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// ClientID returns the primary registered client id (see [WithClientID]).
func (s *Server) ClientID() string { return s.clientIDs[0] }

// AuthorizeURL returns the authorization endpoint, URL + "/authorize".
func (s *Server) AuthorizeURL() string { return s.URL + "/authorize" }

// TokenURL returns the token endpoint, URL + "/oauth/token".
func (s *Server) TokenURL() string { return s.URL + "/oauth/token" }

// RevocationURL returns the RFC 7009 revocation endpoint, URL + "/oauth/revoke".
func (s *Server) RevocationURL() string { return s.URL + "/oauth/revoke" }

// DeviceAuthURL returns the RFC 8628 device authorization endpoint,
// URL + "/oauth/device_authorization". It answers 404 when the device flow
// is disabled ([WithDeviceFlow]).
func (s *Server) DeviceAuthURL() string { return s.URL + "/oauth/device_authorization" }

// IntrospectionURL returns the RFC 7662 introspection endpoint,
// URL + "/oauth/introspect".
func (s *Server) IntrospectionURL() string { return s.URL + "/oauth/introspect" }

// MetadataURL returns the RFC 8414 metadata document,
// URL + "/.well-known/oauth-authorization-server".
func (s *Server) MetadataURL() string { return s.URL + "/.well-known/oauth-authorization-server" }

// DeviceVerificationURL returns the page where a person enters a user code,
// URL + "/device" (the verification_uri of RFC 8628 section 3.2).
func (s *Server) DeviceVerificationURL() string { return s.URL + "/device" }

// WhoAmIURL returns the protected resource, URL + "/api/whoami". It answers
// 200 with {"client_id","scope"} for an active Bearer access token and 401
// with a WWW-Authenticate challenge otherwise.
func (s *Server) WhoAmIURL() string { return s.URL + "/api/whoami" }

// Endpoint returns the server's endpoints for an [oauth2.Config], with
// [oauth2.AuthStyleInParams] as public clients need.
func (s *Server) Endpoint() oauth2.Endpoint {
	e := oauth2.Endpoint{
		AuthURL:   s.AuthorizeURL(),
		TokenURL:  s.TokenURL(),
		AuthStyle: oauth2.AuthStyleInParams,
	}
	if s.deviceEnabled {
		e.DeviceAuthURL = s.DeviceAuthURL()
	}
	return e
}

// OAuth2Config returns an [oauth2.Config] for the primary client with the
// given redirect URL and scopes.
func (s *Server) OAuth2Config(redirectURL string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:    s.ClientID(),
		Endpoint:    s.Endpoint(),
		RedirectURL: redirectURL,
		Scopes:      scopes,
	}
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Active reports whether token is a currently active access or refresh
// token: issued by this server, not expired, not revoked and, for a refresh
// token, not superseded by rotation.
func (s *Server) Active(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.tokens[token]
	return rec != nil && s.activeLocked(rec, s.now())
}

// LastAuthorizeQuery returns a copy of the query of the most recent GET
// /authorize request, valid or not, or nil if there was none. Tests use it
// to check parameters a client adds, such as source or config_path.
func (s *Server) LastAuthorizeQuery() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastAuthorize == nil {
		return nil
	}
	return cloneValues(s.lastAuthorize)
}

// IssueGrant creates a grant for the primary client directly, without an
// authorization flow, and returns its tokens: an access token expiring
// after the access token lifetime (by the server's clock), a refresh token,
// token type "Bearer" and the extra field "scope". Tests use it to seed a
// token store. It counts in no [Stats] field. An empty scope means the
// default scope.
func (s *Server) IssueGrant(scope string) *oauth2.Token {
	if scope == "" {
		scope = s.defaultScope
	}
	s.mu.Lock()
	now := s.now()
	resp := s.issueLocked(&grant{clientID: s.ClientID(), scope: scope}, scope, now, false)
	s.mu.Unlock()
	tok := &oauth2.Token{
		AccessToken:  resp.AccessToken,
		TokenType:    resp.TokenType,
		RefreshToken: resp.RefreshToken,
		Expiry:       now.Add(s.accessTTL),
		ExpiresIn:    resp.ExpiresIn,
	}
	return tok.WithExtra(map[string]any{"scope": scope})
}

// RevokeGrant revokes, on the server's side, the grant that token (an access
// or refresh token, superseded or not) belongs to, as an administrator
// would. It reports whether the grant was active before; RevokedGrants
// counts it if so.
func (s *Server) RevokeGrant(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.tokens[token]
	if rec == nil {
		return false
	}
	return s.revokeLocked(rec.grant)
}

// activeLocked reports whether rec is usable at now.
func (s *Server) activeLocked(rec *tokenRecord, now time.Time) bool {
	if rec.grant.revoked || rec.superseded {
		return false
	}
	return rec.expiry.IsZero() || now.Before(rec.expiry)
}

// revokeLocked revokes g and reports whether it was active.
func (s *Server) revokeLocked(g *grant) bool {
	if g.revoked {
		return false
	}
	g.revoked = true
	s.stats.RevokedGrants++
	return true
}

func (s *Server) isClient(id string) bool {
	if id != "" && slices.Contains(s.clientIDs, id) {
		return true
	}
	if _, ok := s.dynamicClient(id); ok {
		return true
	}
	_, ok := s.documentedClient(id)
	return ok
}

func (s *Server) scopeOrDefault(scope string) string {
	if scope = strings.Join(strings.Fields(scope), " "); scope == "" {
		return s.defaultScope
	}
	return scope
}

// expiresIn is d in whole seconds, at least 1.
func expiresIn(d time.Duration) int64 {
	return max(int64(d/time.Second), 1)
}

// randomString returns 128 bits of randomness as base32 text.
func randomString() string { return rand.Text() }

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

// repeated returns the first of the named parameters given more than once
// in v, or "" (RFC 6749 section 3.1: parameters must not be repeated).
func repeated(v url.Values, names ...string) string {
	for _, n := range names {
		if len(v[n]) > 1 {
			return n
		}
	}
	return ""
}

// handleMetadata serves the RFC 8414 authorization server metadata.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	type metadata struct {
		Issuer                            string   `json:"issuer"`
		AuthorizationEndpoint             string   `json:"authorization_endpoint"`
		TokenEndpoint                     string   `json:"token_endpoint"`
		RevocationEndpoint                string   `json:"revocation_endpoint"`
		IntrospectionEndpoint             string   `json:"introspection_endpoint"`
		DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint,omitempty"`
		GrantTypesSupported               []string `json:"grant_types_supported"`
		ResponseTypesSupported            []string `json:"response_types_supported"`
		CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
		TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
		RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
		ScopesSupported                   []string `json:"scopes_supported,omitempty"`
		RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
		ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`
	}
	m := metadata{
		Issuer:                            s.URL,
		AuthorizationEndpoint:             s.AuthorizeURL(),
		TokenEndpoint:                     s.TokenURL(),
		RevocationEndpoint:                s.RevocationURL(),
		IntrospectionEndpoint:             s.IntrospectionURL(),
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		ResponseTypesSupported:            []string{"code"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		TokenEndpointAuthMethodsSupported: []string{"none"},
		RevocationEndpointAuthMethods:     []string{"none"},
	}
	if s.dcr {
		m.RegistrationEndpoint = s.RegistrationURL()
	}
	m.ClientIDMetadataDocumentSupported = s.cimd != nil
	if s.deviceEnabled {
		m.DeviceAuthorizationEndpoint = s.DeviceAuthURL()
		m.GrantTypesSupported = append(m.GrantTypesSupported, DeviceCodeGrantType)
	}
	if s.defaultScope != "" {
		m.ScopesSupported = strings.Fields(s.defaultScope)
	}
	writeJSON(w, http.StatusOK, m)
}

// handleWhoAmI is the protected resource: it accepts an active Bearer access
// token (RFC 6750 section 2.1).
func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	challenge := `Bearer realm="` + s.name + `"`
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		w.Header().Set("WWW-Authenticate", challenge)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "a Bearer access token is required"})
		return
	}
	tok = strings.TrimSpace(tok)
	if s.apiKeys[tok] {
		writeJSON(w, http.StatusOK, map[string]any{"api_key": true})
		return
	}
	s.mu.Lock()
	rec := s.tokens[tok]
	ok = rec != nil && rec.kind == accessToken && s.activeLocked(rec, s.now())
	var clientID, scope string
	if ok {
		clientID, scope = rec.grant.clientID, rec.scope
	}
	s.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token", error_description="the access token is unknown, expired or revoked"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "the access token is unknown, expired or revoked"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"client_id": clientID, "scope": scope})
}

// writeJSON answers status with v as JSON, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
