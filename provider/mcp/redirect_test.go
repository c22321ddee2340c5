package mcp_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
)

// TestRegistrationListsWhatTheSignInUses: the client a sign-in registers
// lists the redirect URI that sign-in uses and no other: the router's
// callback route for a callback sign-in, the exact loopback URI it listens
// on (port included, bound first) for a loopback one, and the port-less
// loopback URI for a device flow, which redirects nowhere.
func TestRegistrationListsWhatTheSignInUses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		req  provider.ConnectRequest
		want func(f *flow.Flow) []string
	}{
		{"callback", provider.ConnectRequest{Redirect: flow.RedirectCallback}, func(f *flow.Flow) []string {
			return []string{"http://127.0.0.1:9/api/memory/profiles/default/providers/memdev/callback"}
		}},
		{"loopback", provider.ConnectRequest{Redirect: flow.RedirectLoopback}, func(f *flow.Flow) []string {
			return []string{f.RedirectURI}
		}},
		{"device", provider.ConnectRequest{Method: flow.MethodDevice}, func(*flow.Flow) []string {
			return []string{"http://127.0.0.1/callback"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newChain(t, nil)
			rep, err := c.conn.Connect(context.Background(), "default", "memdev", tt.req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.conn.Cancel(context.Background(), "default", "memdev") })
			asked := c.srv.AS.RegisteredRedirectURIs()
			if want := tt.want(rep.Flow); len(asked) != 1 || !slices.Equal(asked[0], want) {
				t.Errorf("registrations asked for %q; want one for %q", asked, want)
			}
			if tt.name == "loopback" && (!strings.HasPrefix(rep.Flow.RedirectURI, "http://127.0.0.1:") || strings.HasPrefix(rep.Flow.RedirectURI, "http://127.0.0.1:0/")) {
				t.Errorf("the loopback redirect URI %q names no bound port", rep.Flow.RedirectURI)
			}
		})
	}
}

// TestRegistrationFallsBackToTheOtherForm: a server that refuses the
// port-less loopback URI (FastMCP's default allow-list, which needs a
// port), and one that refuses a ported one, both complete a loopback
// sign-in: the refused form is retried once in the other.
func TestRegistrationFallsBackToTheOtherForm(t *testing.T) {
	t.Parallel()
	ported := func(u string) bool {
		pu, err := url.Parse(u)
		return err == nil && pu.Port() != ""
	}
	for _, tt := range []struct {
		name   string
		accept func(string) bool
		tries  int
	}{
		{"needs a port", ported, 1},
		{"refuses a port", func(u string) bool { return !ported(u) }, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newChain(t, []oauthfake.MCPOption{oauthfake.WithAuthServer(oauthfake.WithRedirectURIRule(tt.accept))})
			ctx := context.Background()
			rep, err := c.conn.Connect(ctx, "default", "memdev", provider.ConnectRequest{Redirect: flow.RedirectLoopback})
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			target, err := c.srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(target.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if fl, err := c.conn.Wait(ctx, "default", "memdev"); err != nil || fl.State != flow.StateConnected {
				t.Fatalf("Wait = %+v, %v; want connected", fl, err)
			}
			if asked := c.srv.AS.RegisteredRedirectURIs(); len(asked) != tt.tries || !tt.accept(asked[len(asked)-1][0]) {
				t.Errorf("registrations asked for %q; want %d, the last one accepted", asked, tt.tries)
			}
		})
	}
}
