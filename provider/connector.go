package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/observe"
)

// Errors of the [Connector], for [errors.Is].
var (
	// ErrUnsupported reports that a provider does not support the
	// operation: it has no OAuth at all, or not the requested method.
	ErrUnsupported = errors.New("provider: not supported")

	// ErrConflict reports a request that conflicts with the current state,
	// such as a connect with one method while a flow of another method is
	// pending.
	ErrConflict = errors.New("provider: conflict")

	// ErrAPIKeyConnection reports a disconnect of a profile that connects
	// with an API key it does not own: one set for every host of the file
	// or in the environment, which disconnecting does not remove.
	ErrAPIKeyConnection = errors.New("provider: the profile connects with an API key that disconnect does not remove")

	// ErrAPIKeyRejected reports an API key that is not usable: malformed,
	// or refused by the provider's server. Errors that report it are
	// [*APIKeyError] values.
	ErrAPIKeyRejected = errors.New("provider: API key rejected")

	// ErrNoCallbackURL reports a browser flow that asks for the callback
	// redirect mode of a Connector without a callback base URL.
	ErrNoCallbackURL = errors.New("provider: no callback base URL is configured, so the callback redirect mode is not available")
)

// APIKeyError reports an API key that was not stored. Reason says why, for
// a person, and never holds the key.
type APIKeyError struct {
	Reason string
	Err    error // the cause, if any
}

func (e *APIKeyError) Error() string { return "provider: API key rejected: " + e.Reason }

// Is reports [ErrAPIKeyRejected].
func (e *APIKeyError) Is(target error) bool { return target == ErrAPIKeyRejected }

func (e *APIKeyError) Unwrap() error { return e.Err }

// keyError turns an [*oauth.InvalidAPIKeyError] into an [*APIKeyError].
func keyError(err error) error {
	if ie, ok := errors.AsType[*oauth.InvalidAPIKeyError](err); ok {
		return &APIKeyError{Reason: ie.Reason, Err: err}
	}
	return err
}

// ConnectRequest is how a caller wants a flow started by [Connector.Connect].
// Its zero value asks for the default: a browser flow, redirected to the
// Connector's callback route when it has a callback base URL, else to a
// loopback listener.
type ConnectRequest struct {
	// Method is the flow to run; empty means [flow.MethodBrowser].
	Method flow.Method
	// Source tags the authorize link with the surface that started it
	// ("hermes-cli", "hermes-desktop"), so the consent page can adapt.
	Source string
	// Redirect is where a browser flow's authorization response goes;
	// empty means the default above. It must be empty for a device flow.
	Redirect flow.RedirectMode
	// TokensOnly stores the tokens and skips the merge of the
	// authorization server's "config" into the configuration file (the
	// command-line client asks for the consent values itself).
	TokensOnly bool
	// Binding binds a browser flow in the callback redirect mode to the
	// browser that started it ([flow.Request.Binding]): the hex SHA-256
	// of a nonce that browser holds; "" for none (curl, the CLI).
	Binding string
	// OnInstalled, if not nil, is called with the token response after
	// the grant is stored and before the flow becomes connected; the
	// server's "config" arrives this way ([oauth2.Token.Extra]). It must
	// not block.
	OnInstalled func(*oauth2.Token)
}

// DisconnectResult is what [Connector.Disconnect] did.
type DisconnectResult struct {
	// Removed reports that a grant, or the profile's own API key, was
	// removed; false when there was none (disconnecting is idempotent).
	Removed bool
	// Revoked reports that the server accepted the revocation of the
	// refresh token (RFC 7009).
	Revoked bool
	// RevokeError says why revocation failed, for a person; empty when it
	// succeeded or was not attempted (no revocation endpoint is known). It
	// never holds a token.
	RevokeError string
}

