package provider

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
)

// discovered is a cached RFC 8414 metadata lookup (nil metadata: it
// failed, failures times in a row).
type discovered struct {
	md       *authserver.Metadata
	at       time.Time
	failures int
}

// Reuse of metadata lookups. A lookup that failed (a network blip) is not
// kept like one that succeeded, or the device flow would not be offered,
// and the "iss" check would be off, for as long: it is asked again after
// seconds, waiting twice as long after each failure in a row.
const (
	metadataTTL      = 10 * time.Minute // a lookup that succeeded
	metadataRetry    = 5 * time.Second  // after the first failure
	metadataMaxRetry = 2 * time.Minute  // the longest wait after failures
)

// fresh reports whether d may be reused at now.
func (d discovered) fresh(now time.Time) bool {
	if d.md != nil {
		return now.Sub(d.at) < metadataTTL
	}
	wait := metadataRetry << min(d.failures-1, 10)
	return now.Sub(d.at) < min(wait, metadataMaxRetry)
}

// metadata discovers the issuer's RFC 8414 metadata, reusing a lookup made
// within metadataTTL, or a failed one for a few seconds. It returns nil
// when discovery fails.
func (c *Connector) metadata(ctx context.Context, issuer string) *authserver.Metadata {
	if issuer == "" {
		return nil
	}
	now := c.now()
	c.mdMu.Lock()
	last, ok := c.md[issuer]
	if ok && last.fresh(now) {
		c.mdMu.Unlock()
		return last.md
	}
	c.mdMu.Unlock()
	md, err := authserver.Discover(ctx, c.httpClient(), issuer)
	d := discovered{md: md, at: now}
	if err != nil {
		c.Logger.Debug().Err(err).Str("issuer", issuer).Msg("metadata discovery failed")
		d.md, d.failures = nil, last.failures+1
	}
	c.mdMu.Lock()
	if c.md == nil {
		c.md = make(map[string]discovered)
	}
	c.md[issuer] = d
	c.mdMu.Unlock()
	return d.md
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
// a client for the redirect URIs the sign-in uses (signIn).
func (c *Connector) connectEndpoints(ctx context.Context, t target, signIn ClientRequest, device bool) (Endpoints, bool, error) {
	r, ok := t.provider.(Registrar)
	if !ok {
		return c.endpoints(ctx, t, device)
	}
	req := signIn
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

// signInClient is what the client of a sign-in of t is obtained for: the
// redirect URI it uses, and only that (see [ClientRequest]). lb is the
// reserved listener of a loopback sign-in.
func (c *Connector) signInClient(t target, req ConnectRequest, callbackURL string, lb *flow.Reservation) ClientRequest {
	switch {
	case req.Method == flow.MethodBrowser && req.Redirect == flow.RedirectCallback:
		cr := ClientRequest{RedirectURIs: []string{callbackURL}}
		if strings.HasPrefix(callbackURL, "https://") {
			cr.MetadataURL = strings.TrimSuffix(callbackURL, "/callback") + "/client-metadata"
		}
		return cr
	case lb != nil:
		portless := portlessLoopback(lb.RedirectURI())
		return ClientRequest{RedirectURIs: []string{lb.RedirectURI()}, FallbackRedirectURIs: []string{portless}}
	}
	addr := c.loopbackAddr(t)
	if addr == "" && c.Flows != nil {
		return ClientRequest{RedirectURIs: []string{c.Flows.LoopbackRedirectURI()}}
	}
	return ClientRequest{RedirectURIs: []string{portlessLoopback(flow.LoopbackRedirectURI(addr))}}
}

// portlessLoopback is loopback redirect URI u without its port.
func portlessLoopback(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	host := pu.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	pu.Host = host
	return pu.String()
}

// clientRequest is what t's client metadata document lists: every
// redirect URI a sign-in of t may use.
func (c *Connector) clientRequest(t target) ClientRequest {
	var req ClientRequest
	if cb := c.callbackURL(t); cb != "" {
		req.RedirectURIs = append(req.RedirectURIs, cb)
		if strings.HasPrefix(cb, "https://") {
			req.MetadataURL = strings.TrimSuffix(cb, "/callback") + "/client-metadata"
		}
	}
	if addr := c.loopbackAddr(t); addr != "" {
		req.RedirectURIs = append(req.RedirectURIs, flow.LoopbackRedirectURI(addr))
	} else if c.Flows != nil {
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
func (c *Connector) ClientMetadata(profileName, providerName string) (authserver.ClientMetadataDocument, error) {
	t, err := c.resolve(profileName, providerName)
	if err != nil {
		return authserver.ClientMetadataDocument{}, err
	}
	req := c.clientRequest(t)
	if _, ok := t.provider.(Registrar); !ok || req.MetadataURL == "" {
		return authserver.ClientMetadataDocument{}, fmt.Errorf("%w: %s has no client metadata document here (it needs an https callback base URL)", ErrUnsupported, t.provider.DisplayName())
	}
	return authserver.ClientMetadataDocument{
		ClientID: req.MetadataURL,
		ClientMetadata: authserver.ClientMetadata{
			RedirectURIs:            req.RedirectURIs,
			ClientName:              "memconnect",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: "none",
		},
	}, nil
}
