package authserver_test

import (
	"context"
	"fmt"

	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

func ExampleRevoke() {
	as := honchotest.NewServer()
	defer as.Close()
	tok := as.IssueGrant("write")

	err := authserver.Revoke(context.Background(), nil, as.RevocationURL(), as.ClientID(), tok.RefreshToken, "refresh_token")
	fmt.Println(err, as.Active(tok.RefreshToken), as.Active(tok.AccessToken))
	// Output: <nil> false false
}
