package honcho_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/testsupport/honchofake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

func TestStatus(t *testing.T) {
	exp := time.Unix(1767225600, 0)
	grant := map[string]any{
		"apiKey": "hch-at-access",
		"oauth": map[string]any{"refreshToken": "hch-rt-refresh", "expiresAt": exp.Unix(), "clientId": "hermes-agent",
			"tokenEndpoint": "https://api.honcho.dev/oauth/token", "scope": "write", "tokenType": "Bearer"},
	}
	tests := []struct {
		name    string
		config  map[string]any // nil: no file
		opts    []honcho.Option
		profile string
		want    provider.Status
	}{
		{name: "no file", want: provider.Status{Supported: true}},
		{name: "empty file", config: map[string]any{}, want: provider.Status{Supported: true}},
		{
			name:   "oauth grant",
			config: map[string]any{"apiKey": "root-key-0123456789", "hosts": map[string]any{"hermes": grant}},
			want: provider.Status{Supported: true, Connected: true, Auth: "oauth",
				Token: &provider.TokenInfo{ClientID: "hermes-agent", Scope: "write", ExpiresAt: exp}},
		},
		{
			name:    "grant of another host does not count",
			config:  map[string]any{"hosts": map[string]any{"hermes": grant}},
			profile: "work",
			want:    provider.Status{Supported: true},
		},
		{
			name:    "profile read through the default profile's file",
			config:  map[string]any{"hosts": map[string]any{"hermes_work": grant}},
			profile: "work",
			want: provider.Status{Supported: true, Connected: true, Auth: "oauth",
				Token: &provider.TokenInfo{ClientID: "hermes-agent", Scope: "write", ExpiresAt: exp}},
		},
		{
			name:   "the peer name names the account: the host's before the root's",
			config: map[string]any{"peerName": "root-name", "hosts": map[string]any{"hermes": withPeer(grant, "alice")}},
			want: provider.Status{Supported: true, Connected: true, Auth: "oauth", Account: "alice",
				Token: &provider.TokenInfo{ClientID: "hermes-agent", Scope: "write", ExpiresAt: exp}},
		},
		{
			name:   "the root's peer name",
			config: map[string]any{"peerName": "bob", "hosts": map[string]any{"hermes": grant}},
			want: provider.Status{Supported: true, Connected: true, Auth: "oauth", Account: "bob",
				Token: &provider.TokenInfo{ClientID: "hermes-agent", Scope: "write", ExpiresAt: exp}},
		},
		{
			name:   "no account when not connected",
			config: map[string]any{"peerName": "bob"},
			want:   provider.Status{Supported: true},
		},
		{
			name:   "host api key",
			config: map[string]any{"apiKey": "root-key-0123456789", "hosts": map[string]any{"hermes": map[string]any{"apiKey": "host-key-abcdefgh"}}},
			want:   provider.Status{Supported: true, Connected: true, Auth: "apikey", APIKeySource: "host", APIKeyHint: "…efgh"},
		},
		{
			name:   "root api key",
			config: map[string]any{"apiKey": "root-key-0123456789"},
			opts:   []honcho.Option{honcho.WithAPIKey("env-key-0123456789")},
			want:   provider.Status{Supported: true, Connected: true, Auth: "apikey", APIKeySource: "root", APIKeyHint: "…6789"},
		},
		{
			name: "env api key",
			opts: []honcho.Option{honcho.WithAPIKey("env-key-zyxw")},
			want: provider.Status{Supported: true, Connected: true, Auth: "apikey", APIKeySource: "env", APIKeyHint: "…zyxw"},
		},
		{
			name:   "short key gets no hint",
			config: map[string]any{"apiKey": "short"},
			want:   provider.Status{Supported: true, Connected: true, Auth: "apikey", APIKeySource: "root"},
		},
		{
			name:   "access token without the prefix is an api key",
			config: map[string]any{"hosts": map[string]any{"hermes": map[string]any{"apiKey": "plain-key-0123456789", "oauth": grant["oauth"]}}},
			want:   provider.Status{Supported: true, Connected: true, Auth: "apikey", APIKeySource: "host", APIKeyHint: "…6789"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.config != nil {
				testkit.WriteJSON(t, filepath.Join(root, "honcho.json"), tt.config)
			}
			prof := provider.Profile{Name: "default", Home: root, DefaultHome: root}
			if tt.profile != "" {
				prof = provider.Profile{Name: tt.profile, Home: filepath.Join(root, "profiles", tt.profile), DefaultHome: root}
			}
			got, err := honcho.New(tt.opts...).Status(context.Background(), prof, provider.NewStores(zerolog.Nop()))
			if err != nil {
				t.Fatal(err)
			}
			if !equalStatus(got, tt.want) {
				t.Errorf("Status = %s\nwant     %s", fmtStatus(got), fmtStatus(tt.want))
			}
			if strings.Contains(fmtStatus(got), "0123456789") || strings.Contains(fmtStatus(got), "hch-at-access") {
				t.Errorf("Status holds a secret: %s", fmtStatus(got))
			}
		})
	}
}

