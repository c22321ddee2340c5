package oauthtest_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/memconnect/memconnect/oauth/oauthtest"
)

// An MCP-style memory server asks a client without a token where to get
// one (RFC 9728), and serves one with a token of its authorization server.
func ExampleNewMCPServer() {
	mcp := oauthtest.NewMCPServer()
	defer mcp.Close()

	resp, err := mcp.AS.Client().Post(mcp.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata="))
	// Output: 401 true
}

// A test starts from a grant, as if a person had signed in earlier, and
// uses its access token at a protected resource.
func ExampleServer_IssueGrant() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	tok := srv.IssueGrant("write")

	req, _ := http.NewRequest(http.MethodGet, srv.WhoAmIURL(), nil)
	tok.SetAuthHeader(req)
	resp, err := srv.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status, srv.Active(tok.RefreshToken), srv.Stats().Refreshes)
	// Output: 200 OK true 0
}
