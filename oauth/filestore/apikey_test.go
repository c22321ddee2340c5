package filestore

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
)

func TestSetAPIKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name     string
		config   string // "" for no file
		host     string
		key      string
		replaced bool
		wantErr  string
	}{
		{name: "replaces a grant", config: configWithGrant("https://t.example/token", "hch-at-a", "hch-rt-r", exp), host: "hermes", key: "hch-v2-newkey", replaced: true},
		{name: "new host in an existing file", config: configWithGrant("https://t.example/token", "hch-at-a", "hch-rt-r", exp), host: "third", key: "k-123"},
		{name: "no file yet", host: "hermes", key: "k-123"},
		{name: "empty key", host: "hermes", key: "", wantErr: "empty"},
		{name: "two words", host: "hermes", key: "k-1 k-2", wantErr: "white space"},
		{name: "line break", host: "hermes", key: "k-1\n", wantErr: "white space"},
		{name: "an access token", host: "hermes", key: "hch-at-xyz", wantErr: "prefix of an OAuth access token"},
		{name: "too long", host: "hermes", key: strings.Repeat("k", 4097), wantErr: "longer than 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "honcho.json")
			if tt.config != "" {
				testkit.WriteFile(t, path, tt.config)
			}
			s := newTestStore(path)
			if tt.replaced {
				// Warm the cache: the key must replace what this process serves.
				if _, err := s.TokenSource(tt.host).TokenContext(ctx); err != nil {
					t.Fatal(err)
				}
			}
			g, err := s.SetAPIKey(ctx, tt.host, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.key != "" && strings.Contains(err.Error(), tt.key) {
					t.Errorf("the error %q holds the key", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (g != nil) != tt.replaced || (g != nil && g.RefreshToken != "hch-rt-r") {
				t.Errorf("replaced grant = %+v, want one: %v", g, tt.replaced)
			}
			c, err := s.Credentials(tt.host)
			if err != nil || c.Grant != nil || c.APIKey != tt.key || c.APIKeySource != "host" {
				t.Errorf("credentials = %+v, %v; want the host API key", c, err)
			}
			if _, err := s.TokenSource(tt.host).TokenContext(ctx); !errors.Is(err, oauth.ErrNoGrant) {
				t.Errorf("token after the key was set: err = %v, want ErrNoGrant", err)
			}
			if tt.config == "" {
				return
			}
			cfg := testkit.ReadJSON(t, path)
			if cfg["apiKey"] != "root-key-1234" || cfg["sentinel"] == nil {
				t.Errorf("root members lost: %v", cfg)
			}
			if other := testkit.HostBlock(cfg, "other"); other["apiKey"] != "other-key-5678" || other["custom"] != true {
				t.Errorf("other host changed: %v", other)
			}
			if tt.host == "hermes" {
				b := testkit.HostBlock(cfg, "hermes")
				if b["oauth"] != nil || b["peerName"] != "alice" {
					t.Errorf("hermes block = %v, want no oauth and peerName kept", b)
				}
			}
		})
	}
}

func TestRemoveAPIKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name    string
		config  string
		removed bool
		want    oauth.Credentials // after
	}{
		{name: "host key", config: `{"apiKey":"root","hosts":{"hermes":{"apiKey":"mine","peerName":"alice"},"other":{"apiKey":"theirs"}}}`, removed: true, want: oauth.Credentials{APIKey: "root", APIKeySource: "root"}},
		{name: "root key only", config: `{"apiKey":"root","hosts":{"hermes":{}}}`, want: oauth.Credentials{APIKey: "root", APIKeySource: "root"}},
		{name: "a grant is not a key", config: configWithGrant("https://t.example/token", "hch-at-a", "hch-rt-r", exp)},
		{name: "nothing", config: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "honcho.json")
			testkit.WriteFile(t, path, tt.config)
			s := newTestStore(path)
			removed, err := s.RemoveAPIKey(ctx, "hermes")
			if err != nil || removed != tt.removed {
				t.Fatalf("RemoveAPIKey = %v, %v; want %v", removed, err, tt.removed)
			}
			c, err := s.Credentials("hermes")
			if err != nil {
				t.Fatal(err)
			}
			if c.Grant != nil {
				c.Grant = nil // the grant case: it stays
			}
			if !reflect.DeepEqual(c, tt.want) {
				t.Errorf("credentials after = %+v, want %+v", c, tt.want)
			}
			if removed {
				cfg := testkit.ReadJSON(t, path)
				if testkit.HostBlock(cfg, "other")["apiKey"] != "theirs" || testkit.HostBlock(cfg, "hermes")["peerName"] != "alice" {
					t.Errorf("other members lost: %v", cfg)
				}
			}
		})
	}
}
