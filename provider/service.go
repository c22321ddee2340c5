package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth"
)

// ErrUnsupported reports that a provider does not support the operation:
// it has no OAuth at all, or not the requested method.
var ErrUnsupported = errors.New("provider: not supported")

// ErrConflict reports a request that conflicts with the current state, such
// as a connect with one method while a flow of another method is pending.
var ErrConflict = errors.New("provider: conflict")

// ConnectRequest is how a caller wants a flow started by [Service.Connect].
type ConnectRequest struct {
	// Method is the flow to run; empty means [oauth.MethodBrowser].
	Method oauth.FlowMethod
	// Source tags the authorize link with the surface that started it
	// ("hermes-cli", "hermes-desktop"), so the consent page can adapt.
	Source string
	// Redirect is where a browser flow's authorization response goes.
	Redirect oauth.RedirectMode
	// CallbackURL is the redirect URI for [oauth.RedirectCallback].
	CallbackURL string
	// TokensOnly stores the tokens and skips the merge of the
	// authorization server's "config" into the configuration file (the
	// command-line client asks for the consent values itself).
	TokensOnly bool
	// OnInstalled, if not nil, is called with the installed grant after it
	// is stored and before the flow becomes connected; the consent's
	// peerName arrives this way. It must not block.
	OnInstalled func(*oauth.Installed)
}

// DisconnectResult is what [Service.Disconnect] did at the authorization
// server. The grant is removed from the file in any case.
type DisconnectResult struct {
	// Revoked reports that the server accepted the revocation of the
	// refresh token (RFC 7009).
	Revoked bool
	// RevokeError says why revocation failed, for a person; empty when it
	// succeeded or was not attempted (no revocation endpoint is known). It
	// never holds a token.
	RevokeError string
}