func equalStatus(a, b provider.Status) bool {
	if (a.Token == nil) != (b.Token == nil) {
		return false
	}
	if a.Token != nil && (a.Token.ClientID != b.Token.ClientID || a.Token.Scope != b.Token.Scope || !a.Token.ExpiresAt.Equal(b.Token.ExpiresAt)) {
		return false
	}
	a.Token, b.Token = nil, nil
	return a == b
}

func fmtStatus(s provider.Status) string {
	tok := "<nil>"
	if s.Token != nil {
		tok = fmt.Sprintf("%+v", *s.Token)
	}
	s.Token = nil
	return fmt.Sprintf("%+v token=%s", s, tok)
}

func TestStatusReauthRequired(t *testing.T) {
	srv := honchofake.NewServer()
	defer srv.Close()
	tok := srv.IssueGrant("write")
	root := t.TempDir()
	path := filepath.Join(root, "honcho.json")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": time.Now().Add(-time.Minute).Unix(),
			"clientId": srv.ClientID(), "tokenEndpoint": srv.TokenURL(), "scope": "write", "tokenType": "Bearer"},
	}}})
	srv.RevokeGrant(tok.RefreshToken)

	p := honcho.New()
	stores := provider.NewStores(zerolog.Nop(), oauth.WithHTTPClient(srv.Client()))
	prof := provider.Profile{Name: "default", Home: root, DefaultHome: root}
	before, err := p.Status(context.Background(), prof, stores)
	if err != nil {
		t.Fatal(err)
	}
	if before.ReauthRequired {
		t.Fatal("ReauthRequired before any refresh was tried")
	}
	loc, err := p.GrantLocation(prof)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stores.Grants(path, loc.Layout).TokenSource("hermes").TokenContext(context.Background())
	if !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("TokenContext error = %v, want ErrReauthRequired", err)
	}
	after, err := p.Status(context.Background(), prof, stores)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ReauthRequired || after.Auth != provider.AuthOAuth || !after.Connected {
		t.Errorf("Status after a dead refresh = %s, want oauth with reauth required", fmtStatus(after))
	}
}

func TestStatusBrokenConfig(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "honcho.json")
	testkit.WriteJSON(t, path, []int{1})
	_, err := honcho.New().Status(context.Background(), provider.Profile{Name: "default", Home: root, DefaultHome: root}, provider.NewStores(zerolog.Nop()))
	var ce *filestore.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v, want a ConfigError", err)
	}
}

// withPeer is host block b with a peerName.
func withPeer(b map[string]any, name string) map[string]any {
	out := maps.Clone(b)
	out["peerName"] = name
	return out
}

// A peer name changed in the file is seen at the next status.
func TestStatusAccountFollowsTheFile(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "honcho.json")
	p := honcho.New()
	prof := provider.Profile{Name: "default", Home: root, DefaultHome: root}
	for _, name := range []string{"alice", "alice-the-second"} {
		testkit.WriteJSON(t, path, map[string]any{"peerName": name, "hosts": map[string]any{"hermes": map[string]any{"apiKey": "key-0123456789abc"}}})
		st, err := p.Status(context.Background(), prof, provider.NewStores(zerolog.Nop()))
		if err != nil || st.Account != name {
			t.Fatalf("Account = %q, %v; want %q", st.Account, err, name)
		}
	}
}
