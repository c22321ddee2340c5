package memconnect_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/connid"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

func TestNewConfig(t *testing.T) {
	t.Parallel()
	reg, err := provider.NewRegistry(fixture.FakeProvider{ID: "nooauth"})
	if err != nil {
		t.Fatal(err)
	}
	profiles := provider.HermesProfiles{Root: t.TempDir()}
	tests := []struct {
		name    string
		cfg     memconnect.Config
		wantErr string // "" means New succeeds
	}{
		{"minimal", memconnect.Config{Registry: reg, Profiles: profiles}, ""},
		{"no registry", memconnect.Config{Profiles: profiles}, "Registry is required"},
		{"no profiles", memconnect.Config{Registry: reg}, "Profiles is required"},
		{"callback http", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "http://127.0.0.1:8080/api/memory/"}, ""},
		{"callback https", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "https://app.example/api/memory"}, ""},
		{"callback not a URL", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "127.0.0.1:8080/api"}, "CallbackBaseURL"},
		{"callback ftp", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "ftp://127.0.0.1/api"}, "CallbackBaseURL"},
		{"callback relative", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "/api/memory"}, "CallbackBaseURL"},
		{"callback query", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "http://127.0.0.1/api?x=1"}, "CallbackBaseURL"},
		{"callback user", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "http://u:p@127.0.0.1/api"}, "CallbackBaseURL"},
		{"callback localhost", memconnect.Config{Registry: reg, Profiles: profiles, CallbackBaseURL: "http://localhost:8080/api"}, "127.0.0.1"},
		{"empty profile root", memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{}}, "Config.Profiles: provider: HermesProfiles.Root is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := memconnect.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || r == nil {
					t.Fatalf("New = %v, %v; want a router", r, err)
				}
				if err := r.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestHostRoutesUnaffected(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithSessionToken("session-secret-123"))
	tests := []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"!/healthz", 200, "ok\n"},
		{"!/api/hello", 200, `{"hello":"world"}` + "\n"},
		{"!/nope", 404, "404 page not found\n"}, // the host's own 404, not ours
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			x := e.Do(fixture.Request{Method: "GET", Path: tt.path, NoAuth: true})
			if x.Status != tt.wantStatus || string(x.Body) != tt.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, x.Status, x.Body, tt.wantStatus, tt.wantBody)
			}
			if x.Header.Get("X-Request-Id") != "" {
				t.Errorf("host route got memconnect's middleware (X-Request-Id %q)", x.Header.Get("X-Request-Id"))
			}
		})
	}
}

func TestPanicIsJSON500WithRequestID(t *testing.T) {
	t.Parallel()
	e := fixture.NewEnv(t)
	x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/boom/status", Header: map[string]string{"X-Request-Id": "req-panic-1"}})
	if x.Status != 500 {
		t.Fatalf("status = %d %s, want 500", x.Status, x.Body)
	}
	body := x.JSON(t)
	if body["error"] != "internal" || body["request_id"] != "req-panic-1" || x.Header.Get("X-Request-Id") != "req-panic-1" {
		t.Errorf("body = %v, header id %q; want internal with request id req-panic-1", body, x.Header.Get("X-Request-Id"))
	}
	if strings.Contains(string(x.Body), "boom") {
		t.Errorf("body %s leaks the panic value", x.Body)
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, `"panic":"boom: a provider bug"`) || !strings.Contains(logs, `"request_id":"req-panic-1"`) {
		t.Errorf("log does not record the panic with its request id:\n%s", logs)
	}
}

