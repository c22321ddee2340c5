package main

import (
	"testing"

	"github.com/memconnect/memconnect/oauth/oauthtest"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// TestClientIDForAnyProvider: --client-id gives any provider, not only
// Honcho, a client registered beforehand, used without a registration.
func TestClientIDForAnyProvider(t *testing.T) {
	srv := oauthtest.NewMCPServer()
	defer srv.Close()
	for _, flag := range []string{"zep=" + srv.URL} {
		p, err := chooseProvider(flag, honcho.New(), "pre-registered")
		if err != nil {
			t.Fatal(err)
		}
		ep, err := p.(provider.Registrar).Client(t.Context(), provider.Profile{Name: "default", Home: t.TempDir()},
			provider.ClientRequest{RedirectURIs: []string{"http://127.0.0.1:8765/callback"}}, provider.NewStores())
		if err != nil || ep.ClientID != "pre-registered" {
			t.Fatalf("%s: client %q, %v; want pre-registered", flag, ep.ClientID, err)
		}
		if n := srv.AS.Registrations(); n != 0 {
			t.Errorf("%s: %d registrations; want none", flag, n)
		}
	}
}
