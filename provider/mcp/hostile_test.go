package mcp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// TestConnectToAHangingServer: a memory server that never answers ends a
// connect at the Connector's deadline with an *authserver.UpstreamError naming
// the server and the step, and a second profile is not held up by it.
func TestConnectToAHangingServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "profiles", "work"), 0o700)
	fm := flow.NewManager(flow.Config{LoopbackAddr: "127.0.0.1:0"})
	t.Cleanup(func() { fm.Close() })
	conn := &provider.Connector{Registry: registry(t, srv.URL+"/mcp"), Profiles: provider.HermesProfiles{Root: home}, Flows: fm,
		ConnectTimeout: 300 * time.Millisecond}

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, prof := range []string{"default", "work"} {
		wg.Go(func() {
			_, errs[i] = conn.Connect(context.Background(), prof, "memdev", provider.ConnectRequest{})
		})
	}
	t.Parallel() // after the connects start: their deadlines pass while the package's other tests run
	waitOrFail(t, &wg)
	for i, err := range errs {
		var ue *authserver.UpstreamError
		if !errors.As(err, &ue) || !ue.Timeout() || ue.Step != authserver.StepProbe || ue.URL != srv.URL+"/mcp" {
			t.Errorf("connect %d: %v; want a timed-out probe of %s/mcp", i, err, srv.URL)
		}
	}
}

// waitOrFail waits for wg, failing the test when that takes a minute: the
// calls were meant to end at their own (much shorter) deadlines.
func waitOrFail(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the connects did not end at their deadlines")
	}
}

// TestSlowRegistrationBlocksNobody: while a registration endpoint hangs,
// every connect ends at its own deadline (none waits behind a lock held
// across the request), and concurrent connects that need the same client
// share one registration.
func TestSlowRegistrationBlocksNobody(t *testing.T) {
	release := make(chan struct{})
	var registrations atomic.Int64
	var as *httptest.Server
	as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%s/authorize","token_endpoint":"%s/token","registration_endpoint":"%s/register"}`,
				as.URL, as.URL, as.URL, as.URL)
		case "/register":
			registrations.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(as.Close)
	c := newChain(t, []oauthfake.MCPOption{oauthfake.WithMetadata(func(m map[string]any) { m["authorization_servers"] = []string{as.URL} })})
	t.Cleanup(func() { close(release) })
	c.conn.ConnectTimeout = 300 * time.Millisecond
	os.MkdirAll(filepath.Join(c.home, "profiles", "work"), 0o700)

	var wg sync.WaitGroup
	profiles := []string{"default", "default", "work"}
	errs := make([]error, len(profiles))
	for i, prof := range profiles {
		wg.Go(func() {
			_, errs[i] = c.conn.Connect(context.Background(), prof, "memdev", provider.ConnectRequest{})
		})
	}
	t.Parallel() // after the connects start: their deadlines pass while the package's other tests run
	waitOrFail(t, &wg)
	for i, err := range errs {
		var ue *authserver.UpstreamError
		if !errors.As(err, &ue) || ue.Step != authserver.StepRegistration || !ue.Timeout() {
			t.Errorf("connect %d (%s): %v; want a timed-out registration", i, profiles[i], err)
		}
	}
	// The two connects of "default" need the same client: one request.
	// "work" has its own callback URI, so its own registration.
	if n := registrations.Load(); n != 2 {
		t.Errorf("%d registration requests; want 2 (one shared by the two connects of default)", n)
	}
	if _, err := os.Stat(c.file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a grant file was written: %v", err)
	}
}
