// Package oauthtest is an in-process memory server behind the MCP
// authorization model, for tests and local development: a protected
// resource that answers 401 with a Bearer challenge naming its protected
// resource metadata (RFC 9728), and an authorization server (a
// [honchotest.Server]) with metadata (RFC 8414), dynamic client
// registration (RFC 7591), PKCE, refresh token rotation and resource
// indicators required on every request (RFC 8707).
//
// Both listen on 127.0.0.1 on their own ports (two origins, as in
// production). The server never logs anything.
package oauthtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

// DefaultScope is the scope the resource asks for.
const DefaultScope = "memory"

// Server is a protected resource and its authorization server.
type Server struct {
	// AS is the authorization server.
	AS *honchotest.Server
	// URL is the protected resource, the MCP endpoint
	// (http://127.0.0.1:port/mcp): the URL a provider is configured with.
	URL string

	rs        *httptest.Server
	challenge bool
	scope     string
	mdHook    func(map[string]any)
	asOpts    []honchotest.Option

	mu    sync.Mutex // guards calls
	calls int
}

// Option configures a [Server].
type Option func(*Server)

// WithoutChallengeMetadata leaves resource_metadata out of the 401
// challenge, so a client must find the metadata at the well-known URL.
func WithoutChallengeMetadata() Option { return func(s *Server) { s.challenge = false } }

// WithMetadata lets f change the protected resource metadata document
// before it is served (to serve bad metadata).
func WithMetadata(f func(md map[string]any)) Option { return func(s *Server) { s.mdHook = f } }

// WithAuthServer adds options of the authorization server.
func WithAuthServer(opts ...honchotest.Option) Option {
	return func(s *Server) { s.asOpts = append(s.asOpts, opts...) }
}

// NewServer starts a Server configured by opts; close it with
// [Server.Close].
func NewServer(opts ...Option) *Server {
	s := &Server{challenge: true, scope: DefaultScope}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	s.rs = httptest.NewServer(mux)
	s.URL = s.rs.URL + "/mcp"
	asOpts := append([]honchotest.Option{
		honchotest.WithDynamicRegistration(),
		honchotest.WithResource(s.URL),
		honchotest.WithDefaultScope(s.scope),
		honchotest.WithAccessTokenPrefix("mcp-at-"),
		honchotest.WithRefreshTokenPrefix("mcp-rt-"),
	}, s.asOpts...)
	s.AS = honchotest.NewServer(asOpts...)
	mux.HandleFunc("/mcp", s.handleResource)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", s.handleMetadata)
	return s
}

// MetadataURL is the protected resource metadata document.
func (s *Server) MetadataURL() string {
	return s.rs.URL + "/.well-known/oauth-protected-resource/mcp"
}

// Close stops both servers.
func (s *Server) Close() {
	s.rs.Close()
	s.AS.Close()
}

// Calls counts the resource requests answered 200.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	md := map[string]any{
		"resource":                 s.URL,
		"authorization_servers":    []string{s.AS.URL},
		"scopes_supported":         []string{s.scope},
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "oauthtest memory",
	}
	if s.mdHook != nil {
		s.mdHook(md)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(md)
}

// handleResource answers an MCP request: 200 with an empty JSON-RPC result
// for an active access token (or an API key the authorization server
// knows), else 401 with the Bearer challenge.
func (s *Server) handleResource(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || !s.valid(r, strings.TrimSpace(tok)) {
		ch := `Bearer scope="` + s.scope + `"`
		if s.challenge {
			ch = `Bearer resource_metadata="` + s.MetadataURL() + `", scope="` + s.scope + `"`
		}
		if tok != "" {
			ch += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", ch)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token"}`))
		return
	}
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":0,"result":{}}`))
}

// valid asks the authorization server's protected resource whether tok is
// an active access token or a known API key.
func (s *Server) valid(r *http.Request, tok string) bool {
	if tok == "" {
		return false
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.AS.WhoAmIURL(), nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.AS.Client().Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
