package flow_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/oauth/authserver"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/oauth/oauthtest"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

// A browser sign-in through the loopback listener. The in-process server
// approves at once, so an http.Client following redirects plays the
// browser.
func ExampleManager() {
	as := honchotest.NewServer(oauthtest.WithAutoApprove())
	defer as.Close()

	// Production code keeps the default loopback address, 127.0.0.1:8765.
	flows := flow.NewManager(flow.Config{LoopbackAddr: "127.0.0.1:0"})
	defer flows.Close()

	key := connid.ID{Profile: "default", Provider: "honcho"}
	f, err := flows.Start(context.Background(), flow.Request{
		Key:        key,
		Method:     flow.MethodBrowser,
		Redirect:   flow.RedirectLoopback,
		Config:     oauth2.Config{ClientID: as.ClientID(), Endpoint: as.Endpoint(), Scopes: []string{"write"}},
		AuthParams: url.Values{"source": {"hermes-cli"}},
		Complete: func(ctx context.Context, tok *oauth2.Token) error {
			fmt.Println("storing the grant; refresh token issued:", tok.RefreshToken != "")
			return nil // a real Complete calls oauth.Grants.Install
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

// A device sign-in: show the user code and the link, then wait. The wait
// is x/oauth2's polling interval (1 s at least), so this example is
// compiled, not run; the package's device tests check the same steps in a
// testing/synctest bubble, where the interval takes no time.
func ExampleManager_device() {
	as := honchotest.NewServer()
	defer as.Close()
	md, err := authserver.Discover(context.Background(), nil, as.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := oauth2.Config{ClientID: as.ClientID(), Scopes: []string{"write"}}
	md.Fill(&cfg.Endpoint, nil)

	flows := flow.NewManager(flow.Config{})
	defer flows.Close()
	key := connid.ID{Profile: "work", Provider: "honcho"}
	f, err := flows.Start(context.Background(), flow.Request{
		Key:             key,
		Method:          flow.MethodDevice,
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
	fmt.Println(f.State, err) // pending true true, then connected <nil>
}

// A host's callback route hands the query to Callback and shows the
// result to the person, here with the default page. A link with an
// unknown state changes nothing and says so.
func ExamplePlainPage() {
	flows := flow.NewManager(flow.Config{})
	defer flows.Close()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := connid.ID{Profile: "default", Provider: "honcho"} // from the route
		f, err := flows.Callback(r.Context(), key, r.URL.Query())
		flow.PlainPage(w, f, err, "Honcho")
	})
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback?state=forged&code=x", nil))
	fmt.Println(rec.Code, strings.Contains(rec.Body.String(), "This sign-in link is not valid"))
	// Output: 400 true
}
