package oauth_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

// exampleLayout is where honcho.json keeps a grant: the host block
// hosts.<key>, with the access token in "apiKey" and the rest in "oauth".
var exampleLayout = filestore.Layout{
	Section: "hosts", AccessToken: "apiKey", Fields: "oauth",
	AccessTokenPrefix: "hch-at-", DefaultScope: "write", RootAPIKey: true,
}

// A grant installed by a sign-in is then kept fresh by its token source;
// every process sharing the file uses the same lock.
func ExampleGrants_TokenSource() {
	srv := honchotest.NewServer()
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "memconnect-example")
	defer os.RemoveAll(dir)

	grants := oauth.NewGrants(filestore.New(filepath.Join(dir, "honcho.json"), exampleLayout))
	// What a completed sign-in does with the token response:
	_, err := grants.Install(context.Background(), "hermes", srv.IssueGrant("write"), oauth.Grant{
		ClientID:      srv.ClientID(),
		TokenEndpoint: srv.TokenURL(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := grants.TokenSource("hermes").Token()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(tok.AccessToken, "hch-at-"), tok.RefreshToken == "")
	// Output: true true
}

// Transport authorizes requests with the grant and, after a 401, forces one
// refresh and retries once.
func ExampleTransport() {
	srv := honchotest.NewServer()
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "memconnect-example")
	defer os.RemoveAll(dir)

	grants := oauth.NewGrants(filestore.New(filepath.Join(dir, "honcho.json"), exampleLayout))
	if _, err := grants.Install(context.Background(), "hermes", srv.IssueGrant("write"), oauth.Grant{
		ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL(),
	}); err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: &oauth.Transport{Source: grants.TokenSource("hermes")}}
	resp, err := client.Get(srv.WhoAmIURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}
