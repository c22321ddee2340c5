package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/provider"
)

// TestFastMCP: an MCP server made with npm's fastmcp, its OAuthProxy with
// its default settings (a redirect allow-list that needs a loopback port,
// a consent page, no revocation): a sign-in through the router's callback
// registers that callback alone and completes; the token works at the MCP
// endpoint; a forced rotation gives a new one that works too; disconnect
// says that the server cannot revoke. Then the CLI signs in on any free
// loopback port, registered with its port.
func TestFastMCP(t *testing.T) {
	fm := StartFastMCP(t)
	base, conn := startMCPRouter(t, "fast", "FastMCP memory", fm.URL)
	ctx := t.Context()

	rep, err := conn.Connect(ctx, "default", "fast", provider.ConnectRequest{})
	if err != nil {
		t.Fatalf("connect with FastMCP's defaults: %v", err)
	}
	if got := mustQuery(t, rep.Flow.AuthorizeURL).Get("redirect_uri"); got != base+"/profiles/default/providers/fast/callback" {
		t.Errorf("redirect_uri = %s; want the router's callback", got)
	}
	back := fm.Consent(t, rep.Flow.AuthorizeURL)
	resp, err := http.Get(back.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Connected") {
		t.Fatalf("callback = %d %s", resp.StatusCode, body)
	}
	ts, err := conn.TokenSource("default", "fast")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if code := fm.Call(t, tok.AccessToken); code != http.StatusOK {
		t.Fatalf("the MCP endpoint answered %d with the token; want 200", code)
	}
	fresh, err := ts.ForceRefresh(ctx, tok.AccessToken)
	if err != nil || fresh.AccessToken == tok.AccessToken {
		t.Fatalf("forced rotation: %v, %v; want a new token", fresh, err)
	}
	if code := fm.Call(t, fresh.AccessToken); code != http.StatusOK {
		t.Fatalf("the MCP endpoint answered %d with the rotated token; want 200", code)
	}
	res, err := conn.Disconnect(ctx, "default", "fast")
	if err != nil || !res.Removed || res.Revoked || !strings.Contains(res.NotRevokedSentence("FastMCP memory"), "offers no way to revoke it") {
		t.Fatalf("disconnect = %+v, %v; want removed, not revoked, and said so", res, err)
	}

	// The CLI, on any free loopback port: registered with that port.
	proxy, _ := url.Parse(fm.URL)
	cli := startLoginProcess(t, "--no-browser", "--port", "0", "--provider", "fast="+fm.URL)
	link := cli.link(t, proxy.Scheme+"://"+proxy.Host)
	redirect, _ := url.Parse(mustQuery(t, link).Get("redirect_uri"))
	if redirect.Hostname() != "127.0.0.1" || redirect.Port() == "" {
		t.Errorf("redirect_uri = %s; want a loopback URI with its port", redirect)
	}
	back = fm.Consent(t, link)
	if back.Host != redirect.Host {
		t.Fatalf("FastMCP sent the browser to %v; want %s", back, redirect)
	}
	cli.finish(t, back.String(), "Connected to fast")
}
