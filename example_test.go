package memconnect_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/provider/honcho/honchotest"
)

// A host web server mounts the router under a prefix of its own, next to
// its other routes.
func ExampleNew() {
	hermesHome, err := os.MkdirTemp("", "hermes-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(hermesHome)

	registry, err := provider.NewRegistry(honcho.New())
	if err != nil {
		log.Fatal(err)
	}
	memory, err := memconnect.New(memconnect.Config{
		Registry: registry,
		Profiles: provider.HermesProfiles{Root: hermesHome},
		Logger:   zerolog.Nop(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer memory.Close() // on shutdown: ends pending flows, frees their ports

	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	r.Mount("/api/memory", memory)

	srv := httptest.NewServer(r) // on 127.0.0.1, which the Host guard allows
	defer srv.Close()

	for _, path := range []string{"/api/memory/providers", "/api/memory/profiles/default/providers/honcho/status"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s", resp.StatusCode, body)
	}
	// Output:
	// 200 {"providers":[{"name":"honcho","display_name":"Honcho","auth_methods":["browser","device","apikey"]}]}
	// 200 {"provider":"honcho","profile":"default","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}
}

// With a session token, every route but the OAuth callback needs
// "Authorization: Bearer <token>".
func ExampleConfig_sessionToken() {
	registry, err := provider.NewRegistry(honcho.New())
	if err != nil {
		log.Fatal(err)
	}
	memory, err := memconnect.New(memconnect.Config{
		Registry:     registry,
		Profiles:     provider.HermesProfiles{Root: os.TempDir()},
		SessionToken: "correct-horse-battery-staple",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer memory.Close()
	srv := httptest.NewServer(memory)
	defer srv.Close()

	for _, token := range []string{"", "correct-horse-battery-staple"} {
		req, _ := http.NewRequest("GET", srv.URL+"/providers", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 401
	// 200
}

// An agent in the same process as the router gets a profile's token source
// from the router's Connector: the one every caller shares for that
// honcho.json, refreshing under the file lock the Python agent also takes.
func ExampleRouter_Connector() {
	as := honchotest.NewServer() // stands in for Honcho
	defer as.Close()
	hermesHome, err := os.MkdirTemp("", "hermes-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(hermesHome)
	// The default profile signed in earlier (by the Connect page, the CLI or
	// the Python agent); its access token expires in a minute.
	grant := as.IssueGrant("write")
	config := fmt.Sprintf(`{"hosts":{"hermes":{"apiKey":%q,"oauth":{"refreshToken":%q,"expiresAt":%d,`+
		`"clientId":%q,"tokenEndpoint":%q}}}}`,
		grant.AccessToken, grant.RefreshToken, time.Now().Add(time.Minute).Unix(), as.ClientID(), as.TokenURL())
	if err := os.WriteFile(filepath.Join(hermesHome, "honcho.json"), []byte(config), 0o600); err != nil {
		log.Fatal(err)
	}

	registry, err := provider.NewRegistry(honcho.New(honcho.WithTokenURL(as.TokenURL())))
	if err != nil {
		log.Fatal(err)
	}
	memory, err := memconnect.New(memconnect.Config{
		Registry:   registry,
		Profiles:   provider.HermesProfiles{Root: hermesHome},
		HTTPClient: as.Client(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer memory.Close()

	ts, err := memory.Connector().TokenSource("default", honcho.Name)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := ts.Token() // inside the refresh window: rotated and stored
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken != grant.AccessToken, as.Stats().Refreshes)
	client := &http.Client{Transport: &oauth.Transport{Source: ts}} // a 401 forces one refresh
	resp, err := client.Get(as.WhoAmIURL())
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// true 1
	// 200 OK
}
