package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/outbound"
)

// grantTypeDeviceCode is the grant type of the device flow (RFC 8628
// section 3.4), as listed in grant_types_supported (RFC 8414).
const grantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// maxMetadataBytes bounds a metadata document.
const maxMetadataBytes = 1 << 20

// Metadata is authorization server metadata (RFC 8414 section 2), as also
// served at an OpenID Connect discovery document.
type Metadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                          string   `json:"token_endpoint,omitempty"`
	RevocationEndpoint                     string   `json:"revocation_endpoint,omitempty"`
	DeviceAuthorizationEndpoint            string   `json:"device_authorization_endpoint,omitempty"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint,omitempty"`
	RegistrationEndpoint                   string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                        []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                 []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported                    []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	// ClientIDMetadataDocumentSupported announces that a client may use
	// the URL of its metadata document as its client_id (OAuth Client ID
	// Metadata Document, as the MCP specification uses it).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
	// AuthorizationResponseIssParameterSupported announces that every
	// authorization response carries "iss" (RFC 9207 section 3).
	AuthorizationResponseIssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// Discover fetches the metadata of issuer: first the RFC 8414 document
// (section 3.1: "/.well-known/oauth-authorization-server" inserted before
// the issuer's path; also appended after it, as many servers with a path
// publish it), then the OpenID Connect discovery document
// ("<issuer>/.well-known/openid-configuration"). The first that parses is
// returned; its issuer must equal the requested one (RFC 8414 section 3.3),
// else Discover fails rather than trust it. It must name a token endpoint,
// and every endpoint it names must be an https URL (http on a loopback
// host only); otherwise Discover fails, naming the document. Documents are
// limited to 1 MiB.
//
// issuer must be an https URL without query or fragment; http is accepted
// for loopback hosts only (local development and tests). c nil means
// [http.DefaultClient]; a redirect is followed only to the same https
// origin, three at most. Each document has [StepTimeout] (a shorter
// deadline of ctx wins). A server at fault is an [*UpstreamError].
func Discover(ctx context.Context, c *http.Client, issuer string) (*Metadata, error) {
	c = outbound.Metadata(c)
	issuer = strings.TrimRight(issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil || !secureURL(u) || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("oauth: discovery: issuer %q is not an https URL", issuer)
	}
	root := u.Scheme + "://" + u.Host
	candidates := []string{root + "/.well-known/oauth-authorization-server" + u.EscapedPath()}
	if u.Path != "" {
		candidates = append(candidates, issuer+"/.well-known/oauth-authorization-server")
	}
	candidates = append(candidates, issuer+"/.well-known/openid-configuration")

	var errs []error
	for _, loc := range candidates {
		md, err := fetchMetadata(ctx, c, loc)
		if err != nil {
			if ctx.Err() != nil || outbound.TimedOut(err) {
				return nil, upstream(StepServerMetadata, loc, err)
			}
			errs = append(errs, err)
			continue
		}
		if strings.TrimRight(md.Issuer, "/") != issuer {
			return nil, upstream(StepServerMetadata, loc, fmt.Errorf("the document names issuer %q, not %q (RFC 8414 section 3.3)", md.Issuer, issuer))
		}
		if err := md.check(); err != nil {
			return nil, upstream(StepServerMetadata, loc, err)
		}
		return md, nil
	}
	return nil, upstream(StepServerMetadata, issuer, fmt.Errorf("found no metadata document (RFC 8414 or OpenID discovery): %w", joinCauses(errs)))
}

// check reports what makes the metadata unusable: no token endpoint, or an
// endpoint that is not an https URL (http only on a loopback host).
func (m *Metadata) check() error {
	if m.TokenEndpoint == "" {
		return errors.New("the metadata name no token_endpoint")
	}
	for _, ep := range []struct{ name, url string }{
		{"authorization_endpoint", m.AuthorizationEndpoint},
		{"token_endpoint", m.TokenEndpoint},
		{"revocation_endpoint", m.RevocationEndpoint},
		{"device_authorization_endpoint", m.DeviceAuthorizationEndpoint},
		{"introspection_endpoint", m.IntrospectionEndpoint},
		{"registration_endpoint", m.RegistrationEndpoint},
	} {
		if ep.url == "" {
			continue
		}
		u, err := url.Parse(ep.url)
		if err != nil || u.Fragment != "" || !secureURL(u) {
			return fmt.Errorf("its %s %q is not an https URL", ep.name, ep.url)
		}
	}
	return nil
}

// fetchMetadata GETs and decodes one metadata document.
func fetchMetadata(ctx context.Context, c *http.Client, loc string) (*Metadata, error) {
	var md Metadata
	if err := getJSON(ctx, c, loc, &md); err != nil {
		return nil, err
	}
	return &md, nil
}

// SupportsDeviceFlow reports whether the metadata announce the device flow:
// a device_authorization_endpoint and the device_code grant type in
// grant_types_supported (RFC 8628 section 4). It fails closed: anything
// missing, or nil metadata, means unsupported (RFC 8414's default
// grant_types_supported has no device grant).
func (m *Metadata) SupportsDeviceFlow() bool {
	return m != nil && m.DeviceAuthorizationEndpoint != "" &&
		slices.Contains(m.GrantTypesSupported, grantTypeDeviceCode)
}

// Fill sets the endpoints of e that are empty (AuthURL, TokenURL, and
// DeviceAuthURL when [Metadata.SupportsDeviceFlow]) and *revocation when
// revocation is not nil and empty, from the metadata. Configured values win.
// A nil Metadata fills nothing.
func (m *Metadata) Fill(e *oauth2.Endpoint, revocation *string) {
	if m == nil {
		return
	}
	if e != nil {
		if e.AuthURL == "" {
			e.AuthURL = m.AuthorizationEndpoint
		}
		if e.TokenURL == "" {
			e.TokenURL = m.TokenEndpoint
		}
		if e.DeviceAuthURL == "" && m.SupportsDeviceFlow() {
			e.DeviceAuthURL = m.DeviceAuthorizationEndpoint
		}
	}
	if revocation != nil && *revocation == "" {
		*revocation = m.RevocationEndpoint
	}
}
