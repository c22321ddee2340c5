package honcho_test

import (
	"context"
	"fmt"
	"os"

	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

func ExampleHostKey() {
	fmt.Println(honcho.HostKey("default"))
	fmt.Println(honcho.HostKey("work"))
	fmt.Println(honcho.HostKey("a.b"))
	// Output:
	// hermes
	// hermes_work
	// hermes_a_b
}

func ExampleFromEnv() {
	env := map[string]string{
		"HONCHO_OAUTH_DASHBOARD": "https://dashboard.example.com",
		"HONCHO_OAUTH_TOKEN_URL": "https://honcho.example.com/oauth/token",
	}
	opts, err := honcho.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	home, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(home)
	ep, err := honcho.New(opts...).Endpoints(context.Background(), provider.Profile{Name: "default", Home: home, DefaultHome: home})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ep.AuthorizeURL)
	fmt.Println(ep.TokenURL)
	fmt.Println(ep.DeviceAuthURL)

	_, err = honcho.FromEnv(func(k string) (string, bool) { return "not a url", k == "HONCHO_OAUTH_TOKEN_URL" })
	fmt.Println(err)
	// Output:
	// https://dashboard.example.com/authorize
	// https://honcho.example.com/oauth/token
	// https://honcho.example.com/oauth/device_authorization
	// honcho: HONCHO_OAUTH_TOKEN_URL is not an absolute http(s) URL
}
