package main

import (
	"net"
	"strings"
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

// TestUpstreamErrorIsOneSentence: a server that cannot be reached is one
// sentence naming the provider, the host and the cause in plain words, and
// what to do: no Go error chain, no package name.
func TestUpstreamErrorIsOneSentence(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := runCLI(t, newEnv(t), "login", "--no-browser", "--provider", "x=http://"+addr+"/mcp")
	msg := strings.TrimSpace(r.stderr)
	if want := "X can't be reached from here (" + addr + ": the server refused the connection); check the internet connection, then try again."; r.code != exitFailed || msg != want {
		t.Fatalf("exit %d, stderr %q; want one sentence naming the server, the step and the cause", r.code, r.stderr)
	}
	for _, chain := range []string{"dial tcp", "Get \"", "mcp: ", "oauth: "} {
		if strings.Contains(msg, chain) {
			t.Errorf("stderr %q holds %q", msg, chain)
		}
	}
}