// DefaultConnectTimeout is [Connector.ConnectTimeout]'s default: well
// under the write timeout of a server that answers connect requests.
const DefaultConnectTimeout = 20 * time.Second

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
	// HTTPClient is used for refreshes, metadata discovery and revocation;
	// nil means [http.DefaultClient].
	HTTPClient *http.Client
	// Logger receives the grant engine's log and warnings such as a failed
	// revocation. The zero value discards them.
	Logger zerolog.Logger
	// Now is the clock of every expiry decision; nil means [time.Now].
	Now func() time.Time
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
	// has its own deadline as well ([oauth.StepTimeout]).
	ConnectTimeout time.Duration
	// Observer, when not nil, receives the refreshes and API-key checks
	// this Connector makes, for metrics.
	Observer observe.Observer

	storesOnce sync.Once
	stores     *Stores
	sharedOnce sync.Once
	shared     *oauth.Grants

	mdMu sync.Mutex // guards md
	md   map[string]discovered

	followMu  sync.Mutex // guards followers and published
	followers map[flow.Key]*follower
	published map[flow.Key]publishedEvent
	watch     dirWatch // the file watch of every follower

	sourcesMu sync.Mutex // guards sources
	sources   map[flow.Key]struct{}
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
	c.storesOnce.Do(func() { c.stores = NewStores(c.options()...) })
	return c.stores
}

func (c *Connector) options() []oauth.Option {
	return []oauth.Option{oauth.WithLogger(c.Logger), oauth.WithHTTPClient(c.HTTPClient), oauth.WithClock(c.Now)}
}

// grantRef is where a target's grant lives: the engine, the key in it and,
// for a config file, the file.
type grantRef struct {
	grants *oauth.Grants
	key    string
	file   *oauth.FileStore // nil for a GrantStore
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
		return grantRef{grants: c.shared, key: t.provider.Name() + "/" + t.profile.Name, scope: loc.Layout.DefaultScope}, nil
	}
	path := loc.ReadPath
	if write {
		path = loc.WritePath
	}
	st := c.Stores()
	return grantRef{grants: st.Grants(path, loc.Layout), key: loc.Host, file: st.File(path, loc.Layout), scope: loc.Layout.DefaultScope}, nil
}

// discovered is a cached RFC 8414 metadata lookup (nil metadata: it failed).
type discovered struct {
	md *oauth.Metadata
	at time.Time
}

// metadataTTL is how long discovered metadata (or a failed lookup) is reused.
const metadataTTL = 10 * time.Minute

// metadata discovers the issuer's RFC 8414 metadata, reusing a lookup made
// within metadataTTL. It returns nil when discovery fails.
func (c *Connector) metadata(ctx context.Context, issuer string) *oauth.Metadata {
	if issuer == "" {
		return nil
	}
	now := c.now()
	c.mdMu.Lock()
	if d, ok := c.md[issuer]; ok && now.Sub(d.at) < metadataTTL {
		c.mdMu.Unlock()
		return d.md
	}
	c.mdMu.Unlock()
	md, err := oauth.Discover(ctx, c.httpClient(), issuer)
	if err != nil {
		c.Logger.Debug().Err(err).Str("issuer", issuer).Msg("metadata discovery failed")
		md = nil
	}
	c.mdMu.Lock()
	if c.md == nil {
		c.md = make(map[string]discovered)
	}
	c.md[issuer] = discovered{md: md, at: now}
	c.mdMu.Unlock()
	return md
}

// endpoints returns the provider's endpoints with the ones it left empty
// filled from the issuer's metadata (RFC 8414), and whether that metadata
// announces the device flow. Discovery is asked only when something is
// missing or the device flow is wanted; it fails closed.
func (c *Connector) endpoints(ctx context.Context, t target, device bool) (Endpoints, bool, error) {
	ep, err := t.provider.Endpoints(ctx, t.profile)
	if err != nil {
		return Endpoints{}, false, err
	}
	if !device && ep.AuthorizeURL != "" && ep.TokenURL != "" && ep.RevocationURL != "" {
		return ep, false, nil
	}
	md := c.metadata(ctx, ep.Issuer)
	if md != nil && md.AuthorizationResponseIssParameterSupported {
		ep.IssuerInResponse = true
	}
	e := oauth2.Endpoint{AuthURL: ep.AuthorizeURL, TokenURL: ep.TokenURL, DeviceAuthURL: ep.DeviceAuthURL}
	md.Fill(&e, &ep.RevocationURL)
	ep.AuthorizeURL, ep.TokenURL, ep.DeviceAuthURL = e.AuthURL, e.TokenURL, e.DeviceAuthURL
	return ep, md.SupportsDeviceFlow(), nil
}

