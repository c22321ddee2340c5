package authserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/oauth/authserver"
)

func TestDiscoverRFC8414(t *testing.T) {
	t.Parallel()
	srv := honchofake.NewServer()
	defer srv.Close()
	md, err := authserver.Discover(context.Background(), srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	want := authserver.Metadata{
		Issuer:                      srv.URL,
		AuthorizationEndpoint:       srv.AuthorizeURL(),
		TokenEndpoint:               srv.TokenURL(),
		RevocationEndpoint:          srv.RevocationURL(),
		DeviceAuthorizationEndpoint: srv.DeviceAuthURL(),
	}
	if md.Issuer != want.Issuer || md.AuthorizationEndpoint != want.AuthorizationEndpoint ||
		md.TokenEndpoint != want.TokenEndpoint || md.RevocationEndpoint != want.RevocationEndpoint ||
		md.DeviceAuthorizationEndpoint != want.DeviceAuthorizationEndpoint {
		t.Errorf("metadata = %+v, want endpoints %+v", md, want)
	}
	if !md.SupportsDeviceFlow() {
		t.Errorf("SupportsDeviceFlow = false for a server announcing %v", md.GrantTypesSupported)
	}
}

// fakeIssuer serves only the documents in docs (path -> body; a body of
// "{issuer}" is replaced by the server's URL) and records what was asked.
type fakeIssuer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newFakeIssuer(t *testing.T, docs map[string]string) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.paths = append(f.paths, r.URL.Path)
		f.mu.Unlock()
		body, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(strings.ReplaceAll(body, "{issuer}", f.URL)))
	}))
	t.Cleanup(f.Close)
	return f
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	const oidc = `{"issuer":"{issuer}","authorization_endpoint":"{issuer}/oidc/auth","token_endpoint":"{issuer}/oidc/token","revocation_endpoint":"{issuer}/oidc/revoke","grant_types_supported":["authorization_code"]}`
	tests := []struct {
		name      string
		issuerSfx string // appended to the server URL
		docs      map[string]string
		wantToken string // suffix of token_endpoint; "" = want an error
		wantErr   string
	}{
		{"openid-configuration only", "", map[string]string{"/.well-known/openid-configuration": oidc}, "/oidc/token", ""},
		{"RFC 8414 wins over openid", "", map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"{issuer}","token_endpoint":"{issuer}/as/token"}`,
			"/.well-known/openid-configuration":       oidc,
		}, "/as/token", ""},
		{"issuer with a path, RFC 8414 insertion", "/tenant", map[string]string{
			"/.well-known/oauth-authorization-server/tenant": `{"issuer":"{issuer}/tenant","token_endpoint":"{issuer}/tenant/token"}`,
		}, "/tenant/token", ""},
		{"issuer with a path, openid appended", "/tenant", map[string]string{
			"/tenant/.well-known/openid-configuration": `{"issuer":"{issuer}/tenant","token_endpoint":"{issuer}/tenant/t"}`,
		}, "/tenant/t", ""},
		{"skips an HTML page", "", map[string]string{
			"/.well-known/oauth-authorization-server": `<html>app shell</html>`,
			"/.well-known/openid-configuration":       oidc,
		}, "/oidc/token", ""},
		{"issuer mismatch", "", map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"https://evil.example","token_endpoint":"https://evil.example/token"}`,
		}, "", "names issuer"},
		{"nothing there", "", map[string]string{}, "", "404"},
		{"no token endpoint", "", map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"{issuer}","authorization_endpoint":"{issuer}/auth"}`,
		}, "", "oauth-authorization-server: the metadata name no token_endpoint"},
		{"an http endpoint off loopback", "", map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"{issuer}","token_endpoint":"http://as.example/token"}`,
		}, "", `its token_endpoint "http://as.example/token" is not an https URL`},
		{"a relative endpoint", "", map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"{issuer}","token_endpoint":"{issuer}/t","revocation_endpoint":"/revoke"}`,
		}, "", `its revocation_endpoint "/revoke" is not an https URL`},
		{"not JSON anywhere", "", map[string]string{
			"/.well-known/oauth-authorization-server": `<html>app shell</html>`,
			"/.well-known/openid-configuration":       `[1, 2`,
		}, "", "not a metadata document"},
		{"too large", "", map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"{issuer}","x":"` + strings.Repeat("a", 1<<20) + `"}`,
		}, "", "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIssuer(t, tc.docs)
			md, err := authserver.Discover(context.Background(), f.Client(), f.URL+tc.issuerSfx)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Discover = %+v, %v; want an error containing %q", md, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if md.TokenEndpoint != f.URL+tc.wantToken {
				t.Errorf("token endpoint = %q, want %q", md.TokenEndpoint, f.URL+tc.wantToken)
			}
		})
	}
}

