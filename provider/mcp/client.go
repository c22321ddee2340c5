package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
)

// discovery is what the server and its authorization server said.
type discovery struct {
	resource string
	md       *authserver.Metadata
	scopes   []string
}

// discover returns the server's metadata, reusing a lookup made within
// discoveryTTL. A failed lookup is not cached.
func (p *Provider) discover(ctx context.Context) (*discovery, error) {
	now := p.now()
	p.mu.Lock()
	if p.disc != nil && now.Sub(p.discAt) < discoveryTTL {
		d := p.disc
		p.mu.Unlock()
		return d, nil
	}
	p.mu.Unlock()
	failed := func(err error) (*discovery, error) {
		p.mu.Lock()
		p.failedAt = now
		p.mu.Unlock()
		return nil, fmt.Errorf("mcp: %s: %w", p.display, err)
	}
	rmd, ch, err := authserver.DiscoverResource(ctx, p.client, p.serverURL)
	if err != nil {
		return failed(err)
	}
	md, err := authserver.Discover(ctx, p.client, rmd.AuthorizationServers[0])
	if err != nil {
		return failed(err)
	}
	if md.AuthorizationEndpoint == "" {
		return nil, fmt.Errorf("mcp: %s: %w", p.display, &authserver.UpstreamError{Step: authserver.StepServerMetadata, URL: md.Issuer,
			Err: errors.New("the metadata name no authorization_endpoint")})
	}
	d := &discovery{resource: rmd.Resource, md: md}
	switch {
	case len(p.scopes) > 0:
		d.scopes = slices.Clone(p.scopes)
	case ch.Scope != "":
		d.scopes = strings.Fields(ch.Scope)
	default:
		d.scopes = slices.Clone(rmd.ScopesSupported)
	}
	if len(p.scopes) == 0 && slices.Contains(md.ScopesSupported, "offline_access") && !slices.Contains(d.scopes, "offline_access") {
		d.scopes = append(d.scopes, "offline_access")
	}
	p.mu.Lock()
	p.disc, p.discAt = d, now
	p.mu.Unlock()
	return d, nil
}

// registration is a dynamically registered client, as the grant file
// keeps it.
type registration struct {
	ClientID     string   `json:"client_id"`
	RedirectURIs []string `json:"redirect_uris"`
	Issuer       string   `json:"issuer"`
	RegisteredAt int64    `json:"registered_at"`
	// GrantTypes are the grant types it was registered for; none recorded
	// means the authorization code and refresh token grants.
	GrantTypes []string `json:"grant_types,omitempty"`
}

// grantTypes are the grant types a client of d registers for: the device
// flow's too when the server announces it (RFC 8628), so that a device
// sign-in is not refused as unauthorized_client.
func grantTypes(d *discovery) []string {
	gts := []string{"authorization_code", "refresh_token"}
	if d.md.SupportsDeviceFlow() {
		gts = append(gts, deviceGrantType)
	}
	return gts
}

// deviceGrantType is the device flow's grant type (RFC 8628 section 3.4).
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// covers reports whether r is a client of d's issuer registered for every
// URI of uris and every grant type a client of d needs.
func (r *registration) covers(d *discovery, uris []string) bool {
	if r == nil || r.ClientID == "" || r.Issuer != d.md.Issuer ||
		slices.ContainsFunc(uris, func(u string) bool { return !slices.Contains(r.RedirectURIs, u) }) {
		return false
	}
	have := r.GrantTypes
	if len(have) == 0 {
		have = []string{"authorization_code", "refresh_token"}
	}
	return !slices.ContainsFunc(grantTypes(d), func(g string) bool { return !slices.Contains(have, g) })
}

// endpoints is what a client of d uses.
func (p *Provider) endpoints(d *discovery, clientID string) provider.Endpoints {
	return provider.Endpoints{
		AuthorizeURL:  d.md.AuthorizationEndpoint,
		TokenURL:      d.md.TokenEndpoint,
		DeviceAuthURL: deviceURL(d.md),
		RevocationURL: d.md.RevocationEndpoint,
		Issuer:        d.md.Issuer,
		ClientID:      clientID,
		// RFC 9207.
		IssuerInResponse: d.md.AuthorizationResponseIssParameterSupported,
		Scopes:           slices.Clone(d.scopes),
		Resource:         d.resource,
	}
}

// deviceURL is md's device authorization endpoint when md announce the
// device flow, else "".
func deviceURL(md *authserver.Metadata) string {
	if md.SupportsDeviceFlow() {
		return md.DeviceAuthorizationEndpoint
	}
	return ""
}

// Endpoints implements [provider.Provider]: the discovered endpoints with
// the pre-registered client, or else the registered one, without
// registering (an empty ClientID when there is none yet).
func (p *Provider) Endpoints(ctx context.Context, prof provider.Profile) (provider.Endpoints, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return provider.Endpoints{}, err
	}
	if p.clientID != "" {
		return p.endpoints(d, p.clientID), nil
	}
	reg, err := p.registration(ctx, prof, nil, "", nil) // the profile's: a shared client needs the redirect URIs
	if err != nil {
		return provider.Endpoints{}, err
	}
	var id string
	if reg != nil && reg.Issuer == d.md.Issuer {
		id = reg.ClientID
	}
	return p.endpoints(d, id), nil
}