// TestRouterWithoutMount serves the router at the root of a server, as a
// host may: the callback exemption and the profile checks still work.
func TestRouterWithoutMount(t *testing.T) {
	t.Parallel()
	reg, err := provider.NewRegistry(fixture.FakeProvider{ID: "nooauth"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()},
		SessionToken: "tok-123456789"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tests := []struct {
		target string
		auth   bool
		want   int
	}{
		{"/providers", false, 401},
		{"/providers", true, 200},
		{"/profiles/default/providers/nooauth/callback?state=x", false, 400},
		{"/profiles/%2e%2e/providers/nooauth/status", true, 400},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", tt.target, nil)
		req.Host = "127.0.0.1:8080"
		if tt.auth {
			req.Header.Set("Authorization", "Bearer tok-123456789")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != tt.want {
			t.Errorf("GET %s = %d %s, want %d", tt.target, w.Code, w.Body, tt.want)
		}
	}
	// The routes are fixed: nothing on the Router adds middleware or routes
	// (chi's Use panics once routes exist).
	for _, m := range []string{"Use", "With", "Group", "Route", "Mount", "Handle", "HandleFunc", "Get"} {
		if _, ok := reflect.TypeOf(r).MethodByName(m); ok {
			t.Errorf("*Router has method %s: its routes are not fixed", m)
		}
	}
	// The route table, as chi sees it.
	var routes []string
	if err := chi.Walk(r.Routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 12 {
		t.Errorf("routes = %v, want 12 (10, and the Hermes desktop's 2)", routes)
	}
}

// countingTransport counts the requests it passes on.
type countingTransport struct {
	n    atomic.Int32
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// Config's logger, HTTP client and clock reach the grant engine the router
// creates: a refresh that the injected clock calls due goes through the
// injected client and is logged by the injected logger, and the status
// body's expires_in counts on the injected clock.
func TestConfigReachesTheGrantEngine(t *testing.T) {
	t.Parallel()
	h := fixture.NewHermes(t)
	clock := testkit.NewClock()
	grant := h.AS.IssueGrant("write")
	testkit.WriteJSON(t, filepath.Join(h.Root, "honcho.json"), map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": grant.AccessToken,
		"oauth": map[string]any{"refreshToken": grant.RefreshToken, "expiresAt": clock.Now().Add(time.Hour).Unix(),
			"clientId": h.AS.ClientID(), "tokenEndpoint": h.AS.TokenURL()},
	}}})
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	client := &countingTransport{base: h.AS.Client().Transport}
	r, err := memconnect.New(memconnect.Config{
		Registry:   reg,
		Profiles:   h.Profiles(),
		Logger:     h.Logger,
		HTTPClient: &http.Client{Transport: client},
		Clock:      clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	rep, err := r.Connector().Status(t.Context(), "default", "honcho")
	if err != nil || rep.Token == nil || rep.Token.ExpiresIn != 3600 {
		t.Fatalf("status = %+v, %v; want expires_in 3600 on the injected clock", rep.Token, err)
	}
	ts, err := r.Connector().TokenSource("default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(); err != nil || tok.AccessToken != grant.AccessToken || client.n.Load() != 0 {
		t.Fatalf("Token = %v, %v after %d requests; want the stored token, no request", tok, err, client.n.Load())
	}
	clock.Advance(59 * time.Minute) // inside the refresh window, on the injected clock only
	tok, err := ts.Token()
	if err != nil || tok.AccessToken == grant.AccessToken {
		t.Fatalf("Token after the clock moved = %v, %v; want a rotated token", tok, err)
	}
	if client.n.Load() != 1 || h.AS.Stats().Refreshes != 1 {
		t.Errorf("the refresh made %d requests through the injected client (server saw %d refreshes); want 1", client.n.Load(), h.AS.Stats().Refreshes)
	}
	if !strings.Contains(h.Logs.String(), "oauth: token refreshed") {
		t.Errorf("the injected logger did not see the refresh:\n%s", h.Logs.String())
	}
}

// What New creates, Close ends: the flow manager New made ends its pending
// sign-ins (the flow package's tests show that this frees a loopback
// port) and starts no more. A LoopbackAddr that is no loopback IP literal
// is refused at New.
func TestCloseEndsCreatedFlows(t *testing.T) {
	t.Parallel()
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), CallbackBaseURL: "http://127.0.0.1:9/api/memory"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if f := r.Connector().Flows.Status(context.Background(), connid.ID{Profile: "default", Provider: "honcho"}); f.State != flow.StateError {
		t.Errorf("flow after Close = %s, want error (closed)", f.State)
	}
	if _, err := r.Connector().Connect(t.Context(), "work", "honcho", provider.ConnectRequest{}); !errors.Is(err, flow.ErrClosed) {
		t.Errorf("Connect after Close: %v, want flow.ErrClosed", err)
	}

	if _, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), LoopbackAddr: "localhost:8765"}); err == nil ||
		!strings.Contains(err.Error(), "Config.LoopbackAddr") {
		t.Errorf("New with a LoopbackAddr that is no IP literal: %v, want an error naming it", err)
	}
}
