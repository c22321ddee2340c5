package pgstore_test

import (
	"testing"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/pgstore"
	"github.com/memconnect/memconnect/oauth/storetest"
)

// The PostgreSQL store keeps the contract every store keeps.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) oauth.GrantStore {
		return newStore(t, testPool(t, false), pgstore.Config{})
	})
}
