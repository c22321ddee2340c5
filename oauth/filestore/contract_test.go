package filestore_test

import (
	"path/filepath"
	"testing"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/filestore"
	"github.com/memconnect/memconnect/oauth/storetest"
)

// The file store keeps the contract every store keeps.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	layout := filestore.Layout{Section: "hosts", AccessToken: "apiKey", Fields: "oauth", Verdict: "oauthRejected"}
	storetest.Run(t, func(t *testing.T) oauth.GrantStore {
		return filestore.New(filepath.Join(t.TempDir(), "honcho.json"), layout)
	})
}