// connectEndpoints is endpoints for a new flow: a [Registrar] is asked for
// a client for the redirect URIs this Connector uses.
func (c *Connector) connectEndpoints(ctx context.Context, t target, device bool) (Endpoints, bool, error) {
	r, ok := t.provider.(Registrar)
	if !ok {
		return c.endpoints(ctx, t, device)
	}
	req := c.clientRequest(t)
	req.RejectedClientID = c.rejectedClient(ctx, t)
	ep, err := r.Client(ctx, t.profile, req, c.Stores())
	return ep, ep.DeviceAuthURL != "", err
}

// rejectedClient is the client of t's grant when the authorization server
// rejected the grant for its client (invalid_client, unauthorized_client),
// else "".
func (c *Connector) rejectedClient(ctx context.Context, t target) string {
	ref, err := c.where(t, false)
	if err != nil {
		return ""
	}
	var creds oauth.Credentials
	if c.GrantStore != nil {
		creds, err = c.GrantStore.Credentials(ctx, ref.key)
	} else {
		creds, err = ref.file.Credentials(ctx, ref.key)
	}
	if err != nil || creds.Grant == nil || (creds.Rejected != "invalid_client" && creds.Rejected != "unauthorized_client") {
		return ""
	}
	return creds.Grant.ClientID
}

// clientRequest is what t's client is obtained for.
func (c *Connector) clientRequest(t target) ClientRequest {
	var req ClientRequest
	if cb := c.callbackURL(t); cb != "" {
		req.RedirectURIs = append(req.RedirectURIs, cb)
		if strings.HasPrefix(cb, "https://") {
			req.MetadataURL = strings.TrimSuffix(cb, "/callback") + "/client-metadata"
		}
	}
	if c.Flows != nil {
		req.RedirectURIs = append(req.RedirectURIs, c.Flows.LoopbackRedirectURI())
	}
	return req
}

// ClientMetadata returns the Client ID Metadata Document of the profile
// for the provider: a public client whose client_id is the URL the host
// serves it at (CallbackBaseURL + "/profiles/{profile}/providers/{provider}/client-metadata")
// and whose redirect URIs are the callback route and the loopback
// listener. Only a [Registrar] has one, and only with an https callback
// base URL; else it fails with [ErrUnsupported].
func (c *Connector) ClientMetadata(profileName, providerName string) (oauth.ClientMetadataDocument, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return oauth.ClientMetadataDocument{}, err
	}
	req := c.clientRequest(t)
	if _, ok := t.provider.(Registrar); !ok || req.MetadataURL == "" {
		return oauth.ClientMetadataDocument{}, fmt.Errorf("%w: %s has no client metadata document here (it needs an https callback base URL)", ErrUnsupported, t.provider.DisplayName())
	}
	return oauth.ClientMetadataDocument{
		ClientID: req.MetadataURL,
		ClientMetadata: oauth.ClientMetadata{
			RedirectURIs:            req.RedirectURIs,
			ClientName:              "memconnect",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: "none",
		},
	}, nil
}

