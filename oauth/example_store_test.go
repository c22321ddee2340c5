package oauth_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/oauthtest"
)

// A grant installed by a sign-in is then kept fresh by the store's token
// source; every process sharing the file uses the same lock.
func ExampleStore_TokenSource() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "memconnect-example")
	defer os.RemoveAll(dir)

	store := oauth.NewStore(filepath.Join(dir, "honcho.json"))
	// What a completed sign-in does with the token response:
	_, err := store.InstallGrant(context.Background(), "hermes", srv.IssueGrant("write"), oauth.InstallOptions{
		ClientID:      srv.ClientID(),
		TokenEndpoint: srv.TokenURL(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := store.TokenSource("hermes").Token()
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
	srv := oauthtest.NewServer()
	defer srv.Close()
	dir, _ := os.MkdirTemp("", "memconnect-example")
	defer os.RemoveAll(dir)

	store := oauth.NewStore(filepath.Join(dir, "honcho.json"))
	if _, err := store.InstallGrant(context.Background(), "hermes", srv.IssueGrant("write"), oauth.InstallOptions{
		ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL(),
	}); err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: &oauth.Transport{Source: store.TokenSource("hermes")}}
	resp, err := client.Get(srv.WhoAmIURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}