// Service connects profiles to providers: it resolves names, builds the
// OAuth configuration from a provider's endpoints, drives the flows of
// [oauth.FlowManager] and stores grants in the provider's shared
// [oauth.Store]. The HTTP handlers and the command-line client both use it.
//
// Registry and Profiles are required; Flows is required by Connect,
// Callback and Cancel. Set the fields before first use and do not change
// them afterwards. Service is safe for concurrent use by multiple
// goroutines; do not copy it after first use.
type Service struct {
	// Registry holds the providers.
	Registry *Registry
	// Profiles resolves profile names.
	Profiles ProfileResolver
	// Flows runs authorization flows.
	Flows *oauth.FlowManager
	// HTTPClient is used for metadata discovery and revocation; nil means
	// [http.DefaultClient].
	HTTPClient *http.Client
	// Logger receives warnings, such as a failed revocation. The zero
	// value discards them.
	Logger zerolog.Logger
	// Now is the clock; nil means [time.Now].
	Now func() time.Time

	mdMu sync.Mutex // guards md
	md   map[string]discovered
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
func (s *Service) metadata(ctx context.Context, issuer string) *oauth.Metadata {
	if issuer == "" {
		return nil
	}
	now := s.now()
	s.mdMu.Lock()
	if d, ok := s.md[issuer]; ok && now.Sub(d.at) < metadataTTL {
		s.mdMu.Unlock()
		return d.md
	}
	s.mdMu.Unlock()
	md, err := oauth.Discover(ctx, s.httpClient(), issuer)
	if err != nil {
		s.Logger.Debug().Err(err).Str("issuer", issuer).Msg("metadata discovery failed")
		md = nil
	}
	s.mdMu.Lock()
	if s.md == nil {
		s.md = make(map[string]discovered)
	}
	s.md[issuer] = discovered{md: md, at: now}
	s.mdMu.Unlock()
	return md
}

// endpoints returns the provider's endpoints with the ones it left empty
// filled from the issuer's metadata (RFC 8414), and whether that metadata
// announces the device flow. Discovery is asked only when something is
// missing or the device flow is wanted; it fails closed.
func (s *Service) endpoints(ctx context.Context, t target, device bool) (Endpoints, bool, error) {
	ep, err := t.provider.Endpoints(ctx, t.profile)
	if err != nil {
		return Endpoints{}, false, err
	}
	if !device && ep.AuthorizeURL != "" && ep.TokenURL != "" && ep.RevocationURL != "" {
		return ep, false, nil
	}
	md := s.metadata(ctx, ep.Issuer)
	e := oauth2.Endpoint{AuthURL: ep.AuthorizeURL, TokenURL: ep.TokenURL, DeviceAuthURL: ep.DeviceAuthURL}
	md.Fill(&e, &ep.RevocationURL)
	ep.AuthorizeURL, ep.TokenURL, ep.DeviceAuthURL = e.AuthURL, e.TokenURL, e.DeviceAuthURL
	return ep, md.SupportsDeviceFlow(), nil
}

// target is a resolved (profile, provider) pair.
type target struct {
	profile  Profile
	provider Provider
	key      oauth.FlowKey
}

// resolve looks up the provider and resolves the profile. The provider is
// looked up first so that an unknown provider is reported as such whatever
// the profile.
func (s *Service) resolve(profileName, providerName string) (target, error) {
	if s.Registry == nil || s.Profiles == nil {
		return target{}, errors.New("provider: Service needs a Registry and a ProfileResolver")
	}
	pv, ok := s.Registry.Lookup(providerName)
	if !ok {
		return target{}, fmt.Errorf("%w %s", ErrUnknownProvider, quoteShort(providerName))
	}
	p, err := s.Profiles.Resolve(profileName)
	if err != nil {
		return target{}, err
	}
	return target{profile: p, provider: pv, key: oauth.FlowKey{Profile: p.Name, Provider: pv.Name()}}, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) httpClient() *http.Client {
	if s.HTTPClient != nil {
		return s.HTTPClient
	}
	return http.DefaultClient
}

func (s *Service) flows() (*oauth.FlowManager, error) {
	if s.Flows == nil {
		return nil, errors.New("provider: Service has no FlowManager")
	}
	return s.Flows, nil
}

// Connect starts an authorization flow that connects the profile to the
// provider, or returns the pending one when a flow of the same method is
// already running. When the person consents, the grant is stored in the
// provider's [GrantLocation].WritePath under its Host, with the server's
// "config" merged into the file unless req.TokensOnly.
//
// Connect fails with [ErrUnsupported] when the provider has no OAuth or not
// the requested method, and with [ErrConflict] (wrapping
// [oauth.ErrFlowConflict]) when a flow of another method or redirect mode is
// pending. A device flow that the authorization server refuses to start
// fails with an [*oauth.FlowFailure].
func (s *Service) Connect(ctx context.Context, profileName, providerName string, req ConnectRequest) (StatusReport, error) {
	t, err := s.resolve(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	fm, err := s.flows()
	if err != nil {
		return StatusReport{}, err
	}
	if req.Method == "" {
		req.Method = oauth.MethodBrowser
	}
	methods := t.provider.AuthMethods()
	if len(methods) == 0 {
		return StatusReport{}, fmt.Errorf("%w: %s does not support OAuth", ErrUnsupported, t.provider.DisplayName())
	}
	if !slices.Contains(methods, AuthMethod(req.Method)) {
		return StatusReport{}, fmt.Errorf("%w: %s does not support the %s flow", ErrUnsupported, t.provider.DisplayName(), quoteShort(string(req.Method)))
	}
	ep, deviceOK, err := s.endpoints(ctx, t, req.Method == oauth.MethodDevice)
	if err != nil {
		return StatusReport{}, err
	}
	if req.Method == oauth.MethodDevice && (!deviceOK || ep.DeviceAuthURL == "") {
		return StatusReport{}, fmt.Errorf("%w: %s does not announce the device flow in its metadata (RFC 8414)", ErrUnsupported, t.provider.DisplayName())
	}
	if ep.AuthorizeURL == "" || ep.TokenURL == "" {
		return StatusReport{}, fmt.Errorf("provider: %s has no authorization or token endpoint configured or discoverable", t.provider.DisplayName())
	}
	loc, err := t.provider.GrantLocation(t.profile)
	if err != nil {
		return StatusReport{}, err
	}
	store := t.provider.Store(loc.WritePath)
	params := url.Values{}
	if req.Source != "" {
		params.Set("source", req.Source)
	}
	if loc.DisplayPath != "" {
		params.Set("config_path", loc.DisplayPath)
	}
	install := oauth.InstallOptions{ClientID: ep.ClientID, TokenEndpoint: ep.TokenURL, TokensOnly: req.TokensOnly}
	host, onInstalled := loc.Host, req.OnInstalled
	fr := oauth.FlowRequest{
		Key:         t.key,
		Method:      req.Method,
		Redirect:    req.Redirect,
		CallbackURL: req.CallbackURL,
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
		DeviceSupported: deviceOK,
		DisplayName:     t.provider.DisplayName(),
		Complete: func(ctx context.Context, tok *oauth2.Token) error {
			inst, err := store.InstallGrant(ctx, host, tok, install)
			if err != nil {
				return err
			}
			if onInstalled != nil {
				onInstalled(inst)
			}
			return nil
		},
	}
	flow, err := fm.Start(ctx, fr)
	switch {
	case errors.Is(err, oauth.ErrFlowConflict):
		return StatusReport{}, fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, oauth.ErrDeviceFlowUnsupported):
		return StatusReport{}, fmt.Errorf("%w: %w", ErrUnsupported, err)
	case err != nil:
		return StatusReport{}, err
	}
	rep, err := s.report(ctx, t)
	if err != nil {
		return StatusReport{}, err
	}
	rep.Flow = &flow
	return rep, nil
}

// Status reports the profile's connection to the provider and its flow.
func (s *Service) Status(ctx context.Context, profileName, providerName string) (StatusReport, error) {
	t, err := s.resolve(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	rep, err := s.report(ctx, t)
	if err != nil {
		return StatusReport{}, err
	}
	if s.Flows != nil {
		if f := s.Flows.Status(t.key); f.ID != "" || f.State != oauth.FlowIdle {
			rep.Flow = &f
		}
	}
	return rep, nil
}

// report builds the status report of t without its flow.
func (s *Service) report(ctx context.Context, t target) (StatusReport, error) {
	st, err := t.provider.Status(ctx, t.profile)
	if err != nil {
		return StatusReport{}, err
	}
	return StatusReport{
		Provider:       t.provider.Name(),
		Profile:        t.profile.Name,
		Supported:      st.Supported,
		Connected:      st.Connected,
		Auth:           st.Auth,
		ReauthRequired: st.ReauthRequired,
		Token:          newTokenReport(st.Token, s.now()),
		APIKeyHint:     st.APIKeyHint,
	}, nil
}

// Cancel cancels the profile's pending flow for the provider, freeing its
// loopback port, and reports the resulting status. Cancelling when no flow
// is pending is not an error.
func (s *Service) Cancel(ctx context.Context, profileName, providerName string) (StatusReport, error) {
	t, err := s.resolve(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	fm, err := s.flows()
	if err != nil {
		return StatusReport{}, err
	}
	fm.Cancel(t.key)
	return s.Status(ctx, profileName, providerName)
}

// Callback completes a browser flow whose redirect URI is the router's
// callback route, with the query of the authorization response. A query
// with no or an unknown state changes nothing.
func (s *Service) Callback(ctx context.Context, profileName, providerName string, query url.Values) (oauth.Flow, error) {
	t, err := s.resolve(profileName, providerName)
	if err != nil {
		return oauth.Flow{}, err
	}
	fm, err := s.flows()
	if err != nil {
		return oauth.Flow{}, err
	}
	return fm.Callback(ctx, t.key, query)
}

// Wait blocks until the profile's flow for the provider leaves the pending
// state or ctx is done, and returns the flow.
func (s *Service) Wait(ctx context.Context, profileName, providerName string) (oauth.Flow, error) {
	t, err := s.resolve(profileName, providerName)
	if err != nil {
		return oauth.Flow{}, err
	}
	fm, err := s.flows()
	if err != nil {
		return oauth.Flow{}, err
	}
	return fm.Wait(ctx, t.key)
}

// TokenSource returns the file-backed token source of the profile's grant
// for the provider, sharing the provider's store. Its tokens refresh under
// the in-process and the file lock.
func (s *Service) TokenSource(profileName, providerName string) (*oauth.FileTokenSource, error) {
	t, err := s.resolve(profileName, providerName)
	if err != nil {
		return nil, err
	}
	if len(t.provider.AuthMethods()) == 0 {
		return nil, fmt.Errorf("%w: %s does not support OAuth", ErrUnsupported, t.provider.DisplayName())
	}
	loc, err := t.provider.GrantLocation(t.profile)
	if err != nil {
		return nil, err
	}
	return t.provider.Store(loc.ReadPath).TokenSource(loc.Host), nil
}

// Disconnect removes the profile's grant for the provider from the file it
// is read from, keeping every other key and host, and then revokes the
// refresh token at the authorization server (RFC 7009) when a revocation
// endpoint is known from the provider's endpoints or from discovery
// (RFC 8414). Revocation is best effort: a failure is logged at warning
// level and reported in the result, and the grant stays removed.
//
// Disconnect fails with an error wrapping [oauth.ErrNoGrant] when there is
// no grant to remove.
func (s *Service) Disconnect(ctx context.Context, profileName, providerName string) (DisconnectResult, error) {
	t, err := s.resolve(profileName, providerName)
	if err != nil {
		return DisconnectResult{}, err
	}
	if len(t.provider.AuthMethods()) == 0 {
		return DisconnectResult{}, fmt.Errorf("%w: %s does not support OAuth", ErrUnsupported, t.provider.DisplayName())
	}
	loc, err := t.provider.GrantLocation(t.profile)
	if err != nil {
		return DisconnectResult{}, err
	}
	g, err := t.provider.Store(loc.ReadPath).RemoveGrant(ctx, loc.Host)
	if err != nil {
		return DisconnectResult{}, err
	}
	if g == nil || g.RefreshToken == "" {
		return DisconnectResult{}, nil
	}
	log := s.Logger.With().Str("provider", t.provider.Name()).Str("profile", t.profile.Name).Logger()
	endpoint := s.revocationEndpoint(ctx, t)
	if endpoint == "" {
		log.Info().Msg("grant removed; no revocation endpoint is known, so the refresh token was not revoked")
		return DisconnectResult{}, nil
	}
	if err := oauth.Revoke(ctx, s.httpClient(), endpoint, g.ClientID, g.RefreshToken, "refresh_token"); err != nil {
		log.Warn().Err(err).Str("endpoint", endpoint).Msg("grant removed, but revoking the refresh token failed")
		return DisconnectResult{RevokeError: err.Error()}, nil
	}
	log.Info().Msg("grant removed and refresh token revoked")
	return DisconnectResult{Revoked: true}, nil
}

// revocationEndpoint returns the provider's revocation endpoint, discovering
// it from the issuer's metadata when the provider names none. It returns ""
// when none is known.
func (s *Service) revocationEndpoint(ctx context.Context, t target) string {
	ep, _, err := s.endpoints(ctx, t, false)
	if err != nil {
		s.Logger.Warn().Err(err).Str("provider", t.provider.Name()).Msg("no endpoints for revocation")
		return ""
	}
	return ep.RevocationURL
}