// target is a resolved (profile, provider) pair.
type target struct {
	profile  Profile
	provider Provider
	key      flow.Key
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
	return target{profile: p, provider: pv, key: flow.Key{Profile: p.Name, Provider: pv.Name()}}, nil
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

func (c *Connector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Connector) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
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

// Connect starts an authorization flow that connects the profile to the
// provider, or returns the pending one when a flow of the same method and
// redirect mode is already running. When the person consents, the grant is
// stored in the provider's [GrantLocation].WritePath under its Host, with
// the server's "config" merged into the file unless req.TokensOnly.
//
// Connect fails with [ErrUnsupported] when the provider has no OAuth or not
// the requested method, with [ErrNoCallbackURL] for a callback redirect
// without a callback base URL, and with [ErrConflict] (wrapping
// [flow.ErrConflict]) when a flow of another method or redirect mode is
// pending. A device flow that the authorization server refuses to start
// fails with a [*flow.Failure]. A server that does not answer within
// ConnectTimeout, or answers what the rules refuse, fails with an
// [*oauth.UpstreamError] naming it and the step; one that could not be
// reached at all (offline, no such host) with an [*UnreachableError]
// wrapping it.
func (c *Connector) Connect(ctx context.Context, profileName, providerName string, req ConnectRequest) (rep StatusReport, err error) {
	defer func() { err = c.unreachable(providerName, err) }()
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.ConnectTimeout, DefaultConnectTimeout))
	defer cancel()
	t, fm, err := c.flowTarget(profileName, providerName)
	if err == nil {
		err = t.needOAuth()
	}
	if err != nil {
		return StatusReport{}, err
	}
	if req.Method == "" {
		req.Method = flow.MethodBrowser
	}
	var callbackURL string
	if req.Method == flow.MethodDevice && req.Redirect != "" {
		return StatusReport{}, fmt.Errorf("%w: a device flow has no redirect mode", flow.ErrInvalidRequest)
	}
	if req.Method == flow.MethodBrowser {
		if req.Redirect == "" {
			req.Redirect = flow.RedirectLoopback
			if c.CallbackBaseURL != "" {
				req.Redirect = flow.RedirectCallback
			}
		}
		if req.Redirect == flow.RedirectCallback {
			if callbackURL = c.callbackURL(t); callbackURL == "" {
				return StatusReport{}, ErrNoCallbackURL
			}
		}
	}
	methods := t.provider.AuthMethods()
	if md, ok := t.provider.(MethodDiscoverer); ok && req.Method == flow.MethodDevice {
		methods = md.DiscoverMethods(ctx) // the device flow is what the server announces
	}
	if !slices.Contains(methods, AuthMethod(req.Method)) {
		return StatusReport{}, fmt.Errorf("%w: %s does not support the %s flow", ErrUnsupported, t.provider.DisplayName(), quoteShort(string(req.Method)))
	}
	ep, deviceOK, err := c.connectEndpoints(ctx, t, req.Method == flow.MethodDevice)
	if err != nil {
		return StatusReport{}, err
	}
	if needs := c.needsScopes(t); len(needs) > 0 {
		// Step-up: what the grant had and what a resource asked for.
		if st, err := c.status(ctx, t); err == nil && st.Token != nil {
			ep.Scopes = union(ep.Scopes, strings.Fields(st.Token.Scope))
		}
		ep.Scopes = union(ep.Scopes, needs)
	}
	if req.Method == flow.MethodDevice && (!deviceOK || ep.DeviceAuthURL == "") {
		return StatusReport{}, fmt.Errorf("%w: %s does not announce the device flow in its metadata (RFC 8414)", ErrUnsupported, t.provider.DisplayName())
	}
	if ep.AuthorizeURL == "" || ep.TokenURL == "" {
		return StatusReport{}, fmt.Errorf("provider: %s has no authorization or token endpoint configured or discoverable", t.provider.DisplayName())
	}
	ref, err := c.where(t, true)
	if err != nil {
		return StatusReport{}, err
	}
	params := url.Values{}
	if ep.AuthParams != nil {
		params = maps.Clone(ep.AuthParams)
	}
	if req.Source != "" {
		params.Set("source", req.Source)
	}
	if req.Method == flow.MethodBrowser && slices.Contains(ep.Scopes, "offline_access") && !params.Has("prompt") {
		// OpenID Connect Core section 11: a provider grants offline_access
		// (a refresh token) only with prompt=consent; without it, a
		// certified provider drops the scope.
		params.Set("prompt", "consent")
	}
	var tokenParams url.Values
	if ep.Resource != "" {
		params.Set("resource", ep.Resource)
		tokenParams = url.Values{"resource": {ep.Resource}}
	}
	var rejected func()
	if r, ok := t.provider.(Registrar); ok {
		rejected = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r.ClientRejected(ctx, t.profile, ep.ClientID, c.Stores())
		}
	}
	fr := flow.Request{
		Key:         t.key,
		Method:      req.Method,
		Redirect:    req.Redirect,
		CallbackURL: callbackURL,
		Config: oauth2.Config{
			ClientID: ep.ClientID,
			Endpoint: oauth2.Endpoint{
				AuthURL:       ep.AuthorizeURL,
				TokenURL:      ep.TokenURL,
				DeviceAuthURL: ep.DeviceAuthURL,
				AuthStyle:     oauth2.AuthStyleInParams,
			},
			Scopes: slices.Clone(ep.Scopes),
		},
		AuthParams:      params,
		TokenParams:     tokenParams,
		ClientRejected:  rejected,
		Unanswered:      rejected,
		DeviceSupported: deviceOK,
		Issuer:          ep.Issuer,
		IssuerRequired:  ep.IssuerInResponse,
		Binding:         bindingFor(req),
		DisplayName:     t.provider.DisplayName(),
		Complete:        c.installer(t.key, ref, ep, req),
	}
	f, err := fm.Start(ctx, fr)
	switch {
	case errors.Is(err, flow.ErrConflict):
		return StatusReport{}, fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, flow.ErrDeviceUnsupported):
		return StatusReport{}, fmt.Errorf("%w: %w", ErrUnsupported, err)
	case err != nil:
		return StatusReport{}, err
	}
	rep, err = c.report(ctx, t)
	if err != nil {
		return StatusReport{}, err
	}
	rep.Flow = &f
	return rep, nil
}

