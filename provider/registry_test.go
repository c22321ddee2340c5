package provider_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/provider"
)

// fake is a provider without OAuth, for registry and service tests.
func names(ps []provider.Provider) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name())
	}
	return out
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	r, err := provider.NewRegistry(fixture.FakeProvider{ID: "mem0"}, fixture.FakeProvider{ID: "honcho"}, fixture.FakeProvider{ID: "zep"}, fixture.FakeProvider{ID: "letta"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(r.List()), ","), "mem0,honcho,zep,letta"; got != want {
		t.Errorf("List() = %s, want %s", got, want)
	}
	if p, ok := r.Lookup("zep"); !ok || p.Name() != "zep" {
		t.Errorf("Lookup(zep) = %v, %v", p, ok)
	}
	if _, ok := r.Lookup("nope"); ok {
		t.Error("Lookup(nope) found a provider")
	}
	l := r.List()
	l[0] = fixture.FakeProvider{ID: "mutated"}
	if r.List()[0].Name() != "mem0" {
		t.Error("List returned the registry's own slice")
	}
}

func TestNewRegistryRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ps      []provider.Provider
		wantIs  error
		wantMsg string
	}{
		{"duplicate", []provider.Provider{fixture.FakeProvider{ID: "honcho"}, fixture.FakeProvider{ID: "mem0"}, fixture.FakeProvider{ID: "honcho"}}, provider.ErrDuplicateProvider, `"honcho"`},
		{"empty name", []provider.Provider{fixture.FakeProvider{ID: ""}}, nil, "empty name"},
		{"nil", []provider.Provider{nil}, nil, "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := provider.NewRegistry(tt.ps...)
			if err == nil {
				t.Fatalf("NewRegistry = %v, want an error", r)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %s", err, tt.wantMsg)
			}
		})
	}
}

func TestNilRegistry(t *testing.T) {
	t.Parallel()
	var r *provider.Registry
	if _, ok := r.Lookup("honcho"); ok {
		t.Error("nil registry found a provider")
	}
	if len(r.List()) != 0 {
		t.Error("nil registry listed providers")
	}
}

func ExampleRegistry() {
	r, err := provider.NewRegistry(fixture.FakeProvider{ID: "honcho"}, fixture.FakeProvider{ID: "zep"})
	if err != nil {
		panic(err)
	}
	for _, p := range r.List() {
		fmt.Println(p.Name())
	}
	_, err = provider.NewRegistry(fixture.FakeProvider{ID: "honcho"}, fixture.FakeProvider{ID: "honcho"})
	fmt.Println(err)
	// Output:
	// honcho
	// zep
	// provider: duplicate provider name "honcho"
}
