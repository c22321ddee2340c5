package honcho_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// lookup is an os.LookupEnv over a map.
func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    provider.Endpoints
		prefix  string // the access-token prefix of the grant layout
		wantErr string
	}{
		{
			name: "nothing set: cloud defaults",
			env:  map[string]string{},
			want: provider.Endpoints{AuthorizeURL: honcho.CloudAuthorizeURL, TokenURL: honcho.CloudTokenURL,
				DeviceAuthURL: "https://api.honcho.dev/oauth/device_authorization", Issuer: "https://api.honcho.dev",
				ClientID: "hermes-agent", Scopes: []string{"write"}}, prefix: "hch-at-",
		},
		{
			name: "everything set",
			env: map[string]string{
				"HONCHO_OAUTH_DASHBOARD":       "https://dash.example/",
				"HONCHO_OAUTH_TOKEN_URL":       "https://as.example/oauth/token",
				"HONCHO_OAUTH_DEVICE_AUTH_URL": "https://as.example/device",
				"HONCHO_OAUTH_CLIENT_ID":       "my-client",
				"HONCHO_OAUTH_SCOPE":           "write  offline_access",
				"HONCHO_OAUTH_TOKEN_PREFIX":    "at_",
			},
			want: provider.Endpoints{AuthorizeURL: "https://dash.example/authorize", TokenURL: "https://as.example/oauth/token",
				DeviceAuthURL: "https://as.example/device", Issuer: "https://as.example",
				ClientID: "my-client", Scopes: []string{"write", "offline_access"}}, prefix: "at_",
		},
		{
			name: "revocation URL and issuer",
			env: map[string]string{
				"HONCHO_OAUTH_REVOCATION_URL": "https://as.example/oauth/revoke",
				"HONCHO_OAUTH_ISSUER":         "https://issuer.example",
			},
			want: provider.Endpoints{AuthorizeURL: honcho.CloudAuthorizeURL, TokenURL: honcho.CloudTokenURL,
				DeviceAuthURL: "https://api.honcho.dev/oauth/device_authorization", RevocationURL: "https://as.example/oauth/revoke",
				Issuer: "https://issuer.example", ClientID: "hermes-agent", Scopes: []string{"write"}}, prefix: "hch-at-",
		},
		{
			name: "authorize URL wins over dashboard",
			env: map[string]string{
				"HONCHO_OAUTH_DASHBOARD":     "https://dash.example",
				"HONCHO_OAUTH_AUTHORIZE_URL": "https://other.example/consent",
			},
			want: provider.Endpoints{AuthorizeURL: "https://other.example/consent", TokenURL: honcho.CloudTokenURL,
				DeviceAuthURL: "https://api.honcho.dev/oauth/device_authorization", Issuer: "https://api.honcho.dev",
				ClientID: "hermes-agent", Scopes: []string{"write"}}, prefix: "hch-at-",
		},
		{
			name: "prefix set but empty accepts any token",
			env:  map[string]string{"HONCHO_OAUTH_TOKEN_PREFIX": ""},
			want: provider.Endpoints{AuthorizeURL: honcho.CloudAuthorizeURL, TokenURL: honcho.CloudTokenURL,
				DeviceAuthURL: "https://api.honcho.dev/oauth/device_authorization", Issuer: "https://api.honcho.dev",
				ClientID: "hermes-agent", Scopes: []string{"write"}}, prefix: "",
		},
		{
			name: "empty values are ignored",
			env:  map[string]string{"HONCHO_OAUTH_TOKEN_URL": "", "HONCHO_OAUTH_CLIENT_ID": " ", "HONCHO_OAUTH_SCOPE": ""},
			want: provider.Endpoints{AuthorizeURL: honcho.CloudAuthorizeURL, TokenURL: honcho.CloudTokenURL,
				DeviceAuthURL: "https://api.honcho.dev/oauth/device_authorization", Issuer: "https://api.honcho.dev",
				ClientID: "hermes-agent", Scopes: []string{"write"}}, prefix: "hch-at-",
		},
		{name: "relative token URL", env: map[string]string{"HONCHO_OAUTH_TOKEN_URL": "/oauth/token"}, wantErr: "HONCHO_OAUTH_TOKEN_URL"},
		{name: "bad scheme", env: map[string]string{"HONCHO_OAUTH_AUTHORIZE_URL": "ftp://x/authorize"}, wantErr: "HONCHO_OAUTH_AUTHORIZE_URL"},
		{name: "unparsable", env: map[string]string{"HONCHO_OAUTH_DASHBOARD": "http://[::1"}, wantErr: "HONCHO_OAUTH_DASHBOARD"},
		{name: "bad issuer", env: map[string]string{"HONCHO_OAUTH_ISSUER": "issuer.example"}, wantErr: "HONCHO_OAUTH_ISSUER"},
		{name: "user info", env: map[string]string{"HONCHO_OAUTH_DEVICE_AUTH_URL": "https://u:p@x/d"}, wantErr: "HONCHO_OAUTH_DEVICE_AUTH_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := honcho.FromEnv(lookup(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one naming %s", err, tt.wantErr)
				}
				for _, v := range tt.env {
					if v != "" && strings.Contains(err.Error(), v) {
						t.Errorf("error %q repeats the value", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			home := t.TempDir()
			prof := provider.Profile{Name: "default", Home: home, DefaultHome: home}
			got, err := honcho.New(opts...).Endpoints(context.Background(), prof)
			if err != nil {
				t.Fatal(err)
			}
			if loc, err := honcho.New(opts...).GrantLocation(prof); err != nil || loc.Layout.AccessTokenPrefix != tt.prefix {
				t.Errorf("access-token prefix = %q (%v), want %q", loc.Layout.AccessTokenPrefix, err, tt.prefix)
			}
			if got.AuthorizeURL != tt.want.AuthorizeURL || got.TokenURL != tt.want.TokenURL || got.DeviceAuthURL != tt.want.DeviceAuthURL ||
				got.Issuer != tt.want.Issuer || got.ClientID != tt.want.ClientID || !slices.Equal(got.Scopes, tt.want.Scopes) ||
				got.AuthParams.Get("config_path") != "honcho.json" {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFromEnvAPIKey(t *testing.T) {
	opts, err := honcho.FromEnv(lookup(map[string]string{"HONCHO_API_KEY": "env-key-0123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	st, err := honcho.New(opts...).Status(context.Background(), provider.Profile{Name: "default", Home: home, DefaultHome: home}, provider.NewStores(zerolog.Nop()))
	if err != nil {
		t.Fatal(err)
	}
	if st.Auth != provider.AuthAPIKey || st.APIKeySource != "env" || st.APIKeyHint != "…6789" {
		t.Errorf("Status = %+v, want the env API key", st)
	}
}

// HONCHO_API_KEY_CHECK_URL makes API keys checked there before they are
// stored; a key the server refuses is an *APIKeyError.
func TestFromEnvAPIKeyCheckURL(t *testing.T) {
	srv := honchofake.NewServer(honchofake.WithAPIKey("hch-v2-good-key-0123"))
	defer srv.Close()
	if _, err := honcho.FromEnv(lookup(map[string]string{"HONCHO_API_KEY_CHECK_URL": "not a url"})); err == nil || !strings.Contains(err.Error(), "HONCHO_API_KEY_CHECK_URL") {
		t.Errorf("a bad check URL: %v", err)
	}
	opts, err := honcho.FromEnv(lookup(map[string]string{"HONCHO_API_KEY_CHECK_URL": srv.WhoAmIURL()}))
	if err != nil {
		t.Fatal(err)
	}
	p := honcho.New(opts...)
	if err := p.CheckAPIKey(t.Context(), provider.Profile{}, "hch-v2-good-key-0123"); err != nil {
		t.Errorf("the server's key: %v", err)
	}
	var ke *provider.APIKeyError
	if err := p.CheckAPIKey(t.Context(), provider.Profile{}, "hch-v2-wrong-key-0123"); !errors.As(err, &ke) {
		t.Errorf("a refused key: %v, want an *APIKeyError", err)
	}
}
