package memconnect_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/render"
	"github.com/rs/zerolog"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

// BenchmarkStatus measures GET status through the whole router — request
// id, access log (into io.Discard at info level), recoverer, guards, body
// limit, routing, the Connector and the Honcho provider reading the profile's
// honcho.json — against a bare chi handler that renders the same status
// body, prepared once, and against the router with a provider whose status
// is in memory. All are mounted under /api/memory in a host router. The
// router's results report their ratio to the bare handler as "x-bare"; no
// timing is asserted.
func BenchmarkStatus(b *testing.B) {
	memory := benchRouter(b)
	stack := fixture.HostRouter(memory)

	rep, err := memory.Connector().Status(b.Context(), "default", "honcho")
	if err != nil || !rep.Connected {
		b.Fatalf("status = %+v, %v", rep, err)
	}
	bareAPI := chi.NewRouter()
	bareAPI.Get("/profiles/{profile}/providers/{provider}/status", func(w http.ResponseWriter, r *http.Request) {
		render.JSON(w, r, rep)
	})
	bare := fixture.HostRouter(bareAPI)

	const target = prefix + fixture.StatusPath
	serve := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			req.Host = "127.0.0.1:8080"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	}
	// The same router with a provider whose status is in memory: what the
	// router itself costs, without the provider's file reads.
	memReg, err := provider.NewRegistry(memProvider{name: "honcho", status: provider.Status{
		Supported: true, Connected: true, Auth: provider.AuthOAuth,
		Token: &provider.TokenInfo{ClientID: "hermes-agent", Scope: "write", ExpiresAt: rep.Token.ExpiresAt},
	}})
	if err != nil {
		b.Fatal(err)
	}
	memRouter, err := memconnect.New(memconnect.Config{Registry: memReg, Profiles: provider.HermesProfiles{Root: b.TempDir()}, Logger: zerolog.New(io.Discard)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { memRouter.Close() })
	noIO := fixture.HostRouter(memRouter)

	// The bare handler runs first, so that the others can report their
	// ratio to it ("x-bare") on their own result line.
	var nsBare float64
	for _, bm := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"router", stack}, {"router-status-in-memory", noIO}} {
		b.Run(bm.name, func(b *testing.B) {
			serve(b, bm.h)
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if bm.name == "bare" {
				nsBare = ns
			} else if nsBare > 0 {
				b.ReportMetric(ns/nsBare, "x-bare")
			}
		})
	}
}

// memProvider is a provider whose status is a value in memory.
type memProvider struct {
	fixture.FakeProvider
	name   string
	status provider.Status
}

func (m memProvider) Name() string { return m.name }
func (m memProvider) AuthMethods() []provider.AuthMethod {
	return []provider.AuthMethod{provider.AuthBrowser}
}
func (m memProvider) Status(context.Context, provider.Profile, *provider.Stores) (provider.Status, error) {
	return m.status, nil
}

// BenchmarkTokenRoute measures POST token through the whole router for a
// fresh grant (no refresh: the token source's cache, then a status read for
// the scope and the issue time) against GET status of the same profile in
// the same run; "x-status" is the ratio. No timing is asserted.
func BenchmarkTokenRoute(b *testing.B) {
	stack := fixture.HostRouter(benchRouter(b))
	var nsStatus float64
	for _, bm := range []struct {
		name, method, path string
	}{
		{"status", http.MethodGet, prefix + fixture.StatusPath},
		{"token", http.MethodPost, prefix + "/profiles/default/providers/honcho/token"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(bm.method, bm.path, nil)
				req.Host = "127.0.0.1:8080"
				w := httptest.NewRecorder()
				stack.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", bm.name, w.Code, w.Body)
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if bm.name == "status" {
				nsStatus = ns
			} else if nsStatus > 0 {
				b.ReportMetric(ns/nsStatus, "x-status")
			}
		})
	}
}

// benchRouter is a router over one profile connected with a grant valid
// for an hour, in a config file written a while ago, as it is between
// sign-ins: the store answers an unchanged, settled file after one stat.
func benchRouter(b *testing.B) *memconnect.Router {
	root := b.TempDir()
	expiry := time.Now().Add(time.Hour).Unix()
	testkit.WriteFile(b, filepath.Join(root, "honcho.json"), fmt.Sprintf(`{"workspace":"hermes","hosts":{"hermes":{`+
		`"apiKey":"hch-at-benchmark-access-token","oauth":{"refreshToken":"hch-rt-benchmark","expiresAt":%d,"obtainedAt":%d,`+
		`"clientId":"hermes-agent","tokenEndpoint":"http://127.0.0.1:1/oauth/token","scope":"write","tokenType":"Bearer"}}}}`, expiry, expiry-3600))
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(root, "honcho.json"), past, past); err != nil {
		b.Fatal(err)
	}
	reg, err := provider.NewRegistry(honcho.New(honcho.WithAuthorizeURL("http://127.0.0.1:1/authorize"), honcho.WithTokenURL("http://127.0.0.1:1/oauth/token")))
	if err != nil {
		b.Fatal(err)
	}
	memory, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: root}, Logger: zerolog.New(io.Discard)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { memory.Close() })
	return memory
}