// Client implements [provider.Registrar], in the order of the MCP
// specification: a pre-registered client; else req.MetadataURL as the
// client_id when the authorization server announces
// client_id_metadata_document_supported and has not refused it before
// (see ClientRejected); else a registration (RFC 7591),
// made when the grant file holds none for this authorization server and
// every URI of req.RedirectURIs, or when the server rejected the one it
// holds (req.RejectedClientID: invalid_client at a refresh). A new
// registration is written to the grant file.
func (p *Provider) Client(ctx context.Context, prof provider.Profile, req provider.ClientRequest, stores *provider.Stores) (provider.Endpoints, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return provider.Endpoints{}, err
	}
	if p.clientID != "" {
		return p.endpoints(d, p.clientID), nil
	}
	if req.MetadataURL != "" && d.md.ClientIDMetadataDocumentSupported && req.RejectedClientID != req.MetadataURL &&
		!p.documentRefused(ctx, prof, stores, d.md.Issuer) {
		return p.endpoints(d, req.MetadataURL), nil
	}
	redirectURIs := req.RedirectURIs
	for _, uris := range [][]string{redirectURIs, req.FallbackRedirectURIs} {
		if len(uris) == 0 {
			continue
		}
		reg, err := p.registration(ctx, prof, stores, d.md.Issuer, uris)
		if err != nil {
			return provider.Endpoints{}, err
		}
		if reg.covers(d, uris) && reg.ClientID != req.RejectedClientID {
			return p.endpoints(d, reg.ClientID), nil
		}
	}
	if d.md.RegistrationEndpoint == "" {
		return provider.Endpoints{}, fmt.Errorf("mcp: %s: %w", p.display, &authserver.UpstreamError{Step: authserver.StepRegistration, URL: d.md.Issuer, Err: errNoClient})
	}
	reg, err := p.register(ctx, d, redirectURIs, req.RejectedClientID)
	if re, ok := errors.AsType[*authserver.RegistrationError](err); ok && re.ErrorCode == "invalid_redirect_uri" && len(req.FallbackRedirectURIs) > 0 {
		// The server takes the other form of the loopback redirect only.
		redirectURIs = req.FallbackRedirectURIs
		reg, err = p.register(ctx, d, redirectURIs, req.RejectedClientID)
	}
	if err != nil {
		return provider.Endpoints{}, fmt.Errorf("mcp: %s: %w", p.display, err)
	}
	p.regMu.Lock()
	err = p.saveRegistration(ctx, prof, stores, redirectURIs, reg)
	p.regMu.Unlock()
	if err != nil {
		return provider.Endpoints{}, err
	}
	return p.endpoints(d, reg.ClientID), nil
}

// registerCall is one registration under way, which every sign-in that
// needs the same client waits for.
type registerCall struct {
	done chan struct{} // closed when reg and err are set
	reg  *registration
	err  error
}

// register registers a client of d's authorization server for
// redirectURIs. Concurrent calls for the same server, redirect URIs and
// rejected client share one request, made with its own [authserver.StepTimeout]
// and no lock held; each caller waits for it only until its own ctx ends.
func (p *Provider) register(ctx context.Context, d *discovery, redirectURIs []string, rejected string) (*registration, error) {
	key := d.md.Issuer + "\x00" + strings.Join(redirectURIs, " ") + "\x00" + rejected
	p.mu.Lock()
	call, ok := p.registering[key]
	if !ok {
		call = &registerCall{done: make(chan struct{})}
		if p.registering == nil {
			p.registering = make(map[string]*registerCall)
		}
		p.registering[key] = call
		go func() {
			// Not the first caller's context: the others share the answer.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), authserver.StepTimeout)
			defer cancel()
			ci, err := authserver.Register(rctx, p.client, d.md.RegistrationEndpoint, authserver.ClientMetadata{
				RedirectURIs:  redirectURIs,
				ClientName:    p.clientName,
				GrantTypes:    grantTypes(d),
				ResponseTypes: []string{"code"},
				Scope:         strings.Join(d.scopes, " "),
			})
			if err == nil {
				call.reg = &registration{ClientID: ci.ClientID, RedirectURIs: ci.RedirectURIs, Issuer: d.md.Issuer, RegisteredAt: p.now().Unix(),
					GrantTypes: grantTypes(d)}
			}
			call.err = err
			p.mu.Lock()
			delete(p.registering, key)
			p.mu.Unlock()
			close(call.done)
		}()
	}
	p.mu.Unlock()
	select {
	case <-call.done:
		return call.reg, call.err
	case <-ctx.Done():
		return nil, &authserver.UpstreamError{Step: authserver.StepRegistration, URL: d.md.RegistrationEndpoint, Err: ctx.Err()}
	}
}

