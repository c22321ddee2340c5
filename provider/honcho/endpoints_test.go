package honcho_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

func TestIsLoopbackURL(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"http://localhost:8000", true},
		{"http://LOCALHOST:8000/", true},
		{"http://localhost.:8000", true},
		{"http://api.localhost:8000", true},
		{"http://127.0.0.1:8000", true},
		{"http://127.1.2.3", true},
		{"http://[::1]:8000", true},
		{"https://localhost.evil.example", false},
		{"https://evil.example/localhost", false},
		{"https://localhost@evil.example", false},
		{"https://evil.example?host=127.0.0.1", false},
		{"http://127.0.0.1.evil.example", false},
		{"http://128.0.0.1", false},
		{"https://api.honcho.dev", false},
		{"localhost:8000", false},
		{"", false},
		{"::", false},
	}
	for _, tt := range tests {
		if got := honcho.IsLoopbackURL(tt.in); got != tt.want {
			t.Errorf("IsLoopbackURL(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		name          string
		config        map[string]any // nil: no file
		opts          []honcho.Option
		wantAuthorize string
		wantToken     string
		wantDevice    string
		wantIssuer    string
	}{
		{"cloud without a file", nil, nil,
			honcho.CloudAuthorizeURL, honcho.CloudTokenURL, "https://api.honcho.dev/oauth/device_authorization", "https://api.honcho.dev"},
		{"cloud with production", map[string]any{"environment": "production"}, nil,
			honcho.CloudAuthorizeURL, honcho.CloudTokenURL, "https://api.honcho.dev/oauth/device_authorization", "https://api.honcho.dev"},
		{"environment local", map[string]any{"environment": "local"}, nil,
			honcho.LocalAuthorizeURL, honcho.LocalTokenURL, "http://localhost:8000/oauth/device_authorization", "http://localhost:8000"},
		{"baseUrl on 127.0.0.1", map[string]any{"baseUrl": "http://127.0.0.1:8000"}, nil,
			honcho.LocalAuthorizeURL, honcho.LocalTokenURL, "http://localhost:8000/oauth/device_authorization", "http://localhost:8000"},
		{"baseUrl on ::1", map[string]any{"baseUrl": "http://[::1]:8000"}, nil,
			honcho.LocalAuthorizeURL, honcho.LocalTokenURL, "http://localhost:8000/oauth/device_authorization", "http://localhost:8000"},
		{"lookalike host is self-hosted, not local", map[string]any{"baseUrl": "https://localhost.evil.example"}, nil,
			honcho.CloudAuthorizeURL, "https://localhost.evil.example/oauth/token", "https://localhost.evil.example/oauth/device_authorization", "https://localhost.evil.example"},
		{"self-hosted", map[string]any{"baseUrl": "https://honcho.example.com/v2/"}, nil,
			honcho.CloudAuthorizeURL, "https://honcho.example.com/v2/oauth/token", "https://honcho.example.com/v2/oauth/device_authorization", "https://honcho.example.com"},
		{"baseUrl of the wrong type is ignored", map[string]any{"baseUrl": 42}, nil,
			honcho.CloudAuthorizeURL, honcho.CloudTokenURL, "https://api.honcho.dev/oauth/device_authorization", "https://api.honcho.dev"},
		{"options win", map[string]any{"environment": "local"},
			[]honcho.Option{honcho.WithAuthorizeURL("https://dash.example/authorize"), honcho.WithTokenURL("https://as.example/t/token"),
				honcho.WithDeviceAuthURL("https://as.example/device"), honcho.WithIssuer("https://issuer.example")},
			"https://dash.example/authorize", "https://as.example/t/token", "https://as.example/device", "https://issuer.example"},
		{"token override only", map[string]any{"environment": "local"},
			[]honcho.Option{honcho.WithTokenURL("https://as.example/token")},
			honcho.LocalAuthorizeURL, "https://as.example/token", "https://as.example/device_authorization", "https://as.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			if tt.config != nil {
				testkit.WriteJSON(t, filepath.Join(home, "honcho.json"), tt.config)
			}
			p := honcho.New(tt.opts...)
			ep, err := p.Endpoints(context.Background(), provider.Profile{Name: "default", Home: home, DefaultHome: home})
			if err != nil {
				t.Fatal(err)
			}
			if ep.AuthorizeURL != tt.wantAuthorize || ep.TokenURL != tt.wantToken || ep.DeviceAuthURL != tt.wantDevice || ep.Issuer != tt.wantIssuer {
				t.Errorf("got authorize %s token %s device %s issuer %s\nwant authorize %s token %s device %s issuer %s",
					ep.AuthorizeURL, ep.TokenURL, ep.DeviceAuthURL, ep.Issuer, tt.wantAuthorize, tt.wantToken, tt.wantDevice, tt.wantIssuer)
			}
			if ep.ClientID != "hermes-agent" || !slices.Equal(ep.Scopes, []string{"write"}) {
				t.Errorf("client %s scopes %v", ep.ClientID, ep.Scopes)
			}
		})
	}
}

func TestEndpointsBrokenConfig(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "honcho.json")
	if err := os.WriteFile(path, []byte(`{"environment": `), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := honcho.New().Endpoints(context.Background(), provider.Profile{Name: "default", Home: home, DefaultHome: home})
	var ce *filestore.ConfigError
	if !errors.As(err, &ce) || ce.Path != path {
		t.Fatalf("error = %v, want a ConfigError naming %s", err, path)
	}
}

func TestProviderBasics(t *testing.T) {
	p := honcho.New()
	if p.Name() != "honcho" || p.DisplayName() != "Honcho" {
		t.Errorf("Name %q DisplayName %q", p.Name(), p.DisplayName())
	}
	if got := p.AuthMethods(); !slices.Equal(got, []provider.AuthMethod{provider.AuthBrowser, provider.AuthDevice, provider.AuthKey}) {
		t.Errorf("AuthMethods = %v", got)
	}
	dir := t.TempDir()
	loc, err := p.GrantLocation(provider.Profile{Name: "default", Home: dir, DefaultHome: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := filestore.Layout{Section: "hosts", AccessToken: "apiKey", Fields: "oauth", AccessTokenPrefix: "hch-at-", PrefixSetting: "HONCHO_OAUTH_TOKEN_PREFIX (honcho.WithAccessTokenPrefix in Go)", DefaultScope: "write", RootAPIKey: true, Verdict: "oauthRejected"}
	if loc.Layout != want {
		t.Errorf("Layout = %+v, want %+v", loc.Layout, want)
	}
}
