package oauth_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/oauthfake"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
)

// A grant's resource (RFC 8707) is kept in the file, and sent with the
// refresh, which a server that requires it refuses without.
func TestFileGrantResource(t *testing.T) {
	const resource = "https://memory.example/mcp"
	ctx := context.Background()
	srv := oauthfake.NewServer(oauthfake.WithResource(resource))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "memconnect.json")
	layout := filestore.Layout{Section: "servers", AccessToken: "token", Fields: "oauth"}
	gs := oauth.NewGrants(filestore.New(path, layout), oauth.WithHTTPClient(srv.Client()))
	tok := srv.IssueGrant("write")
	if _, err := gs.Install(ctx, "mem", tok, oauth.Grant{ClientID: srv.ClientID(), TokenEndpoint: srv.TokenURL(), Resource: resource}); err != nil {
		t.Fatal(err)
	}
	o := testkit.ReadJSON(t, path)["servers"].(map[string]any)["mem"].(map[string]any)["oauth"].(map[string]any)
	if o["resource"] != resource {
		t.Errorf("stored oauth block = %v, want resource %s", o, resource)
	}
	if _, err := gs.TokenSource("mem").ForceRefresh(ctx, tok.AccessToken); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}