// ClientRejected implements [provider.Registrar]: it forgets the stored
// registration when it is clientID's, and records a refused metadata
// document (clientID is its https URL) so that the next sign-in goes
// straight to a registration. A pre-registered client is never forgotten.
func (p *Provider) ClientRejected(ctx context.Context, prof provider.Profile, clientID string, stores *provider.Stores) {
	if p.clientID != "" {
		return
	}
	if strings.HasPrefix(clientID, "https://") {
		// A metadata document's URL: the server did not take it. Remember
		// that, so that the next sign-in registers instead.
		if d, err := p.discover(ctx); err == nil {
			if cs := stores.Clients(); cs != nil {
				_ = cs.RefuseDocument(ctx, d.md.Issuer)
				return
			}
			p.regMu.Lock()
			_ = p.saveMember(ctx, prof, stores, "documentRefused", &refusal{Issuer: d.md.Issuer, At: p.now().Unix()})
			p.regMu.Unlock()
		}
		return
	}
	if cs := stores.Clients(); cs != nil {
		if d, err := p.discover(ctx); err == nil {
			_ = cs.ForgetClient(ctx, d.md.Issuer, clientID)
		}
		return
	}
	p.regMu.Lock()
	defer p.regMu.Unlock()
	if reg, err := p.registration(ctx, prof, stores, "", nil); err != nil || reg == nil || reg.ClientID != clientID {
		return
	}
	_ = p.saveRegistration(ctx, prof, stores, nil, nil)
}

// registration reads the stored registration for issuer and redirectURIs:
// the deployment's ([provider.Stores.Clients]), else the profile's; nil
// for none.
func (p *Provider) registration(ctx context.Context, prof provider.Profile, stores *provider.Stores, issuer string, redirectURIs []string) (*registration, error) {
	var reg *registration
	if cs := stores.Clients(); cs != nil {
		raw, err := cs.Client(ctx, issuer, strings.Join(redirectURIs, " "))
		if err != nil || raw == nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &reg); err != nil {
			return nil, fmt.Errorf("mcp: the stored client of %s: %w", issuer, err)
		}
		return reg, nil
	}
	err := p.readMember(prof, "registration", &reg)
	return reg, err
}

// refusal records an authorization server that did not take the client's
// metadata document: the next sign-in registers instead.
type refusal struct {
	Issuer string `json:"issuer"`
	At     int64  `json:"at"`
}

// documentRefused reports whether issuer refused the client's metadata
// document, as the deployment's client store, or else the profile's grant
// file, records.
func (p *Provider) documentRefused(ctx context.Context, prof provider.Profile, stores *provider.Stores, issuer string) bool {
	if cs := stores.Clients(); cs != nil {
		refused, err := cs.DocumentRefused(ctx, issuer)
		return err == nil && refused
	}
	var r *refusal
	return p.readMember(prof, "documentRefused", &r) == nil && r != nil && r.Issuer == issuer
}

// readMember decodes the member name of the server's object in the
// profile's grant file into v; a file or member that is missing leaves v
// as it is.
func (p *Provider) readMember(prof provider.Profile, name string, v any) error {
	loc, err := p.GrantLocation(prof)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(loc.ReadPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mcp: read %s: %w", loc.ReadPath, err)
	}
	var f struct {
		Servers map[string]map[string]json.RawMessage `json:"servers"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return &filestore.ConfigError{Path: loc.ReadPath, Err: err}
	}
	raw, ok := f.Servers[p.name][name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return &filestore.ConfigError{Path: loc.ReadPath, Err: err}
	}
	return nil
}

// saveRegistration stores reg (nil: none) as the client for redirectURIs:
// in the deployment's client store, else in the profile's grant file,
// keeping everything else.
func (p *Provider) saveRegistration(ctx context.Context, prof provider.Profile, stores *provider.Stores, redirectURIs []string, reg *registration) error {
	if cs := stores.Clients(); cs != nil && reg != nil {
		raw, err := json.Marshal(reg)
		if err == nil {
			err = cs.SaveClient(ctx, reg.Issuer, strings.Join(redirectURIs, " "), raw)
		}
		if err != nil {
			return fmt.Errorf("mcp: %s: store the client registration: %w", p.display, err)
		}
		return nil
	}
	if err := p.saveMember(ctx, prof, stores, "registration", reg); err != nil {
		return fmt.Errorf("mcp: %s: store the client registration: %w", p.display, err)
	}
	return nil
}

// saveMember writes v (a nil pointer: none) as the member name of the
// server's object in the profile's grant file, keeping everything else.
func (p *Provider) saveMember(ctx context.Context, prof provider.Profile, stores *provider.Stores, name string, v any) error {
	loc, err := p.GrantLocation(prof)
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var m any // a map, or nil for null
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	patch := map[string]any{"servers": map[string]any{p.name: map[string]any{name: m}}}
	return stores.File(loc.WritePath, loc.Layout).MergeConfig(ctx, p.name, patch)
}
