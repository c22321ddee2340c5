package mcp_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/provider"
)

// TestOnPostgres: two instances keep a generic provider's grants and
// flows in one PostgreSQL. A sign-in started on A completes on B with A's
// registered client; B refreshes with the resource; once the server forgets
// the client, the rejection recorded in the database makes A register
// again.
func TestOnPostgres(t *testing.T) {
	t.Parallel()
	pool := fixture.Postgres(t, false) // skips without a database
	ctx := context.Background()
	srv := oauthfake.NewMCPServer()
	t.Cleanup(srv.Close)
	home := t.TempDir()
	instance := func(owner string) *provider.Connector {
		st, err := pgstore.New(ctx, pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		c := &provider.Connector{Registry: registry(t, srv.URL), Profiles: provider.HermesProfiles{Root: home}, GrantStore: st,
			CallbackBaseURL: "http://127.0.0.1:9/api/memory"}
		c.Flows = flow.NewManager(flow.Config{Store: st.Flows(), LoopbackAddr: "127.0.0.1:0", Resume: c.Resume})
		t.Cleanup(func() { c.Flows.Close() })
		return c
	}
	a, b := instance("a"), instance("b")

	signIn := func() string {
		t.Helper()
		rep, err := a.Connect(ctx, "default", "memdev", provider.ConnectRequest{})
		if err != nil {
			t.Fatal(err)
		}
		target, err := srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true)
		if err != nil {
			t.Fatal(err)
		}
		if fl, err := b.Callback(ctx, "default", "memdev", target.Query()); err != nil || fl.State != flow.StateConnected {
			t.Fatalf("callback on B: %+v, %v", fl, err)
		}
		return srv.AS.LastAuthorizeQuery().Get("client_id")
	}
	client := signIn()
	st, err := b.Status(ctx, "default", "memdev")
	if err != nil || !st.Connected || st.Token == nil || st.Token.ClientID != client {
		t.Fatalf("status on B = %+v, %v; want connected with %s", st, err, client)
	}
	ts, err := b.TokenSource("default", "memdev")
	if err != nil {
		t.Fatal(err)
	}
	if err := forceRefresh(ctx, ts); err != nil {
		t.Fatalf("refresh on B (the server requires the resource): %v", err)
	}

	srv.AS.ForgetClients()
	if err := forceRefresh(ctx, ts); err == nil {
		t.Fatal("refresh with a forgotten client succeeded")
	}
	if again := signIn(); again == client || srv.AS.Registrations() != 2 {
		t.Errorf("after invalid_client: client %s (was %s), %d registrations; want a new one", again, client, srv.AS.Registrations())
	}
}

// TestOneRegistrationForTheDeployment: two instances with their own homes
// sign two profiles (names only) in through the shared store, each with
// its loopback listener on the deployment's loopback address: the profiles
// share their redirect URI, so the server sees one registration, which
// both use, and neither home holds a file. (Sign-ins through the router's
// callback have a redirect URI of their own profile, and a client of
// their own.)
func TestOneRegistrationForTheDeployment(t *testing.T) {
	// Not parallel: a parallel test's listener could take the free port.
	pool := fixture.Postgres(t, false)
	ctx := context.Background()
	srv := oauthfake.NewMCPServer()
	t.Cleanup(srv.Close)
	var homes []string
	// The deployment's loopback address: a port free now, which each
	// sign-in binds in turn.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	instance := func(owner string) *provider.Connector {
		home := t.TempDir()
		homes = append(homes, home)
		st, err := pgstore.New(ctx, pool, pgstore.Config{SpillDir: t.TempDir(), Keys: []pgstore.Key{fixture.PostgresKey("k1")}, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		c := &provider.Connector{Registry: registry(t, srv.URL), Profiles: provider.NamedProfiles{Root: home}, GrantStore: st}
		c.Flows = flow.NewManager(flow.Config{Store: st.Flows(), LoopbackAddr: addr, Resume: c.Resume})
		t.Cleanup(func() { c.Flows.Close() })
		return c
	}
	a, b := instance("a"), instance("b")
	var clients []string
	for _, signIn := range []struct {
		c       *provider.Connector
		profile string
	}{{a, "alice"}, {b, "bob"}} {
		rep, err := signIn.c.Connect(ctx, signIn.profile, "memdev", provider.ConnectRequest{Redirect: flow.RedirectLoopback})
		if err != nil {
			t.Fatal(err)
		}
		target, err := srv.AS.Consent(ctx, nil, rep.Flow.AuthorizeURL, true)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(target.String()) // the browser, at the instance's loopback listener
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if fl, err := signIn.c.Wait(ctx, signIn.profile, "memdev"); err != nil || fl.State != flow.StateConnected {
			t.Fatalf("%s: %+v, %v; want connected", signIn.profile, fl, err)
		}
		clients = append(clients, srv.AS.LastAuthorizeQuery().Get("client_id"))
	}
	if n := srv.AS.Registrations(); n != 1 || clients[0] != clients[1] {
		t.Errorf("%d registrations, clients %v; want one client for the deployment", n, clients)
	}
	for _, home := range homes {
		if entries, _ := os.ReadDir(home); len(entries) != 0 {
			t.Errorf("an instance wrote into its home %s: %v", home, entries)
		}
	}
}
