package mcp_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/mcp"
)

// A preset that points at the internet, on a machine that is offline,
// fails to connect with an *provider.UnreachableError whose one sentence
// names the provider and the host and says what to do; a server that
// answers, even badly, is not unreachable.
func TestConnectOffline(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		dial error
	}{
		{"no such host", &net.DNSError{Err: "no such host", Name: "mcp.supermemory.ai", IsNotFound: true}},
		{"no network", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: network is unreachable")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			offline := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
				return nil, tt.dial
			}}}
			reg, err := provider.NewRegistry(mcp.Supermemory())
			if err != nil {
				t.Fatal(err)
			}
			fm := flow.NewManager(flow.Config{LoopbackAddr: "127.0.0.1:0"})
			t.Cleanup(func() { fm.Close() })
			conn := &provider.Connector{Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()}, Flows: fm, HTTPClient: offline}
			_, err = conn.Connect(t.Context(), "default", "supermemory", provider.ConnectRequest{})
			var ue *provider.UnreachableError
			if !errors.As(err, &ue) {
				t.Fatalf("Connect: %v, want an *UnreachableError", err)
			}
			s := ue.Sentence()
			if !strings.HasPrefix(s, "Supermemory can't be reached from here (mcp.supermemory.ai: ") || !strings.HasSuffix(s, "; check the internet connection, then try again") {
				t.Errorf("Sentence() = %q", s)
			}
			if _, ok := errors.AsType[*authserver.UpstreamError](err); !ok {
				t.Error("the *authserver.UpstreamError is not in the chain")
			}
		})
	}
	ue := &authserver.UpstreamError{Step: authserver.StepProbe, URL: "https://x", Err: errors.New("HTTP 500")}
	if ue.Unreachable() {
		t.Error("a server that answered is unreachable")
	}
}