// Resume returns how to store the grant of a browser flow for key that
// another instance started and this one completes: what [Connector.Connect]
// would have given the flow, with the server's config merged, for the
// client and token endpoint of cfg, the flow's configuration as the
// starting instance recorded it (a client registered there may be unknown
// here). Pass it as [flow.Config.Resume] of a flow manager that shares its
// Store with other instances (memconnect.New does so for the manager it
// makes).
func (c *Connector) Resume(ctx context.Context, key flow.Key, cfg oauth2.Config) (func(context.Context, *oauth2.Token) error, error) {
	t, err := c.oauthTarget(key.Profile, key.Provider)
	if err != nil {
		return nil, err
	}
	ep, _, err := c.endpoints(ctx, t, false)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID != "" {
		ep.ClientID, ep.TokenURL = cfg.ClientID, cfg.Endpoint.TokenURL
	}
	ref, err := c.where(t, true)
	if err != nil {
		return nil, err
	}
	return c.installer(key, ref, ep, ConnectRequest{}), nil
}

// installer returns the Complete function of a flow: it stores the grant
// and, in a config file, merges the server's "config" object into it
// (unless req.TokensOnly).
func (c *Connector) installer(key flow.Key, ref grantRef, ep Endpoints, req ConnectRequest) func(context.Context, *oauth2.Token) error {
	return func(ctx context.Context, tok *oauth2.Token) error {
		base := oauth.Grant{ClientID: ep.ClientID, TokenEndpoint: ep.TokenURL, Scope: ref.scope, TokenType: "Bearer", Resource: ep.Resource}
		if _, err := ref.grants.Install(ctx, ref.key, tok, base); err != nil {
			return err
		}
		// The merge never writes a grant member, so it cannot undo the
		// install.
		if cfg, ok := tok.Extra("config").(map[string]any); ok && !req.TokensOnly && ref.file != nil {
			if err := ref.file.MergeConfig(ctx, ref.key, cfg); err != nil {
				return err
			}
		}
		c.publish(key, events.Connected)
		if req.OnInstalled != nil {
			req.OnInstalled(tok)
		}
		return nil
	}
}

// Status reports the profile's connection to the provider and its flow.
func (c *Connector) Status(ctx context.Context, profileName, providerName string) (StatusReport, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	rep, err := c.report(ctx, t)
	if err != nil {
		return StatusReport{}, err
	}
	if c.Flows != nil {
		if f := c.Flows.Status(t.key); f.ID != "" || f.State != flow.StateIdle {
			rep.Flow = &f
		}
	}
	return rep, nil
}

// report builds the status report of t without its flow.
func (c *Connector) report(ctx context.Context, t target) (StatusReport, error) {
	st, err := c.status(ctx, t)
	if err != nil {
		return StatusReport{}, err
	}
	now := c.now()
	if tk := st.Token; tk != nil && !tk.Refreshable && !now.Before(tk.ExpiresAt) {
		st.ReauthRequired = true // a grant without a refresh token ends with its access token
	}
	if ic, ok := t.provider.(IssuerChecker); ok && st.Token != nil && ic.Moved(st.Token.TokenEndpoint) {
		st.ReauthRequired = true // its issuer is not the provider's any more
	}
	var needs []string
	if st.Auth == AuthOAuth {
		needs = c.needsScopes(t)
	}
	rep := StatusReport{
		Provider:       t.provider.Name(),
		Profile:        t.profile.Name,
		Supported:      st.Supported,
		Connected:      st.Connected,
		Auth:           st.Auth,
		ReauthRequired: st.ReauthRequired,
		Token:          newTokenReport(st.Token, now),
		APIKeyHint:     st.APIKeyHint,
		Account:        st.Account,
		NeedsScopes:    needs,
	}
	c.health(t, st, &rep, now)
	return rep, nil
}