func TestDiscoverRejectsIssuer(t *testing.T) {
	t.Parallel()
	for _, issuer := range []string{"http://auth.example.com", "ftp://127.0.0.1", "https://as.example/?x=1", "https://as.example/#f", "not a url", ""} {
		if _, err := authserver.Discover(context.Background(), nil, issuer); err == nil {
			t.Errorf("Discover(%q) succeeded", issuer)
		}
	}
}

func TestSupportsDeviceFlow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		md   *authserver.Metadata
		want bool
	}{
		{"nil", nil, false},
		{"grant listed, endpoint present", &authserver.Metadata{DeviceAuthorizationEndpoint: "https://as/device", GrantTypesSupported: []string{"authorization_code", "urn:ietf:params:oauth:grant-type:device_code"}}, true},
		{"grant types absent (RFC 8414 default)", &authserver.Metadata{DeviceAuthorizationEndpoint: "https://as/device"}, false},
		{"grant not listed", &authserver.Metadata{DeviceAuthorizationEndpoint: "https://as/device", GrantTypesSupported: []string{"authorization_code"}}, false},
		{"no endpoint", &authserver.Metadata{GrantTypesSupported: []string{"urn:ietf:params:oauth:grant-type:device_code"}}, false},
	}
	for _, tc := range tests {
		if got := tc.md.SupportsDeviceFlow(); got != tc.want {
			t.Errorf("%s: SupportsDeviceFlow = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMetadataFill(t *testing.T) {
	t.Parallel()
	md := &authserver.Metadata{
		AuthorizationEndpoint:       "https://as/authorize",
		TokenEndpoint:               "https://as/token",
		RevocationEndpoint:          "https://as/revoke",
		DeviceAuthorizationEndpoint: "https://as/device",
		GrantTypesSupported:         []string{"urn:ietf:params:oauth:grant-type:device_code"},
	}
	e := oauth2.Endpoint{TokenURL: "https://configured/token"}
	var revocation string
	md.Fill(&e, &revocation)
	want := oauth2.Endpoint{AuthURL: "https://as/authorize", TokenURL: "https://configured/token", DeviceAuthURL: "https://as/device"}
	if e != want || revocation != "https://as/revoke" {
		t.Errorf("Fill = %+v, %q; want %+v, %q", e, revocation, want, "https://as/revoke")
	}
	configured := "https://configured/revoke"
	md.Fill(nil, &configured)
	if configured != "https://configured/revoke" {
		t.Errorf("Fill overwrote a configured revocation endpoint")
	}
	var nilMD *authserver.Metadata
	nilMD.Fill(&e, &revocation) // must not panic

	noDevice := &authserver.Metadata{DeviceAuthorizationEndpoint: "https://as/device"}
	var e2 oauth2.Endpoint
	noDevice.Fill(&e2, nil)
	if e2.DeviceAuthURL != "" {
		t.Errorf("Fill set a device endpoint the metadata do not announce as supported")
	}
}

func TestMetadataJSONNames(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(authserver.Metadata{Issuer: "i", DeviceAuthorizationEndpoint: "d", GrantTypesSupported: []string{"g"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"issuer":"i"`, `"device_authorization_endpoint":"d"`, `"grant_types_supported":["g"]`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
}
