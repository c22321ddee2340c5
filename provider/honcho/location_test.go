package honcho_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

func TestHostKey(t *testing.T) {
	tests := []struct{ profile, want string }{
		{"default", "hermes"},
		{"", "hermes"},
		{"work", "hermes_work"},
		{"a-b_c9", "hermes_a-b_c9"},
		{"Work", "hermes_Work"},
		{"a.b", "hermes_a_b"},
		{"a/b", "hermes_a_b"},
		{"..", "hermes___"},
		{"wörk", "hermes_w_rk"},
		{"sp ace", "hermes_sp_ace"},
	}
	for _, tt := range tests {
		if got := honcho.HostKey(tt.profile); got != tt.want {
			t.Errorf("HostKey(%q) = %q, want %q", tt.profile, got, tt.want)
		}
	}
}

func TestGrantLocationFallbackChain(t *testing.T) {
	userHome := t.TempDir()
	root := filepath.Join(userHome, ".hermes")
	work := provider.Profile{Name: "work", Home: filepath.Join(root, "profiles", "work"), DefaultHome: root}
	def := provider.Profile{Name: "default", Home: root, DefaultHome: root}
	own := filepath.Join(work.Home, "honcho.json")
	shared := filepath.Join(root, "honcho.json")
	global := filepath.Join(userHome, ".honcho", "config.json")

	p := honcho.New(honcho.WithUserHome(userHome))
	steps := []struct {
		name     string
		create   string // file created before this step
		prof     provider.Profile
		wantRead string
	}{
		{"nothing exists: read the own file", "", work, own},
		{"global config", global, work, global},
		{"default profile's file wins over global", shared, work, shared},
		{"own file wins", own, work, own},
		{"default profile reads its own", "", def, shared},
	}
	for _, s := range steps {
		if s.create != "" {
			testkit.WriteJSON(t, s.create, map[string]any{})
		}
		loc, err := p.GrantLocation(s.prof)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		wantWrite := filepath.Join(s.prof.Home, "honcho.json")
		if loc.ReadPath != s.wantRead || loc.WritePath != wantWrite {
			t.Errorf("%s: read %s write %s, want read %s write %s", s.name, loc.ReadPath, loc.WritePath, s.wantRead, wantWrite)
		}
		if want := honcho.HostKey(s.prof.Name); loc.Host != want {
			t.Errorf("%s: host %q, want %q", s.name, loc.Host, want)
		}
	}
}

func TestGrantLocationWithoutUserHomeSkipsGlobal(t *testing.T) {
	userHome := t.TempDir()
	testkit.WriteJSON(t, filepath.Join(userHome, ".honcho", "config.json"), map[string]any{})
	root := filepath.Join(userHome, ".hermes")
	prof := provider.Profile{Name: "default", Home: root, DefaultHome: root}
	loc, err := honcho.New().GrantLocation(prof)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "honcho.json"); loc.ReadPath != want {
		t.Errorf("ReadPath = %s, want %s", loc.ReadPath, want)
	}
	ep, err := honcho.New().Endpoints(context.Background(), prof)
	if err != nil {
		t.Fatal(err)
	}
	if got := ep.AuthParams.Get("config_path"); got != "honcho.json" {
		t.Errorf("config_path = %s, want only the base name without a user home", got)
	}
}

func TestGrantLocationOverrides(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "custom.json")
	p := honcho.New(honcho.WithConfigFile(file), honcho.WithHost("myhost"), honcho.WithUserHome(dir))
	loc, err := p.GrantLocation(provider.Profile{Name: "work"})
	if err != nil {
		t.Fatal(err)
	}
	if loc.ReadPath != file || loc.WritePath != file || loc.Host != "myhost" {
		t.Errorf("GrantLocation = %+v, want %s and host myhost", loc, file)
	}
	ep, err := p.Endpoints(context.Background(), provider.Profile{Name: "work"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ep.AuthParams.Get("config_path"); got != "~/custom.json" {
		t.Errorf("config_path = %q, want ~/custom.json", got)
	}
}

// The consent page learns where the grant will be written, never as an
// absolute path.
func TestConfigPathParam(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name, profileHome, want string
	}{
		{"inside home", filepath.Join(home, ".hermes"), "~/.hermes/honcho.json"},
		{"profile inside home", filepath.Join(home, ".hermes", "profiles", "work"), "~/.hermes/profiles/work/honcho.json"},
		{"outside home: never the absolute path", "/srv/hermes", "honcho.json"},
		{"sibling with common prefix", home + "x", "honcho.json"},
	}
	p := honcho.New(honcho.WithUserHome(home))
	for _, tt := range tests {
		ep, err := p.Endpoints(context.Background(), provider.Profile{Name: "default", Home: tt.profileHome, DefaultHome: tt.profileHome})
		if err != nil {
			t.Fatal(err)
		}
		if got := ep.AuthParams.Get("config_path"); got != tt.want {
			t.Errorf("%s: config_path = %q, want %q", tt.name, got, tt.want)
		}
	}
}
