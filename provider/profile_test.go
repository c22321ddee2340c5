package provider_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/provider"
)

func TestHermesProfilesResolve(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, d := range []string{"work", "a-b_c", "x"} {
		if err := os.MkdirAll(filepath.Join(root, "profiles", d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "profiles", "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	max := "a" + strings.Repeat("b", 63)
	if err := os.MkdirAll(filepath.Join(root, "profiles", max), 0o700); err != nil {
		t.Fatal(err)
	}
	res := provider.HermesProfiles{Root: root}

	tests := []struct {
		name     string
		in       string
		wantName string
		wantHome string
		wantErr  error
	}{
		{"default", "default", "default", root, nil},
		{"current is the default", "current", "default", root, nil},
		{"named", "work", "work", filepath.Join(root, "profiles", "work"), nil},
		{"dash and underscore", "a-b_c", "a-b_c", filepath.Join(root, "profiles", "a-b_c"), nil},
		{"single char", "x", "x", filepath.Join(root, "profiles", "x"), nil},
		{"64 chars", max, max, filepath.Join(root, "profiles", max), nil},
		{"65 chars", max + "c", "", "", provider.ErrInvalidProfile},
		{"empty", "", "", "", provider.ErrInvalidProfile},
		{"dot dot", "..", "", "", provider.ErrInvalidProfile},
		{"encoded dot dot", "%2e%2e", "", "", provider.ErrInvalidProfile},
		{"slash", "a/b", "", "", provider.ErrInvalidProfile},
		{"backslash", `a\b`, "", "", provider.ErrInvalidProfile},
		{"uppercase", "Work", "", "", provider.ErrInvalidProfile},
		{"leading dash", "-work", "", "", provider.ErrInvalidProfile},
		{"leading underscore", "_work", "", "", provider.ErrInvalidProfile},
		{"dot", "a.b", "", "", provider.ErrInvalidProfile},
		{"space", "a b", "", "", provider.ErrInvalidProfile},
		{"nul", "a\x00", "", "", provider.ErrInvalidProfile},
		{"unicode", "wörk", "", "", provider.ErrInvalidProfile},
		{"missing", "nope", "", "", provider.ErrProfileNotFound},
		{"a file, not a directory", "file", "", "", provider.ErrProfileNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := res.Resolve(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.in, err)
			}
			want := provider.Profile{Name: tt.wantName, Home: tt.wantHome, DefaultHome: root}
			if p != want {
				t.Errorf("Resolve(%q) = %+v, want %+v", tt.in, p, want)
			}
		})
	}
}

func TestValidateProfileNameMessageIsSafe(t *testing.T) {
	t.Parallel()
	bad := "evil\n\x1b[31m" + strings.Repeat("x", 500)
	err := provider.ValidateProfileName(bad)
	if !errors.Is(err, provider.ErrInvalidProfile) {
		t.Fatalf("error = %v, want ErrInvalidProfile", err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\x1b") {
		t.Errorf("message %q holds control characters", msg)
	}
	if len(msg) > 200 {
		t.Errorf("message is %d bytes long, want it shortened", len(msg))
	}
	if !strings.Contains(msg, `"evil\n`) {
		t.Errorf("message %q does not name the bad value", msg)
	}
}

func TestHermesProfilesEmptyRoot(t *testing.T) {
	t.Parallel()
	if _, err := (provider.HermesProfiles{}).Resolve("default"); err == nil {
		t.Fatal("Resolve with an empty Root succeeded, want an error")
	}
}

func ExampleHermesProfiles() {
	root := filepath.Join(os.TempDir(), "example-hermes")
	p, err := provider.HermesProfiles{Root: root}.Resolve("current")
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Name, p.Home == root)

	_, err = provider.HermesProfiles{Root: root}.Resolve("../etc")
	fmt.Println(errors.Is(err, provider.ErrInvalidProfile))
	// Output:
	// default true
	// true
}