// union is a with the members of b it lacks appended.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// needsScopes are the scopes a resource asked t's grant for and it lacks
// (a 403 insufficient_scope through a Transport of this Connector).
func (c *Connector) needsScopes(t target) []string {
	ref, err := c.where(t, false)
	if err != nil {
		return nil
	}
	return ref.grants.NeedsScopes(ref.key)
}

// status is the provider's status of t, or with a GrantStore what the store
// holds for it.
func (c *Connector) status(ctx context.Context, t target) (Status, error) {
	if c.GrantStore == nil {
		return t.provider.Status(ctx, t.profile, c.Stores())
	}
	st := Status{Supported: SupportsOAuth(t.provider)}
	ref, err := c.where(t, false)
	if err != nil {
		return Status{}, err
	}
	creds, err := c.GrantStore.Credentials(ctx, ref.key)
	if err != nil || creds.Grant == nil {
		return st, err
	}
	g := creds.Grant
	st.Connected, st.Auth = true, AuthOAuth
	st.ReauthRequired = creds.Rejected != "" || ref.grants.ReauthRequired(ref.key)
	st.Token = &TokenInfo{ClientID: g.ClientID, Scope: g.Scope, ExpiresAt: g.Expiry, Refreshable: g.RefreshToken != "", TokenEndpoint: g.TokenEndpoint, Obtained: g.Obtained}
	return st, nil
}

// Cancel cancels the profile's pending flow for the provider, freeing its
// loopback port, and reports the resulting status. Cancelling when no flow
// is pending is not an error.
func (c *Connector) Cancel(ctx context.Context, profileName, providerName string) (StatusReport, error) {
	t, fm, err := c.flowTarget(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	fm.Cancel(t.key)
	return c.Status(ctx, profileName, providerName)
}

// Callback completes a browser flow whose redirect URI is the router's
// callback route, with the query of the authorization response. A query
// with no or an unknown state changes nothing.
func (c *Connector) Callback(ctx context.Context, profileName, providerName string, query url.Values) (flow.Flow, error) {
	return c.CallbackBound(ctx, profileName, providerName, query, "")
}

// CallbackBound is [Connector.Callback] for a request that presents the
// browser nonce of [ConnectRequest.Binding] ("" for none).
func (c *Connector) CallbackBound(ctx context.Context, profileName, providerName string, query url.Values, nonce string) (flow.Flow, error) {
	t, fm, err := c.flowTarget(profileName, providerName)
	if err != nil {
		return flow.Flow{}, err
	}
	return fm.CallbackBound(ctx, t.key, query, nonce)
}

// bindingFor is the browser binding of req's flow: only a browser flow
// redirected to the callback route is bound (the loopback listener and the
// device flow are not reached by that browser's cookies).
func bindingFor(req ConnectRequest) string {
	if req.Method != flow.MethodBrowser || req.Redirect != flow.RedirectCallback {
		return ""
	}
	return req.Binding
}

// Wait blocks until the profile's flow for the provider leaves the pending
// state or ctx is done, and returns the flow.
func (c *Connector) Wait(ctx context.Context, profileName, providerName string) (flow.Flow, error) {
	t, fm, err := c.flowTarget(profileName, providerName)
	if err != nil {
		return flow.Flow{}, err
	}
	return fm.Wait(ctx, t.key)
}

// TokenSource returns a token source of the profile's grant for the
// provider. Every source of this Connector for that file shares its cache
// and its in-process refresh lock, and refreshes under the file lock.
func (c *Connector) TokenSource(profileName, providerName string, opts ...oauth.SourceOption) (*oauth.Source, error) {
	t, err := c.oauthTarget(profileName, providerName)
	if err != nil {
		return nil, err
	}
	ref, err := c.where(t, false)
	if err != nil {
		return nil, err
	}
	opts = append(opts, oauth.OnRefresh(c.onRefresh(t.key, false)))
	c.used(t.key)
	return ref.grants.TokenSource(ref.key, opts...), nil
}

// publishedEvent is the last connection event a Connector published for a
// key, so that Follow does not publish it again when it sees the write.
type publishedEvent struct {
	what string
	at   time.Time
}

// publish sends a connection event for key, when the Connector has a bus.
func (c *Connector) publish(key flow.Key, what string) {
	if c.Events == nil {
		return
	}
	c.followMu.Lock()
	if c.published == nil {
		c.published = make(map[flow.Key]publishedEvent)
	}
	c.published[key] = publishedEvent{what, time.Now()}
	c.followMu.Unlock()
	c.Events.Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: what})
}

