package oauthfake

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       []Option
		wantDevice bool
	}{
		{"device flow enabled", nil, true},
		{"device flow disabled", []Option{WithDeviceFlow(false)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, tt.opts...)
			if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
				t.Errorf("URL = %q, want http://127.0.0.1:port", s.URL)
			}
			resp, body := get(t, s, s.MetadataURL(), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var m struct {
				Issuer              string   `json:"issuer"`
				Authorization       string   `json:"authorization_endpoint"`
				Token               string   `json:"token_endpoint"`
				Revocation          string   `json:"revocation_endpoint"`
				Introspection       string   `json:"introspection_endpoint"`
				Device              *string  `json:"device_authorization_endpoint"`
				GrantTypes          []string `json:"grant_types_supported"`
				ChallengeMethods    []string `json:"code_challenge_methods_supported"`
				TokenEndpointAuth   []string `json:"token_endpoint_auth_methods_supported"`
				ResponseTypes       []string `json:"response_types_supported"`
				ScopesSupportedSome []string `json:"scopes_supported"`
			}
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatal(err)
			}
			checks := []struct{ field, got, want string }{
				{"issuer", m.Issuer, s.URL},
				{"authorization_endpoint", m.Authorization, s.URL + "/authorize"},
				{"token_endpoint", m.Token, s.URL + "/oauth/token"},
				{"revocation_endpoint", m.Revocation, s.URL + "/oauth/revoke"},
				{"introspection_endpoint", m.Introspection, s.URL + "/oauth/introspect"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
				}
			}
			wantGrants := []string{"authorization_code", "refresh_token"}
			if tt.wantDevice {
				wantGrants = append(wantGrants, DeviceCodeGrantType)
				if m.Device == nil || *m.Device != s.URL+"/oauth/device_authorization" {
					t.Errorf("device_authorization_endpoint = %v, want %s", m.Device, s.DeviceAuthURL())
				}
			} else if m.Device != nil {
				t.Errorf("device_authorization_endpoint = %q, want absent", *m.Device)
			}
			if !slices.Equal(m.GrantTypes, wantGrants) {
				t.Errorf("grant_types_supported = %v, want %v", m.GrantTypes, wantGrants)
			}
			if !slices.Equal(m.ChallengeMethods, []string{"S256"}) || !slices.Equal(m.TokenEndpointAuth, []string{"none"}) || !slices.Equal(m.ResponseTypes, []string{"code"}) {
				t.Errorf("methods: challenge %v, auth %v, response types %v", m.ChallengeMethods, m.TokenEndpointAuth, m.ResponseTypes)
			}
		})
	}
}

func TestURLs(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for got, want := range map[string]string{
		s.AuthorizeURL():          "/authorize",
		s.TokenURL():              "/oauth/token",
		s.RevocationURL():         "/oauth/revoke",
		s.DeviceAuthURL():         "/oauth/device_authorization",
		s.IntrospectionURL():      "/oauth/introspect",
		s.MetadataURL():           "/.well-known/oauth-authorization-server",
		s.DeviceVerificationURL(): "/device",
		s.WhoAmIURL():             "/api/whoami",
	} {
		if got != s.URL+want {
			t.Errorf("got %q, want %q", got, s.URL+want)
		}
	}
	e := s.Endpoint()
	if e.AuthURL != s.AuthorizeURL() || e.TokenURL != s.TokenURL() || e.DeviceAuthURL != s.DeviceAuthURL() {
		t.Errorf("Endpoint = %+v", e)
	}
}

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	clk := testkit.NewClock()
	s := newTestServer(t, WithClock(clk))
	old := s.IssueGrant("write")
	clk.Advance(DefaultAccessTokenTTL)
	live := s.IssueGrant("read write")
	revoked := s.IssueGrant("")
	s.RevokeGrant(revoked.RefreshToken)

	tests := []struct {
		name       string
		header     string
		wantStatus int
		wantError  string // in WWW-Authenticate
	}{
		{"valid", "Bearer " + live.AccessToken, http.StatusOK, ""},
		{"lowercase scheme", "bearer " + live.AccessToken, http.StatusOK, ""},
		{"no header", "", http.StatusUnauthorized, ""},
		{"basic", "Basic " + live.AccessToken, http.StatusUnauthorized, ""},
		{"refresh token", "Bearer " + live.RefreshToken, http.StatusUnauthorized, "invalid_token"},
		{"expired", "Bearer " + old.AccessToken, http.StatusUnauthorized, "invalid_token"},
		{"revoked", "Bearer " + revoked.AccessToken, http.StatusUnauthorized, "invalid_token"},
		{"unknown", "Bearer test-at-nope", http.StatusUnauthorized, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			resp, body := get(t, s, s.WhoAmIURL(), h)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				var who map[string]string
				if err := json.Unmarshal([]byte(body), &who); err != nil || who["client_id"] != DefaultClientID || who["scope"] != "read write" {
					t.Errorf("body = %s (%v)", body, err)
				}
				return
			}
			ch := resp.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, "Bearer ") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", ch)
			}
			if tt.wantError != "" && !strings.Contains(ch, `error="`+tt.wantError+`"`) {
				t.Errorf("WWW-Authenticate = %q, want error=%q", ch, tt.wantError)
			}
		})
	}
}

func TestOptionsIgnoreNonsense(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithClientID(""), WithAccessTokenTTL(-time.Second), WithDeviceInterval(0),
		WithDeviceCodeTTL(0), WithClock(nil), WithRefreshTokenTTL(-time.Hour))
	if s.ClientID() != DefaultClientID {
		t.Errorf("ClientID = %q, want %q", s.ClientID(), DefaultClientID)
	}
	tok := s.IssueGrant("")
	if tok.ExpiresIn != 3600 || !s.Active(tok.RefreshToken) {
		t.Errorf("defaults not kept: expires_in %d", tok.ExpiresIn)
	}
}

func TestGrantConfigMustBeJSON(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("NewServer accepted a config that is not JSON")
		}
	}()
	s := NewServer(WithGrantConfig(map[string]any{"f": func() {}}))
	s.Close()
}

// TestInMemoryNetwork: a server on in-memory connections answers its own
// client and nothing else; inside a synctest bubble, the x/oauth2 device
// poll's whole-second interval passes at once (TestDeviceFlowApproved).
func TestInMemoryNetwork(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, WithInMemoryNetwork())
	resp, err := s.Client().Get(s.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatalf("the server's client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want a loopback one", s.URL)
	}
	other := &http.Client{Timeout: 5 * time.Second}
	if resp, err := other.Get(s.URL + "/.well-known/oauth-authorization-server"); err == nil {
		resp.Body.Close()
		t.Errorf("another client reached the in-memory server: %d", resp.StatusCode)
	}
}
