package oauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/oauthtest"
	"golang.org/x/oauth2"
)

// A browser sign-in through the loopback listener. The in-process server
// approves at once, so an http.Client following redirects plays the
// browser.
func ExampleFlowManager() {
	as := oauthtest.NewServer(oauthtest.WithAutoApprove())
	defer as.Close()

	// Production code keeps the default loopback address, 127.0.0.1:8765.
	flows := oauth.NewFlowManager(oauth.WithLoopbackAddr("127.0.0.1:0"))
	defer flows.Close()

	key := oauth.FlowKey{Profile: "default", Provider: "honcho"}
	f, err := flows.Start(context.Background(), oauth.FlowRequest{
		Key:        key,
		Method:     oauth.MethodBrowser,
		Redirect:   oauth.RedirectLoopback,
		Config:     oauth2.Config{ClientID: as.ClientID(), Endpoint: as.Endpoint(), Scopes: []string{"write"}},
		AuthParams: url.Values{"source": {"hermes-cli"}, "config_path": {oauth.DisplayPath("/home/alice/.hermes/honcho.json", "/home/alice")}},
		Complete: func(ctx context.Context, tok *oauth2.Token) error {
			fmt.Println("storing the grant; refresh token issued:", tok.RefreshToken != "")
			return nil // a real Complete calls Store.InstallGrant
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.State, f.Method)

	resp, err := http.Get(f.AuthorizeURL) // the person's browser
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("callback page:", resp.StatusCode)

	f, err = flows.Wait(context.Background(), key)
	fmt.Println(f.State, err)
	// Output:
	// pending browser
	// storing the grant; refresh token issued: true
	// callback page: 200
	// connected <nil>
}

// A device sign-in: show the user code and the link, then wait.
func ExampleFlowManager_device() {
	as := oauthtest.NewServer()
	defer as.Close()
	md, err := oauth.Discover(context.Background(), nil, as.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := oauth2.Config{ClientID: as.ClientID(), Scopes: []string{"write"}}
	md.Fill(&cfg.Endpoint, nil)

	flows := oauth.NewFlowManager()
	defer flows.Close()
	key := oauth.FlowKey{Profile: "work", Provider: "honcho"}
	f, err := flows.Start(context.Background(), oauth.FlowRequest{
		Key:             key,
		Method:          oauth.MethodDevice,
		Config:          cfg,
		DeviceSupported: md.SupportsDeviceFlow(),
		Complete:        func(context.Context, *oauth2.Token) error { return nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.State, f.UserCode != "", f.VerificationURI == as.DeviceVerificationURL())

	_ = as.ApproveDevice(f.UserCode) // the person, on another device
	f, err = flows.Wait(context.Background(), key)
	fmt.Println(f.State, err)
	// Output:
	// pending true true
	// connected <nil>
}

func ExampleDisplayPath() {
	fmt.Println(oauth.DisplayPath("/home/alice/.hermes/profiles/work/honcho.json", "/home/alice"))
	fmt.Println(oauth.DisplayPath("/etc/hermes/honcho.json", "/home/alice"))
	// Output:
	// ~/.hermes/profiles/work/honcho.json
	// honcho.json
}

// The router's callback route hands the query to Callback and renders the
// result for the person.
func ExampleWriteCallbackPage() {
	flows := oauth.NewFlowManager()
	defer flows.Close()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := oauth.FlowKey{Profile: "default", Provider: "honcho"} // from the route
		f, err := flows.Callback(r.Context(), key, r.URL.Query())
		oauth.WriteCallbackPage(w, f, err)
	})
	_ = handler
}