// Methods returns the sign-in methods this Connector offers for p: p's
// methods, without [AuthKey] when the Connector keeps grants in a
// GrantStore (which holds no API keys).
func (c *Connector) Methods(p Provider) []AuthMethod {
	return c.withoutStoreless(slices.Clone(p.AuthMethods()))
}

// methodsWait bounds how long [Connector.MethodsContext] asks a provider's
// servers.
const methodsWait = 3 * time.Second

// MethodsContext is [Connector.Methods] with what the providers' servers
// announce (a [MethodDiscoverer]): each is asked at most once every few
// minutes, all at once, within ctx and at most a few seconds; a provider
// whose servers do not answer lists the methods known without them.
func (c *Connector) MethodsContext(ctx context.Context, ps []Provider) [][]AuthMethod {
	out := make([][]AuthMethod, len(ps))
	ctx, cancel := context.WithTimeout(ctx, methodsWait)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range ps {
		md, ok := p.(MethodDiscoverer)
		if !ok {
			out[i] = c.Methods(p)
			continue
		}
		wg.Go(func() { out[i] = c.withoutStoreless(md.DiscoverMethods(ctx)) })
	}
	wg.Wait()
	return out
}

// withoutStoreless drops from ms what this Connector cannot offer: API
// keys with a GrantStore.
func (c *Connector) withoutStoreless(ms []AuthMethod) []AuthMethod {
	if c.GrantStore != nil {
		ms = slices.DeleteFunc(ms, func(m AuthMethod) bool { return m == AuthKey })
	}
	return ms
}

// ConnectAPIKey connects the profile to the provider with an API key: it
// stores key where the provider's agent reads it (the profile's
// [GrantLocation], in place of any grant, which is then revoked as
// [Connector.Disconnect] does) and reports the resulting status. A pending
// flow of the profile is cancelled first, so that it cannot overwrite the
// key when it completes.
//
// The key is checked first: a malformed key, or one the provider's server
// refuses ([KeyChecker]), fails with [ErrAPIKeyRejected]. A provider
// without [AuthKey], or a Connector with a GrantStore (which keeps OAuth
// grants only), fails with [ErrUnsupported]. The key never appears in an
// error or a log line.
func (c *Connector) ConnectAPIKey(ctx context.Context, profileName, providerName, key string) (_ StatusReport, err error) {
	defer func() { err = c.unreachable(providerName, err) }()
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	if !slices.Contains(t.provider.AuthMethods(), AuthKey) {
		return StatusReport{}, fmt.Errorf("%w: %s does not accept an API key", ErrUnsupported, t.provider.DisplayName())
	}
	if c.GrantStore != nil {
		return StatusReport{}, fmt.Errorf("%w: this server keeps sign-ins in a shared store, which holds OAuth grants only, not API keys", ErrUnsupported)
	}
	if err := oauth.CheckAPIKey(key); err != nil {
		return StatusReport{}, keyError(err)
	}
	if kc, ok := t.provider.(KeyChecker); ok {
		err := kc.CheckAPIKey(ctx, t.profile, key)
		c.observeKeyCheck(t.provider.Name(), err)
		if err != nil {
			return StatusReport{}, err
		}
	}
	if c.Flows != nil {
		c.Flows.Cancel(t.key)
	}
	ref, err := c.where(t, true)
	if err != nil {
		return StatusReport{}, err
	}
	replaced, err := ref.grants.SetAPIKey(ctx, ref.key, key)
	if err != nil {
		return StatusReport{}, keyError(err)
	}
	c.publish(t.key, events.Connected)
	if replaced != nil {
		c.revoke(ctx, t, replaced)
	}
	return c.report(ctx, t)
}

