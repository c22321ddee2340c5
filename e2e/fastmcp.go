package e2e

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FastMCPEnv names the environment variable that overrides the directory
// [StartFastMCP] takes npm's fastmcp from; when it is empty,
// scripts/install-fastmcp.sh installs it once into the user's cache.
const FastMCPEnv = "MEMCONNECT_FASTMCP"

// FastMCP is a running MCP server made with npm's fastmcp, its OAuthProxy
// with its default settings in front of an upstream oidc-provider
// (testdata/fastmcp/server.mjs).
type FastMCP struct {
	URL      string // the MCP endpoint
	Upstream *OIDC  // the proxy's own authorization server
}

// StartFastMCP starts a FastMCP server, stopped with the test. It skips
// the test under -short, and fails it when Node.js or the packages cannot
// be had.
func StartFastMCP(t *testing.T) *FastMCP {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipping the FastMCP test in -short mode (it runs Node.js)")
	}
	fastmcp := npmPackage(t, FastMCPEnv, "scripts/install-fastmcp.sh")
	oidc := npmPackage(t, OIDCProviderEnv, "scripts/install-oidc-provider.sh")
	said := runNode(t, "e2e/testdata/fastmcp/server.mjs", []string{"FASTMCP_DIR=" + fastmcp, "OIDC_PROVIDER_DIR=" + oidc}, "mcp", "upstream")
	return &FastMCP{URL: said["mcp"], Upstream: &OIDC{Issuer: said["upstream"]}}
}

var consentTxRE = regexp.MustCompile(`name="transaction_id" value="([^"]+)"`)

// Consent plays the person in a browser from the sign-in link on: the
// proxy's consent page (approved), the upstream provider's sign-in and
// consent, and the proxy's callback, and returns the location the proxy
// sends the browser to at last: the client's redirect URI with the code.
func (f *FastMCP) Consent(t *testing.T, link string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	proxy, _ := url.Parse(f.URL)
	resp, page := browse(t, browser, http.MethodGet, link, nil)
	m := consentTxRE.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("e2e: FastMCP's consent page: %s\n%s", resp.Status, page)
	}
	resp, _ = browse(t, browser, http.MethodPost, proxy.Scheme+"://"+proxy.Host+"/oauth/consent", url.Values{"transaction_id": {string(m[1])}, "action": {"approve"}})
	upstream := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(upstream, f.Upstream.Issuer) {
		t.Fatalf("e2e: FastMCP's consent answered %s, to %q; want the upstream provider", resp.Status, upstream)
	}
	back := f.Upstream.Consent(t, upstream) // the proxy's own callback, with the upstream's code
	if back == nil || back.Host != proxy.Host {
		t.Fatalf("e2e: the upstream provider sent the browser to %v; want the proxy", back)
	}
	resp, _ = browse(t, browser, http.MethodGet, back.String(), nil)
	to, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode/100 != 3 || err != nil {
		t.Fatalf("e2e: FastMCP's callback answered %s, to %q", resp.Status, resp.Header.Get("Location"))
	}
	return to
}

// Call calls the MCP endpoint with token (initialize, JSON-RPC over
// Streamable HTTP) and returns the status: 200 when the token is good.
func (f *FastMCP) Call(t *testing.T, token string) int {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"memconnect-e2e","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, f.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
