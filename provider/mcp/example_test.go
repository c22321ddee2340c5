package mcp_test

import (
	"fmt"
	"log"

	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/provider/mcp"
)

// A registry with Honcho, the Supermemory preset and a host's own server.
func ExampleNew() {
	zep, err := mcp.New("zep", "Zep", "https://mcp.example.com/mcp", mcp.WithAPIKeys())
	if err != nil {
		log.Fatal(err)
	}
	reg, err := provider.NewRegistry(honcho.New(), mcp.Supermemory(), zep)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range reg.List() {
		fmt.Println(p.Name(), p.AuthMethods())
	}
	// Output:
	// honcho [browser device apikey]
	// supermemory [browser apikey]
	// zep [browser apikey]
}