// Disconnect removes the profile's credentials for the provider from the
// file they are read from, keeping every other key and host: its grant,
// or else its own API key. A removed grant's refresh token is then revoked
// at the authorization server (RFC 7009) when a revocation endpoint is
// known from the provider's endpoints or from discovery (RFC 8414).
// Revocation is best effort: a failure is logged at warning level and
// reported in the result, and the grant stays removed.
//
// With nothing to remove, Disconnect succeeds with Removed false, so a
// repeated request is not an error; but a profile that connects with an
// API key it does not own (set for every host of the file, or in the
// environment) fails with [ErrAPIKeyConnection].
func (c *Connector) Disconnect(ctx context.Context, profileName, providerName string) (DisconnectResult, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return DisconnectResult{}, err
	}
	if len(t.provider.AuthMethods()) == 0 {
		return DisconnectResult{}, fmt.Errorf("%w: %s cannot be connected here", ErrUnsupported, t.provider.DisplayName())
	}
	ref, err := c.where(t, false)
	if err != nil {
		return DisconnectResult{}, err
	}
	g, err := ref.grants.Remove(ctx, ref.key)
	if errors.Is(err, oauth.ErrNoGrant) {
		return c.disconnectKey(ctx, t, ref)
	}
	if err != nil {
		return DisconnectResult{}, err
	}
	c.publish(t.key, events.Disconnected)
	return c.revoke(ctx, t, g), nil
}

// disconnectKey is Disconnect of a profile without a grant: it removes the
// profile's own API key, if it has one.
func (c *Connector) disconnectKey(ctx context.Context, t target, ref grantRef) (DisconnectResult, error) {
	st, err := c.status(ctx, t)
	if err != nil || !st.Connected || st.Auth != AuthAPIKey {
		return DisconnectResult{}, err
	}
	if st.APIKeySource == "host" && ref.file != nil {
		removed, err := ref.grants.RemoveAPIKey(ctx, ref.key)
		if err != nil || removed {
			if removed {
				c.publish(t.key, events.Disconnected)
			}
			return DisconnectResult{Removed: removed}, err
		}
	}
	where := "for every profile of the configuration file"
	if st.APIKeySource == "env" {
		where = "in the environment"
	}
	return DisconnectResult{}, fmt.Errorf("%w: %s: the key is set %s; remove it there", ErrAPIKeyConnection, t.provider.DisplayName(), where)
}

// revoke revokes g's refresh token, best effort (see Disconnect), and
// returns the result of the removal of g.
func (c *Connector) revoke(ctx context.Context, t target, g *oauth.Grant) DisconnectResult {
	res := DisconnectResult{Removed: true}
	token, hint := g.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = g.AccessToken, "access_token" // a grant without a refresh token
	}
	if token == "" {
		return res
	}
	log := c.Logger.With().Str("provider", t.provider.Name()).Str("profile", t.profile.Name).Logger()
	endpoint := c.revocationEndpoint(ctx, t)
	if endpoint == "" {
		log.Info().Msg("grant removed; no revocation endpoint is known, so the refresh token was not revoked")
		return res
	}
	if err := oauth.Revoke(ctx, c.httpClient(), endpoint, g.ClientID, token, hint); err != nil {
		log.Warn().Err(err).Str("endpoint", endpoint).Msg("grant removed, but revoking the refresh token failed")
		res.RevokeError = err.Error()
		return res
	}
	log.Info().Msg("grant removed and refresh token revoked")
	res.Revoked = true
	return res
}

// revocationEndpoint returns the provider's revocation endpoint, discovering
// it from the issuer's metadata when the provider names none. It returns ""
// when none is known.
func (c *Connector) revocationEndpoint(ctx context.Context, t target) string {
	ep, _, err := c.endpoints(ctx, t, false)
	if err != nil {
		c.Logger.Warn().Err(err).Str("provider", t.provider.Name()).Msg("no endpoints for revocation")
		return ""
	}
	return ep.RevocationURL
}
