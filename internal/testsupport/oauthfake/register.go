package oauthfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// WithDynamicRegistration enables dynamic client registration (RFC 7591)
// at [Server.RegistrationURL], announced in the metadata. A registered
// client is a public client ("none") whose redirect URIs are the ones it
// registered; a loopback redirect URI matches on any port (RFC 8252
// section 7.3).
func WithDynamicRegistration() Option {
	return func(s *Server) { s.dcr = true }
}

// WithRedirectURIRule makes dynamic registration refuse, with 400
// invalid_redirect_uri, a client any of whose redirect URIs accept
// refuses: a server whose allow-list needs a loopback port (as FastMCP's
// default, "http://127.0.0.1:*"), or one that takes only the port-less form
// (RFC 8252 section 7.3).
func WithRedirectURIRule(accept func(redirectURI string) bool) Option {
	return func(s *Server) { s.redirectRule = accept }
}

// RegisteredRedirectURIs returns the redirect_uris of every registration
// asked for, in order, those refused included.
func (s *Server) RegisteredRedirectURIs() [][]string {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return slices.Clone(s.asked)
}

// WithResource makes the server a resource-indicator server (RFC 8707) for
// the resource uri: every authorization request and token request (code,
// refresh and device grants) must carry resource=uri, else it is refused
// with invalid_target.
func WithResource(uri string) Option {
	return func(s *Server) { s.resource = uri }
}

// WithClientIDMetadataDocuments makes the server take Client ID Metadata
// Documents, as announced in its metadata
// (client_id_metadata_document_supported): a client_id that is an https
// URL names the client whose metadata document c fetches from it; its
// client_id must be that URL, and its redirect_uris are the client's.
// Documents are fetched once and kept.
func WithClientIDMetadataDocuments(c *http.Client) Option {
	return func(s *Server) { s.cimd = c }
}

// DocumentsFetched is the number of Client ID Metadata Documents fetched.
func (s *Server) DocumentsFetched() int {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return len(s.docs)
}

// documentedClient fetches (once) the Client ID Metadata Document at id and
// returns its redirect URIs.
func (s *Server) documentedClient(id string) ([]string, bool) {
	if s.cimd == nil || !strings.HasPrefix(id, "https://") {
		return nil, false
	}
	s.regMu.Lock()
	uris, ok := s.docs[id]
	s.regMu.Unlock()
	if ok {
		return uris, true
	}
	resp, err := s.cimd.Get(id)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var doc struct {
		ClientID     string   `json:"client_id"`
		RedirectURIs []string `json:"redirect_uris"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc) != nil ||
		doc.ClientID != id || len(doc.RedirectURIs) == 0 || doc.AuthMethod != "none" {
		return nil, false
	}
	s.regMu.Lock()
	if s.docs == nil {
		s.docs = make(map[string][]string)
	}
	s.docs[id] = doc.RedirectURIs
	s.regMu.Unlock()
	return doc.RedirectURIs, true
}

// RegistrationURL is the dynamic client registration endpoint.
func (s *Server) RegistrationURL() string { return s.URL + "/oauth/register" }

// Registrations is the number of clients registered dynamically so far.
func (s *Server) Registrations() int {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return s.registered
}

// ForgetClients drops every dynamically registered client, as a server
// that lost or expired its registrations does: their requests then get
// invalid_client, and their grants stop refreshing.
func (s *Server) ForgetClients() {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.dynamic = nil
}

// clientName is the name client id registered with, or its id when it
// gave none (a person recognizes the name, not "dyn-7QK...").
func (s *Server) clientName(id string) string {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if n := s.names[id]; n != "" {
		return n
	}
	return id
}

// dynamicClient reports whether id is a registered dynamic client, and its
// redirect URIs.
func (s *Server) dynamicClient(id string) ([]string, bool) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	uris, ok := s.dynamic[id]
	return uris, ok
}

// redirectOK reports whether redirectURI is one of the URIs a dynamic or
// documented client registered, any port matching for a loopback URI
// (RFC 8252 section 7.3). Clients of [WithClientID] may use any http
// loopback redirect URI.
func (s *Server) redirectOK(clientID, redirectURI string) bool {
	uris, ok := s.dynamicClient(clientID)
	if !ok {
		uris, ok = s.documentedClient(clientID)
	}
	if !ok {
		return validRedirectURI(redirectURI)
	}
	want, err := url.Parse(redirectURI)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(uris, func(r string) bool {
		u, err := url.Parse(r)
		return err == nil && u.Scheme == want.Scheme && u.Hostname() == want.Hostname() && u.Path == want.Path && u.RawQuery == want.RawQuery
	})
}

// handleRegister is the registration endpoint (RFC 7591 section 3).
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var md struct {
		RedirectURIs            []string `json:"redirect_uris"`
		ClientName              string   `json:"client_name"`
		TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
		GrantTypes              []string `json:"grant_types"`
		Scope                   string   `json:"scope"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
	if err != nil || json.Unmarshal(body, &md) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client_metadata", "error_description": "the body is not a JSON client metadata object"})
		return
	}
	s.regMu.Lock()
	s.asked = append(s.asked, slices.Clone(md.RedirectURIs))
	s.regMu.Unlock()
	if len(md.RedirectURIs) == 0 || slices.ContainsFunc(md.RedirectURIs, func(u string) bool {
		return !validRedirectURI(u) || (s.redirectRule != nil && !s.redirectRule(u))
	}) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_redirect_uri", "error_description": "redirect_uris must be http loopback addresses"})
		return
	}
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = "none"
	}
	if md.TokenEndpointAuthMethod != "none" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client_metadata", "error_description": "only public clients (none) are registered here"})
		return
	}
	id := "dyn-" + randomString()
	s.regMu.Lock()
	if s.dynamic == nil {
		s.dynamic = make(map[string][]string)
	}
	s.dynamic[id] = slices.Clone(md.RedirectURIs)
	if md.ClientName != "" {
		if s.names == nil {
			s.names = make(map[string]string)
		}
		s.names[id] = md.ClientName
	}
	s.registered++
	s.regMu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"client_id":                  id,
		"client_id_issued_at":        s.now().Unix(),
		"client_name":                md.ClientName,
		"redirect_uris":              md.RedirectURIs,
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      md.Scope,
	})
}

// errInvalidTarget is the answer to a request without the server's
// resource (RFC 8707 section 2).
func (s *Server) errInvalidTarget() *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_target", "resource must be " + s.resource}
}
