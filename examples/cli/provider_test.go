package main

import (
	"net"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// TestClientIDForAnyProvider: --client-id gives any provider, not only
// Honcho, a client registered beforehand, used without a registration.
func TestClientIDForAnyProvider(t *testing.T) {
	t.Parallel()
	srv := oauthfake.NewMCPServer()
	defer srv.Close()
	for _, flag := range []string{"zep=" + srv.URL} {
		p, err := chooseProvider(flag, honcho.New(), "pre-registered", nil)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := p.(provider.Registrar).Client(t.Context(), provider.Profile{Name: "default", Home: t.TempDir()},
			provider.ClientRequest{RedirectURIs: []string{"http://127.0.0.1:8765/callback"}}, provider.NewStores(zerolog.Nop()))
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
	// Not parallel: a parallel test's listener could take the closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := runCLI(t, newEnv(t), "login", "--no-browser", "--provider", "x=http://"+addr+"/mcp")
	msg := strings.TrimSpace(r.stderr)
	if want := "memconnect: X can't be reached from here (" + addr + ": the server refused the connection); check the internet connection, then try again."; r.code != exitFailed || msg != want {
		t.Fatalf("exit %d, stderr %q; want one sentence naming the server, the step and the cause", r.code, r.stderr)
	}
	for _, chain := range []string{"dial tcp", "Get \"", "mcp: ", "oauth: "} {
		if strings.Contains(msg, chain) {
			t.Errorf("stderr %q holds %q", msg, chain)
		}
	}
}

// TestOneErrorStyle: whatever fails, the CLI says it on one line starting
// "memconnect: ", then a sentence, or for a usage error the command and flag
// at fault; no Go error chain reaches the person (-v shows it).
func TestOneErrorStyle(t *testing.T) {
	// Not parallel: a parallel test's listener could take the closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	dir := t.TempDir() // a directory where a config file should be
	for _, tt := range []struct {
		name string
		args []string
		code int
		line string
	}{
		{"unknown flag", []string{"status", "--nope"}, exitUsage, "memconnect: status: flag provided but not defined: -nope"},
		{"unknown command", []string{"nope"}, exitUsage, `memconnect: unknown command "nope"`},
		{"argument", []string{"status", "extra"}, exitUsage, `memconnect: status: unexpected argument "extra"`},
		{"bad port", []string{"login", "--port", "x"}, exitUsage, "memconnect: login: --port x is not a port"},
		{"no profile", []string{"status", "--profile", "missing"}, exitFailed, `memconnect: There is no Hermes profile "missing"`},
		{"not signed in", []string{"token"}, exitReauth, "memconnect: Not signed in to Honcho."},
		{"server refused", []string{"token", "--server", "http://" + closed}, exitFailed, "memconnect: The server http://" + closed + " could not be reached: connection refused."},
		{"config is a directory", []string{"status", "--config", dir}, exitFailed, "memconnect: Read config: is a directory (" + dir + ")."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, newEnv(t), tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			var said []string
			for line := range strings.Lines(r.stderr) {
				if strings.HasPrefix(line, "memconnect: ") {
					said = append(said, strings.TrimSuffix(line, "\n"))
				}
			}
			if len(said) != 1 || !strings.HasPrefix(said[0], tt.line) {
				t.Errorf("stderr %q: want one line starting %q", r.stderr, tt.line)
			}
			for _, chain := range []string{"dial tcp", " connect: ", "read " + dir, "Get \"", "oauth: ", "provider: ", "flow: "} {
				if strings.Contains(strings.Join(said, "\n"), chain) {
					t.Errorf("%q holds the Go error chain %q", said, chain)
				}
			}
		})
	}
}
