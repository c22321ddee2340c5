package oauthfake

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/memconnect/memconnect/internal/testsupport/memnet"
)

// MCPScope is the scope an [MCPServer]'s resource asks for.
const MCPScope = "memory"

// MCPServer is a memory server behind the MCP authorization model: a
// protected resource that answers 401 with a Bearer challenge naming its
// protected resource metadata (RFC 9728), and its authorization server (a
// [Server]) with dynamic client registration (RFC 7591) and resource
// indicators required on every request (RFC 8707). The two listen on
// 127.0.0.1 on their own ports: two origins, as in production.
type MCPServer struct {
	// AS is the authorization server.
	AS *Server
	// URL is the protected resource, the MCP endpoint
	// (http://127.0.0.1:port/mcp): the URL a provider is configured with.
	URL string

	rs        *httptest.Server
	challenge bool
	scope     string
	mdHook    func(map[string]any)
	asOpts    []Option
	network   *memnet.Network // [WithMCPNetwork]; nil: sockets

	mu    sync.Mutex // guards calls
	calls int
}

// MCPOption configures an [MCPServer].
type MCPOption func(*MCPServer)

// WithoutChallengeMetadata leaves resource_metadata out of the 401
// challenge, so a client must find the metadata at the well-known URL.
func WithoutChallengeMetadata() MCPOption { return func(s *MCPServer) { s.challenge = false } }

// WithMetadata lets f change the protected resource metadata document
// before it is served (to serve bad metadata).
func WithMetadata(f func(md map[string]any)) MCPOption { return func(s *MCPServer) { s.mdHook = f } }

// WithMCPNetwork serves the memory server and its authorization server on
// n, a network in memory ([WithNetwork]).
func WithMCPNetwork(n *memnet.Network) MCPOption { return func(s *MCPServer) { s.network = n } }

// WithAuthServer adds options of the authorization server.
func WithAuthServer(opts ...Option) MCPOption {
	return func(s *MCPServer) { s.asOpts = append(s.asOpts, opts...) }
}

// NewMCPServer starts an MCPServer configured by opts; close it with
// [MCPServer.Close].
func NewMCPServer(opts ...MCPOption) *MCPServer {
	s := &MCPServer{challenge: true, scope: MCPScope}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	s.rs = httptest.NewUnstartedServer(mux)
	if s.network != nil {
		s.network.Serve(s.rs)
		s.asOpts = append(s.asOpts, WithNetwork(s.network))
	}
	s.rs.Start()
	s.URL = s.rs.URL + "/mcp"
	asOpts := append([]Option{
		WithDynamicRegistration(),
		WithResource(s.URL),
		WithDefaultScope(s.scope),
		WithAccessTokenPrefix("mcp-at-"),
		WithRefreshTokenPrefix("mcp-rt-"),
	}, s.asOpts...)
	s.AS = NewServer(asOpts...)
	mux.HandleFunc("/mcp", s.handleResource)
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", s.handleResourceMetadata)
	return s
}

// MetadataURL is the protected resource metadata document.
func (s *MCPServer) MetadataURL() string {
	return s.rs.URL + "/.well-known/oauth-protected-resource/mcp"
}

// Close stops both servers.
func (s *MCPServer) Close() {
	s.rs.Close()
	s.AS.Close()
}

// Calls counts the resource requests answered 200.
func (s *MCPServer) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *MCPServer) handleResourceMetadata(w http.ResponseWriter, r *http.Request) {
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
func (s *MCPServer) handleResource(w http.ResponseWriter, r *http.Request) {
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
func (s *MCPServer) valid(r *http.Request, tok string) bool {
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
