package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/memconnect/memconnect/internal/outbound"
)

// ClientMetadata is a client's registration request (RFC 7591 section 2).
type ClientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
	// ApplicationType is "native" or "web" (OpenID Connect Dynamic Client
	// Registration section 2); [Register] sets "native" when it is empty
	// and every redirect URI is an http loopback URI.
	ApplicationType string `json:"application_type,omitempty"`
}

// ClientMetadataDocument is a Client ID Metadata Document: a client's
// metadata served at an https URL that is also its client_id, which an
// authorization server that announces client_id_metadata_document_supported
// fetches instead of a registration (as the MCP specification uses it).
type ClientMetadataDocument struct {
	ClientID string `json:"client_id"`
	ClientMetadata
}

// ClientInformation is a registered client (RFC 7591 section 3.2.1), as
// much of it as a public client keeps: no secret, no registration access
// token.
type ClientInformation struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// RegistrationError is a registration the server refused (RFC 7591
// section 3.2.2). It never holds a secret.
type RegistrationError struct {
	Endpoint         string
	StatusCode       int
	ErrorCode        string // such as invalid_redirect_uri or invalid_client_metadata
	ErrorDescription string
}

func (e *RegistrationError) Error() string {
	s := fmt.Sprintf("oauth: client registration at %s failed: %d", e.Endpoint, e.StatusCode)
	if e.ErrorCode != "" {
		s += " " + e.ErrorCode
	}
	if e.ErrorDescription != "" {
		s += ": " + e.ErrorDescription
	}
	return s
}

// Register registers a client at the registration endpoint (RFC 7591
// section 3.1) and returns what the server issued. A client whose redirect
// URIs are all loopback is registered as a native application. It registers a public
// client: md.TokenEndpointAuthMethod empty means "none", and a server that
// registers anything else (a client with a secret) is refused, since a
// public client keeps no secret. Redirect URIs are required, and the
// server must have registered every one asked for. Errors name the
// endpoint: a server at fault is an [*UpstreamError], a refusal one that
// wraps a [*RegistrationError], and a client_id that is missing, not a
// string, blank, over 255 bytes or holding control or bidi characters is
// refused. The request has [StepTimeout] (a shorter deadline of ctx wins)
// and follows no redirect. c nil means [http.DefaultClient].
func Register(ctx context.Context, c *http.Client, endpoint string, md ClientMetadata) (*ClientInformation, error) {
	if u, err := url.Parse(endpoint); err != nil || !secureURL(u) {
		return nil, fmt.Errorf("oauth: client registration: endpoint %q is not an https URL", endpoint)
	}
	if len(md.RedirectURIs) == 0 {
		return nil, errors.New("oauth: client registration: no redirect URI")
	}
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = "none"
	}
	if md.ApplicationType == "" && !slices.ContainsFunc(md.RedirectURIs, func(r string) bool { return !loopbackRedirect(r) }) {
		// A native client, so that the server accepts the loopback
		// redirect on any port (RFC 8252 section 7.3), as a fallback
		// port needs.
		md.ApplicationType = "native"
	}
	c = outbound.Secret(c)
	ctx, cancel := outbound.Step(ctx)
	defer cancel()
	body, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("oauth: client registration: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("oauth: client registration: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, upstream(StepRegistration, endpoint, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, upstream(StepRegistration, endpoint, err)
	}
	if len(answer) > maxMetadataBytes {
		return nil, upstream(StepRegistration, endpoint, fmt.Errorf("the answer is larger than %d bytes", maxMetadataBytes))
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		re := &RegistrationError{Endpoint: endpoint, StatusCode: resp.StatusCode}
		re.ErrorCode, re.ErrorDescription = errorBody(answer)
		return nil, upstream(StepRegistration, endpoint, re)
	}
	var raw struct {
		ClientID json.RawMessage `json:"client_id"`
	}
	var ci ClientInformation
	if err := json.Unmarshal(answer, &raw); err != nil {
		return nil, upstream(StepRegistration, endpoint, fmt.Errorf("the answer is not client information: %w", err))
	}
	if err := checkClientID(raw.ClientID); err != nil {
		return nil, upstream(StepRegistration, endpoint, err)
	}
	if err := json.Unmarshal(answer, &ci); err != nil {
		return nil, upstream(StepRegistration, endpoint, fmt.Errorf("the answer is not client information: %w", err))
	}
	if ci.TokenEndpointAuthMethod != "" && ci.TokenEndpointAuthMethod != md.TokenEndpointAuthMethod {
		return nil, upstream(StepRegistration, endpoint, fmt.Errorf("the server registered token_endpoint_auth_method %q, not %q; memconnect signs in as a public client",
			ci.TokenEndpointAuthMethod, md.TokenEndpointAuthMethod))
	}
	if len(ci.RedirectURIs) == 0 {
		ci.RedirectURIs = slices.Clone(md.RedirectURIs)
	}
	for _, r := range md.RedirectURIs {
		if !slices.Contains(ci.RedirectURIs, r) {
			return nil, upstream(StepRegistration, endpoint, fmt.Errorf("the server did not register the redirect URI %q", r))
		}
	}
	return &ci, nil
}

// loopbackRedirect reports whether r is an http URI of a loopback IP
// literal (RFC 8252 section 7.3).
func loopbackRedirect(r string) bool {
	u, err := url.Parse(r)
	if err != nil || u.Scheme != "http" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// maxClientIDLen bounds a registered client_id.
const maxClientIDLen = 255

// checkClientID reports what makes a registration answer's client_id
// unusable: missing, not a string, empty or blank, longer than
// maxClientIDLen bytes, or holding a control, format (bidi) or
// non-character code point.
func checkClientID(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return errors.New("the answer names no client_id")
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return errors.New("the answer's client_id is not a string")
	}
	switch {
	case strings.TrimSpace(id) == "":
		return errors.New("the answer's client_id is empty")
	case len(id) > maxClientIDLen:
		return fmt.Errorf("the answer's client_id is longer than %d bytes", maxClientIDLen)
	case !utf8.ValidString(id):
		return errors.New("the answer's client_id is not valid UTF-8")
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return fmt.Errorf("the answer's client_id holds the character %U, which a client id may not", r)
		}
	}
	return nil
}
