package authserver_test

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

func ExampleDiscover() {
	as := honchotest.NewServer()
	defer as.Close()

	md, err := authserver.Discover(context.Background(), nil, as.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Configured endpoints win; discovery fills the rest.
	e := oauth2.Endpoint{TokenURL: as.TokenURL()}
	var revocation string
	md.Fill(&e, &revocation)
	fmt.Println(strings.TrimPrefix(e.AuthURL, as.URL), strings.TrimPrefix(revocation, as.URL), md.SupportsDeviceFlow())
	// Output: /authorize /oauth/revoke true
}
