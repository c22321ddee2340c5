package provider

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/errkind"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/scopes"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
)

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
	// authorization server's "config" into the configuration file.
	TokensOnly bool
	// ConfigExcept are members of the server's "config" left out of the
	// merge, which the caller handles itself (the command-line client
	// asks for "peerName"): every other member is merged as the router
	// merges it, so that one account's sign-in writes the same file
	// whichever way it came.
	ConfigExcept []string
	// Binding binds a browser flow in the callback redirect mode to the
	// browser that started it ([flow.Request.Binding]): the hex SHA-256
	// of a nonce that browser holds; "" for none (curl, the CLI).
	Binding string
	// RequireBinding refuses, with [ErrUnbindable], a flow that Binding
	// cannot bind: a device flow, or a browser flow redirected to a
	// loopback listener. A caller that is not the host itself (a connect
	// session) sets it, so that nobody can start a sign-in and have
	// someone else finish it for their profile.
	RequireBinding bool
}

// DefaultConnectTimeout is [Connector.ConnectTimeout]'s default: well
// under the write timeout of a server that answers connect requests.
const DefaultConnectTimeout = 20 * time.Second

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
// [*authserver.UpstreamError] naming it and the step; one that could not be
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
	if req.RequireBinding && (req.Method != flow.MethodBrowser || req.Redirect != flow.RedirectCallback || req.Binding == "") {
		if req.Method == flow.MethodDevice {
			return StatusReport{}, fmt.Errorf("%w: anyone who is given a device code can enter it", ErrUnbindable)
		}
		return StatusReport{}, fmt.Errorf("%w: a sign-in that returns to a listener on the server's machine is not reached by the browser's cookie", ErrUnbindable)
	}
	methods := t.provider.AuthMethods()
	if md, ok := t.provider.(MethodDiscoverer); ok && req.Method == flow.MethodDevice {
		methods = md.DiscoverMethods(ctx) // the device flow is what the server announces
	}
	if !slices.Contains(methods, AuthMethod(req.Method)) {
		return StatusReport{}, fmt.Errorf("%w: %s does not support the %s flow", ErrUnsupported, t.provider.DisplayName(), quoteShort(string(req.Method)))
	}
	// A loopback sign-in binds its listener first, so that a client is
	// registered for the exact URI it listens on.
	var lb *flow.Reservation
	if req.Method == flow.MethodBrowser && req.Redirect == flow.RedirectLoopback {
		if lb, err = fm.ReserveLoopback(c.loopbackAddr(t)); err != nil {
			return StatusReport{}, err
		}
		defer lb.Release() // unless the flow took it
	}
	ep, deviceOK, err := c.connectEndpoints(ctx, t, c.signInClient(t, req, callbackURL, lb), req.Method == flow.MethodDevice)
	if err != nil {
		return StatusReport{}, err
	}
	if st, err := c.status(ctx, t); err == nil && st.Auth == AuthOAuth {
		if needs := c.needsScopes(t, st); len(needs) > 0 {
			// Step-up: what the grant had and what a resource asked for.
			if st.Token != nil {
				ep.Scopes = scopes.Union(ep.Scopes, strings.Fields(st.Token.Scope))
			}
			ep.Scopes = scopes.Union(ep.Scopes, needs)
		}
	}
	if req.Method == flow.MethodDevice && (!deviceOK || ep.DeviceAuthURL == "") {
		return StatusReport{}, fmt.Errorf("%w: %s does not announce the device flow in its metadata (RFC 8414)", ErrUnsupported, t.provider.DisplayName())
	}
	if ep.AuthorizeURL == "" || ep.TokenURL == "" {
		return StatusReport{}, fmt.Errorf("provider: %s has no authorization or token endpoint configured or discoverable", t.provider.DisplayName())
	}
	if err := needClient(t, ep); err != nil {
		return StatusReport{}, err
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
	comp := c.completion(t, ref, ep, completionOf(req))
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
		ClientRejected:  comp.ClientRejected,
		Unanswered:      comp.ClientRejected,
		DeviceSupported: deviceOK,
		Issuer:          ep.Issuer,
		IssuerRequired:  ep.IssuerInResponse,
		Binding:         bindingFor(req),
		DisplayName:     t.provider.DisplayName(),
		Complete:        comp.Complete,
		ResumeData:      completionOf(req).data(),
	}
	if fr.Method == flow.MethodBrowser && fr.Redirect == flow.RedirectLoopback {
		fr.LoopbackAddr, fr.Loopback = c.loopbackAddr(t), lb
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

// Resume returns how a browser flow for key that another instance started
// completes here: the completion [Connector.Connect] gave the flow (the
// grant stored, the server's config merged, a rejected client forgotten),
// for the client and token endpoint of cfg, the flow's configuration as
// the starting instance recorded it (a client registered there may be
// unknown here), and with the starting request's TokensOnly and
// ConfigExcept, which data carries. Pass it as [flow.Config.Resume] of a
// flow manager that shares its Store with other instances
// ([Connector.NewFlows] does).
func (c *Connector) Resume(ctx context.Context, key connid.ID, cfg oauth2.Config, data []byte) (flow.Completion, error) {
	t, err := c.oauthTarget(key.Profile, key.Provider)
	if err != nil {
		return flow.Completion{}, err
	}
	ep, _, err := c.endpoints(ctx, t, false)
	if err != nil {
		return flow.Completion{}, err
	}
	if cfg.ClientID != "" {
		ep.ClientID, ep.TokenURL = cfg.ClientID, cfg.Endpoint.TokenURL
	}
	if err := needClient(t, ep); err != nil {
		return flow.Completion{}, err
	}
	ref, err := c.where(t, true)
	if err != nil {
		return flow.Completion{}, err
	}
	var opts completion
	if len(data) > 0 {
		if err := json.Unmarshal(data, &opts); err != nil {
			return flow.Completion{}, fmt.Errorf("provider: the flow's completion options: %w", err)
		}
	}
	return c.completion(t, ref, ep, opts), nil
}

// needClient is the one answer to a sign-in without a client: the
// provider names none and its registrar (if any) gave none.
func needClient(t target, ep Endpoints) error {
	if ep.ClientID != "" {
		return nil
	}
	err := fmt.Errorf("%w: %s names no OAuth client to sign in with (set one, or use a server that registers clients)", ErrUnsupported, t.provider.DisplayName())
	return errkind.Wrap(errkind.Unsupported, err, t.provider.DisplayName()+" names no OAuth client to sign in with, and its server registers none: the server's operator must set one.")
}

// completion is what of a ConnectRequest a flow carries to the instance
// that completes it ([flow.Request.ResumeData]): the options of the
// grant's install that are data, not functions.
type completion struct {
	TokensOnly   bool     `json:"tokens_only,omitempty"`
	ConfigExcept []string `json:"config_except,omitempty"`
}

// completionOf is req's completion options.
func completionOf(req ConnectRequest) completion {
	return completion{TokensOnly: req.TokensOnly, ConfigExcept: req.ConfigExcept}
}

// data encodes o for another instance; nil when there is nothing.
func (o completion) data() []byte {
	if !o.TokensOnly && len(o.ConfigExcept) == 0 {
		return nil
	}
	data, _ := json.Marshal(o) // cannot fail
	return data
}

// completion is how a flow of t completes, wherever it started: Complete
// stores the grant and, in a config file, merges the server's "config"
// object into it (unless o.TokensOnly), then calls OnInstalled;
// ClientRejected has a [Registrar] forget ep's client.
func (c *Connector) completion(t target, ref grantRef, ep Endpoints, o completion) flow.Completion {
	comp := flow.Completion{Complete: func(ctx context.Context, tok *oauth2.Token) error {
		base := oauth.Grant{ClientID: ep.ClientID, TokenEndpoint: ep.TokenURL, Scope: ref.scope, TokenType: "Bearer", Resource: ep.Resource}
		var opts []oauth.InstallOption
		if cfg, ok := tokenConfig(tok); ok && !o.TokensOnly {
			if len(o.ConfigExcept) > 0 {
				cfg = maps.Clone(cfg)
				for _, k := range o.ConfigExcept {
					delete(cfg, k)
				}
			}
			opts = append(opts, oauth.InstallConfig(cfg)) // one write with the grant
		}
		undo := c.expect(t.key, events.Connected)
		if _, err := ref.grants.Install(ctx, ref.key, tok, base, opts...); err != nil {
			undo()
			return err
		}
		c.publish(t.key, events.Connected)
		if c.OnInstalled != nil {
			c.OnInstalled(t.key, tok)
		}
		return nil
	}}
	if r, ok := t.provider.(Registrar); ok {
		comp.ClientRejected = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r.ClientRejected(ctx, t.profile, ep.ClientID, c.Stores())
		}
	}
	return comp
}

// Cancel cancels the profile's pending flow for the provider, freeing its
// loopback port, and reports the resulting status. Cancelling when no flow
// is pending is not an error.
func (c *Connector) Cancel(ctx context.Context, profileName, providerName string) (StatusReport, error) {
	t, fm, err := c.flowTarget(profileName, providerName)
	if err != nil {
		return StatusReport{}, err
	}
	fm.Cancel(ctx, t.key)
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

// tokenConfig is the "config" object a token response carried, if any.
func tokenConfig(tok *oauth2.Token) (map[string]any, bool) {
	if tok == nil {
		return nil, false
	}
	cfg, ok := tok.Extra("config").(map[string]any)
	return cfg, ok
}
