package memconnect_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
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
	flows := oauth.NewFlowManager() // closed on shutdown: ends pending flows, frees their ports
	defer flows.Close()

	memory, err := memconnect.New(memconnect.Config{
		Registry: registry,
		Profiles: provider.HermesProfiles{Root: hermesHome},
		Flows:    flows,
		Logger:   zerolog.Nop(),
	})
	if err != nil {
		log.Fatal(err)
	}

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
	// 200 {"providers":[{"name":"honcho","display_name":"Honcho","auth_methods":["browser","device"]}]}
	// 200 {"provider":"honcho","profile":"default","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}
}

// With a session token, every route but the OAuth callback needs
// "Authorization: Bearer <token>".
func ExampleConfig_sessionToken() {
	registry, err := provider.NewRegistry(honcho.New())
	if err != nil {
		log.Fatal(err)
	}
	flows := oauth.NewFlowManager()
	defer flows.Close()
	memory, err := memconnect.New(memconnect.Config{
		Registry:     registry,
		Profiles:     provider.HermesProfiles{Root: os.TempDir()},
		Flows:        flows,
		SessionToken: "correct-horse-battery-staple",
	})
	if err != nil {
		log.Fatal(err)
	}
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
