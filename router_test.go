package memconnect_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/oauth2"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/events"
	"github.com/memconnect/memconnect/internal/testkit"
	"github.com/memconnect/memconnect/internal/testkit/fixture"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

func TestNewConfig(t *testing.T) {
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

func TestListProviders(t *testing.T) {
	e := fixture.NewEnv(t)
	x := e.Do(fixture.Request{Method: "GET", Path: "/providers", Header: map[string]string{"Accept": "application/xml"}})
	if x.Status != 200 || x.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /providers = %d %s %q", x.Status, x.Header.Get("Content-Type"), x.Body)
	}
	want := `{"providers":[` +
		`{"name":"honcho","display_name":"Honcho","auth_methods":["browser","device","apikey"]},` +
		`{"name":"broken","display_name":"Honcho","auth_methods":["browser","device","apikey"]},` +
		`{"name":"nooauth","display_name":"Nooauth","auth_methods":[]},` +
		`{"name":"boom","display_name":"Boom","auth_methods":[]}]}` + "\n" // as registered
	if string(x.Body) != want {
		t.Errorf("body =\n%s\nwant\n%s", x.Body, want)
	}
	if cc := x.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

func TestStatus(t *testing.T) {
	e := fixture.NewEnv(t)
	tests := []struct {
		name string
		path string
		want string
	}{
		{"not connected", fixture.StatusPath,
			`{"provider":"honcho","profile":"default","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
		{"current is default", "/profiles/current/providers/honcho/status",
			`{"provider":"honcho","profile":"default","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
		{"named profile", "/profiles/work/providers/honcho/status",
			`{"provider":"honcho","profile":"work","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
		{"api key", "/profiles/apikey/providers/honcho/status",
			`{"provider":"honcho","profile":"apikey","supported":true,"connected":true,"auth":"apikey","reauth_required":false,"token":null,"flow":null,"health":"ok"}`},
		{"no oauth", "/profiles/default/providers/nooauth/status",
			`{"provider":"nooauth","profile":"default","supported":false,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Do(fixture.Request{Method: "GET", Path: tt.path})
			if x.Status != 200 || strings.TrimSpace(string(x.Body)) != tt.want {
				t.Errorf("GET %s = %d\n%s\nwant 200\n%s", tt.path, x.Status, x.Body, tt.want)
			}
			if strings.Contains(string(x.Body), "plain-api-key") {
				t.Error("the status body holds the API key")
			}
		})
	}
}

func TestConnect(t *testing.T) {
	tests := []struct {
		name         string
		opts         []fixture.EnvOption
		body         string
		wantMethod   flow.Method
		wantRedirect *regexp.Regexp // nil: no redirect_uri
	}{
		{"empty body, callback configured", []fixture.EnvOption{fixture.WithCallback()}, "",
			flow.MethodBrowser, regexp.MustCompile(`^http://127\.0\.0\.1:\d+/api/memory/profiles/default/providers/honcho/callback$`)},
		{"empty object, loopback default", nil, "{}",
			flow.MethodBrowser, regexp.MustCompile(`^http://127\.0\.0\.1:\d+/callback$`)},
		{"loopback asked while callback configured", []fixture.EnvOption{fixture.WithCallback()}, `{"method":"browser","redirect":"loopback","source":"hermes-desktop"}`,
			flow.MethodBrowser, regexp.MustCompile(`^http://127\.0\.0\.1:\d+/callback$`)},
		{"device", nil, `{"method":"device","source":"hermes-cli"}`, flow.MethodDevice, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := fixture.NewEnv(t, tt.opts...)
			rep := e.Connect("current", "honcho", tt.body)
			f := rep.Flow
			if rep.Profile != "default" || rep.Connected || f.State != flow.StatePending || f.Method != tt.wantMethod || f.ID == "" {
				t.Fatalf("connect = %+v, flow %+v", rep, f)
			}
			if f.ExpiresAt.IsZero() {
				t.Errorf("flow.expires_at is missing")
			}
			if tt.wantMethod == flow.MethodDevice {
				if f.UserCode == "" || f.VerificationURI != e.AS.DeviceVerificationURL() || f.RedirectURI != "" {
					t.Errorf("device flow = %+v", f)
				}
				return
			}
			if !tt.wantRedirect.MatchString(f.RedirectURI) {
				t.Errorf("redirect_uri = %q, want a match of %s", f.RedirectURI, tt.wantRedirect)
			}
			u, err := url.Parse(f.AuthorizeURL)
			if err != nil || !strings.HasPrefix(f.AuthorizeURL, e.AS.AuthorizeURL()+"?") {
				t.Fatalf("authorize_url = %q", f.AuthorizeURL)
			}
			q := u.Query()
			if q.Get("redirect_uri") != f.RedirectURI || q.Get("code_challenge_method") != "S256" || len(q.Get("state")) < 40 {
				t.Errorf("authorize query = %v", q)
			}
			// A second connect with the same method joins the pending flow.
			again := e.Connect("default", "honcho", tt.body)
			if again.Flow.ID != f.ID {
				t.Errorf("second connect started flow %s, want the pending %s", again.Flow.ID, f.ID)
			}
		})
	}
}

// checkError asserts that x is the JSON error of c.
func checkError(t *testing.T, x fixture.Exchange, c fixture.ErrorCase) {
	t.Helper()
	if x.Status != c.WantStatus {
		t.Fatalf("%s %s = %d %s, want %d", c.Rq.Method, c.Rq.Path, x.Status, x.Body, c.WantStatus)
	}
	if ct := x.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := x.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store (a 404 or 405 is cacheable by default)", cc)
	}
	body := x.JSON(t)
	if len(body) != 3 || body["error"] != string(c.WantCode) || body["request_id"] != x.Header.Get("X-Request-Id") || body["request_id"] == "" {
		t.Errorf("body = %v, want error %q and request_id %q", body, c.WantCode, x.Header.Get("X-Request-Id"))
	}
	msg, _ := body["message"].(string)
	if msg == "" || !strings.Contains(msg, c.WantMsg) {
		t.Errorf("message = %q, want one containing %q", msg, c.WantMsg)
	}
	if strings.Contains(msg, "/tmp") || strings.Contains(msg, "honcho.json\"") || strings.Contains(msg, "provider:") || strings.Contains(msg, "oauth:") {
		t.Errorf("message %q leaks a path or an internal error", msg)
	}
}

func TestErrors(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithCallback())
	e.Connect("default", "honcho", `{"method":"browser"}`) // for the conflict case
	for _, c := range fixture.ErrorCases() {
		t.Run(c.Name, func(t *testing.T) {
			checkError(t, e.Do(c.Rq), c)
		})
	}
}

func TestMethodNotAllowedAllow(t *testing.T) {
	e := fixture.NewEnv(t)
	tests := []struct{ method, path, want string }{
		{"PUT", "/providers", "GET"},
		{"POST", fixture.StatusPath, "GET"},
		{"GET", "/profiles/default/providers/honcho/connect", "POST"},
		{"GET", "/profiles/default/providers/honcho/connection", "DELETE"},
	}
	for _, tt := range tests {
		x := e.Do(fixture.Request{Method: tt.method, Path: tt.path})
		if x.Status != 405 || x.Header.Get("Allow") != tt.want {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", tt.method, tt.path, x.Status, x.Header.Get("Allow"), tt.want)
		}
	}
}

// TestProfilePathsArrive checks what reaches the server for the tricky
// profile segments: Go's client sends them as written (curl would squash
// "/../" unless given --path-as-is), and the answer is a 400 JSON, not a
// 404 or a redirect to a cleaned path.
func TestProfilePathsArrive(t *testing.T) {
	seen := make(chan string, 1)
	e := fixture.NewEnv(t, fixture.WithWrap(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case seen <- r.RequestURI:
			default:
			}
			next.ServeHTTP(w, r)
		})
	}))
	for _, seg := range []string{"..", "%2e%2e", "%2E%2E", "a/b", "a%2Fb", ".", "%2e", strings.Repeat("x", 65), "a%252Fb"} {
		t.Run(seg, func(t *testing.T) {
			path := prefix + "/profiles/" + seg + "/providers/honcho/status"
			// A raw request line: nothing between us and the server may clean it.
			conn, err := net.Dial("tcp", e.TS.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if got := <-seen; got != path {
				t.Errorf("server saw %q, want %q", got, path)
			}
			var m map[string]any
			if resp.StatusCode != 400 || json.Unmarshal(body, &m) != nil || m["error"] != "invalid_profile" {
				t.Errorf("GET %s = %d %s, want 400 invalid_profile", path, resp.StatusCode, body)
			}
		})
	}
}

func TestSessionToken(t *testing.T) {
	const token = "session-secret-123"
	e := fixture.NewEnv(t, fixture.WithSessionToken(token), fixture.WithCallback())
	tests := []struct {
		name       string
		rq         fixture.Request
		wantStatus int
		wantCode   string // "" for a non-JSON answer
	}{
		{"missing", fixture.Request{Method: "GET", Path: "/providers", NoAuth: true}, 401, "unauthorized"},
		{"wrong", fixture.Request{Method: "GET", Path: fixture.StatusPath, NoAuth: true, Header: map[string]string{"Authorization": "Bearer nope"}}, 401, "unauthorized"},
		{"other scheme", fixture.Request{Method: "GET", Path: fixture.StatusPath, NoAuth: true, Header: map[string]string{"Authorization": "Basic " + token}}, 401, "unauthorized"},
		{"missing on connect", fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/connect", NoAuth: true}, 401, "unauthorized"},
		{"missing on disconnect", fixture.Request{Method: "DELETE", Path: "/profiles/default/providers/honcho/connection", NoAuth: true}, 401, "unauthorized"},
		{"missing on unknown path", fixture.Request{Method: "GET", Path: "/nope", NoAuth: true}, 401, "unauthorized"},
		{"missing on POST callback", fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/callback", NoAuth: true}, 401, "unauthorized"},
		{"right", fixture.Request{Method: "GET", Path: fixture.StatusPath}, 200, ""},
		{"callback exempt", fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/callback?state=x&code=y", NoAuth: true}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Do(tt.rq)
			if x.Status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.rq.Method, tt.rq.Path, x.Status, x.Body, tt.wantStatus)
			}
			if tt.wantCode != "" {
				if got := x.JSON(t)["error"]; got != tt.wantCode {
					t.Errorf("error = %v, want %s", got, tt.wantCode)
				}
				if !strings.HasPrefix(x.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", x.Header.Get("WWW-Authenticate"))
				}
			}
			if strings.Contains(string(x.Body), token) {
				t.Error("the answer holds the session token")
			}
		})
	}
	if strings.Contains(e.Logs.String(), token) {
		t.Error("the log holds the session token")
	}
}

func TestGuards(t *testing.T) {
	e := fixture.NewEnv(t)
	tests := []struct {
		name       string
		rq         fixture.Request
		wantStatus int
	}{
		{"host localhost", fixture.Request{Method: "GET", Path: "/providers", Header: map[string]string{"Host": "localhost:8080"}}, 200},
		{"host ipv6", fixture.Request{Method: "GET", Path: "/providers", Header: map[string]string{"Host": "[::1]:8080"}}, 200},
		{"host rebinding", fixture.Request{Method: "GET", Path: "/providers", Header: map[string]string{"Host": "attacker.example"}}, 403},
		{"host rebinding on callback", fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/callback", Header: map[string]string{"Host": "attacker.example"}}, 403},
		{"origin same host", fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/cancel", Header: map[string]string{"Origin": "http://127.0.0.1:8080"}}, 200},
		{"origin foreign", fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/cancel", Header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"origin null", fixture.Request{Method: "DELETE", Path: "/profiles/default/providers/honcho/connection", Header: map[string]string{"Origin": "null"}}, 403},
		{"origin foreign on GET", fixture.Request{Method: "GET", Path: "/providers", Header: map[string]string{"Origin": "http://evil.example"}}, 200},
		{"no origin (curl)", fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/cancel"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Do(tt.rq)
			if x.Status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.rq.Method, tt.rq.Path, x.Status, x.Body, tt.wantStatus)
			}
			if tt.wantStatus == 403 && x.JSON(t)["error"] != "forbidden" {
				t.Errorf("body = %s, want error forbidden", x.Body)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := fixture.NewEnv(t)
	big := `{"source":"` + strings.Repeat("x", 64<<10) + `"}`
	path := e.Base + "/profiles/default/providers/honcho/connect"
	tests := []struct {
		name    string
		body    io.Reader
		chunked bool
	}{
		{"content length", strings.NewReader(big), false},
		{"chunked", io.MultiReader(strings.NewReader(big)), true}, // no Len: sent chunked
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.chunked != (req.ContentLength <= 0) {
				t.Fatalf("ContentLength = %d, chunked %v", req.ContentLength, tt.chunked)
			}
			resp, err := e.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 413 || m["error"] != "payload_too_large" {
				t.Errorf("POST %d bytes = %d %v (%v), want 413 payload_too_large", len(big), resp.StatusCode, m, err)
			}
		})
	}
	// Just under the limit is read (and then refused for its content).
	x := e.Do(fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/connect", Body: `{"source":"` + strings.Repeat("x", 60<<10) + `"}`})
	if x.Status != 400 || x.JSON(t)["error"] != "invalid_request" {
		t.Errorf("60 KiB body = %d %s, want 400 invalid_request", x.Status, x.Body)
	}
}

func TestPanicIsJSON500WithRequestID(t *testing.T) {
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

func TestCancel(t *testing.T) {
	e := fixture.NewEnv(t)
	rep := e.Connect("default", "honcho", "")
	x := e.Do(fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/cancel"})
	if x.Status != 200 {
		t.Fatalf("cancel = %d %s", x.Status, x.Body)
	}
	var after provider.StatusReport
	if err := json.Unmarshal(x.Body, &after); err != nil {
		t.Fatal(err)
	}
	if after.Flow == nil || after.Flow.ID != rep.Flow.ID || after.Flow.State != flow.StateIdle || after.Flow.Detail != "Cancelled" || after.Flow.AuthorizeURL != "" {
		t.Errorf("after cancel flow = %+v, want flow %s idle, Cancelled, no authorize_url", after.Flow, rep.Flow.ID)
	}
	// The loopback port is free once cancel answered.
	u, _ := url.Parse(rep.Flow.RedirectURI)
	if ln, err := net.Listen("tcp", u.Host); err != nil {
		t.Errorf("loopback port %s still taken after cancel: %v", u.Host, err)
	} else {
		ln.Close()
	}
	// Cancel again: idempotent.
	if x := e.Do(fixture.Request{Method: "POST", Path: "/profiles/default/providers/honcho/cancel"}); x.Status != 200 {
		t.Errorf("second cancel = %d %s", x.Status, x.Body)
	}
	// Now a device flow may start: no conflict.
	if dev := e.Connect("default", "honcho", `{"method":"device"}`); dev.Flow.Method != flow.MethodDevice {
		t.Errorf("device after cancel = %+v", dev.Flow)
	}
}

func TestDisconnectWithoutGrant(t *testing.T) {
	e := fixture.NewEnv(t)
	x := e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/work/providers/honcho/connection"})
	want := `{"disconnected":true,"removed":false,"revoked":false,"revoke_error":null}`
	if x.Status != 200 || strings.TrimSpace(string(x.Body)) != want {
		t.Errorf("DELETE without grant = %d %s, want 200 %s", x.Status, x.Body, want)
	}
}

// callbackHTML asserts that x is an HTML page with status want whose text
// contains every string in has.
func callbackHTML(t *testing.T, x fixture.Exchange, want int, has ...string) {
	t.Helper()
	if x.Status != want {
		t.Errorf("callback = %d, want %d:\n%s", x.Status, want, x.Body)
	}
	if ct := x.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("callback Content-Type = %q, want HTML", ct)
	}
	for k, v := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if x.Header.Get(k) != v {
			t.Errorf("callback %s = %q, want %q", k, x.Header.Get(k), v)
		}
	}
	for _, s := range has {
		if !strings.Contains(string(x.Body), s) {
			t.Errorf("callback page lacks %q:\n%s", s, x.Body)
		}
	}
	if id := x.Header.Get("X-Request-Id"); !strings.Contains(string(x.Body), id) {
		t.Errorf("callback page lacks the request id %q", id)
	}
}

func TestCallbackPages(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithCallback())
	rep := e.Connect("default", "honcho", "")
	state := mustQuery(t, rep.Flow.AuthorizeURL).Get("state")
	cb := "/profiles/default/providers/honcho/callback"
	tests := []struct {
		name   string
		path   string
		status int
		has    []string
	}{
		{"no state", cb + "?code=abc", 400, []string{"This sign-in link is not valid", "connect again"}},
		{"unknown state", cb + "?code=abc&state=forged", 400, []string{"This sign-in link is not valid"}},
		{"other profile", "/profiles/work/providers/honcho/callback?code=abc&state=" + state, 400, []string{"not valid"}},
		{"invalid profile", "/profiles/%3Cscript%3E/providers/honcho/callback?state=" + state, 400, []string{"not valid"}},
		{"unknown provider", "/profiles/default/providers/%3Cscript%3Ealert(1)%3C%2Fscript%3E/callback", 404, []string{"does not name a profile and provider"}},
		{"missing profile", "/profiles/nobody/providers/honcho/callback", 404, []string{"not valid"}},
		{"denied", cb + "?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=" + state, 400, []string{"Sign-in was denied", "connect again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.Do(fixture.Request{Method: "GET", Path: tt.path})
			callbackHTML(t, x, tt.status, tt.has...)
			// One script, the page's own fixed one; nothing of the request.
			if strings.Count(string(x.Body), "<script") > 1 || strings.Contains(string(x.Body), "alert(") || strings.Contains(string(x.Body), "<b>") {
				t.Errorf("page echoes markup:\n%s", x.Body)
			}
			if strings.Contains(string(x.Body), state) {
				t.Error("page echoes the state")
			}
		})
	}
	// The bad callbacks before "denied" left the flow pending; the denial ended it.
	if st := e.Status("default", "honcho"); st.Flow == nil || st.Flow.State != flow.StateError || st.Flow.Detail != "Sign-in was denied" {
		t.Errorf("flow after denial = %+v", st.Flow)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// secrets collects the secret values a test saw, to look for in logs.
type secrets []string

func (s *secrets) add(vs ...string) {
	for _, v := range vs {
		if len(v) >= 8 {
			*s = append(*s, v)
		}
	}
}

// checkLogs fails if the log holds a secret or a query string.
func checkLogs(t *testing.T, logs string, s secrets) {
	t.Helper()
	if logs == "" {
		t.Fatal("nothing was logged")
	}
	for _, v := range s {
		if strings.Contains(logs, v) {
			t.Errorf("the log holds the secret %q", v)
		}
	}
	for _, bad := range []string{"code=", "state=", "hch-at-", "hch-rt-"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log holds %q:\n%s", bad, logs)
		}
	}
	if m := regexp.MustCompile(`"path":"[^"]*\?`).FindString(logs); m != "" {
		t.Errorf("the log holds a path with a query: %s", m)
	}
}

// TestEndToEndCallback runs the whole browser flow in callback mode, as
// examples/server -dev does: connect, consent at the authorization server,
// the browser's GET of the callback, status, disconnect.
func TestEndToEndCallback(t *testing.T) {
	ctx := t.Context()
	const token = "session-secret-e2e"
	e := fixture.NewEnv(t, fixture.WithCallback(), fixture.WithSessionToken(token))
	var seen secrets
	seen.add(token)

	rep := e.Connect("default", "honcho", `{"source":"hermes-desktop"}`)
	f := rep.Flow
	if f.RedirectURI != e.Base+"/profiles/default/providers/honcho/callback" {
		t.Fatalf("redirect_uri = %q", f.RedirectURI)
	}
	seen.add(mustQuery(t, f.AuthorizeURL).Get("state"), mustQuery(t, f.AuthorizeURL).Get("code_challenge"))

	target, err := e.AS.Consent(ctx, e.AS.Client(), f.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	if q := e.AS.LastAuthorizeQuery(); q.Get("source") != "hermes-desktop" || q.Get("config_path") != "~/.hermes/honcho.json" {
		t.Errorf("authorize query = %v", q)
	}
	seen.add(target.Query().Get("code"))
	if !strings.HasPrefix(target.String(), f.RedirectURI+"?") {
		t.Fatalf("consent redirects to %s, want the callback route", target)
	}
	// The browser follows the redirect: no session token.
	x := e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base), NoAuth: true})
	callbackHTML(t, x, 200, "Connected to Honcho", "you can close this window")

	// Replaying the callback changes nothing.
	x = e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base), NoAuth: true})
	callbackHTML(t, x, 400, "not valid")

	st := e.Status("default", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Token == nil || st.Token.ClientID != "hermes-agent" ||
		st.Token.Scope != "write" || st.Token.ExpiresIn <= 0 || st.Flow == nil || st.Flow.State != flow.StateConnected {
		t.Fatalf("status after callback = %+v (flow %+v)", st, st.Flow)
	}
	cfg := filepath.Join(e.Root, "honcho.json")
	blk := testkit.HostBlock(testkit.ReadJSON(t, cfg), "hermes")
	oa, _ := blk["oauth"].(map[string]any)
	rt, _ := oa["refreshToken"].(string)
	at, _ := blk["apiKey"].(string)
	seen.add(rt, at)
	if !strings.HasPrefix(at, "hch-at-") || !e.AS.Active(rt) {
		t.Fatalf("host block = %v", blk)
	}
	if peer := testkit.ReadJSON(t, cfg)["peerName"]; peer != "you" {
		t.Errorf("peerName = %v, want the consent's \"you\" merged into the file", peer)
	}

	x = e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/default/providers/honcho/connection"})
	if want := `{"disconnected":true,"removed":true,"revoked":true,"revoke_error":null}`; x.Status != 200 || strings.TrimSpace(string(x.Body)) != want {
		t.Fatalf("disconnect = %d %s, want %s", x.Status, x.Body, want)
	}
	if e.AS.Active(rt) || e.AS.Active(at) {
		t.Error("the grant is still active at the server after disconnect")
	}
	if st := e.Status("default", "honcho"); st.Connected || st.Auth != "" || st.Token != nil {
		t.Errorf("status after disconnect = %+v", st)
	}
	if blk := testkit.HostBlock(testkit.ReadJSON(t, cfg), "hermes"); blk["apiKey"] != nil || blk["oauth"] != nil {
		t.Errorf("host block after disconnect = %v, want the grant gone", blk)
	}
	if peer := testkit.ReadJSON(t, cfg)["peerName"]; peer != "you" {
		t.Errorf("peerName after disconnect = %v, want it kept", peer)
	}
	// The state and the PKCE challenge are in the authorize_url of the
	// status body, by design; the code and the tokens never are.
	for _, x := range e.Exchanges() {
		for _, v := range []string{token, target.Query().Get("code"), rt, at} {
			if strings.Contains(string(x.Body), v) {
				t.Errorf("%s %s answered the secret %q", x.Req.Method, x.Req.URL.Path, v)
			}
		}
	}
	checkLogs(t, e.Logs.String(), seen)
}

// TestEndToEndLoopback runs the browser flow in loopback mode: the redirect
// URI is a one-shot listener on 127.0.0.1 with an OS-assigned port.
func TestEndToEndLoopback(t *testing.T) {
	ctx := t.Context()
	e := fixture.NewEnv(t)
	var seen secrets
	rep := e.Connect("work", "honcho", `{"redirect":"loopback"}`)
	f := rep.Flow
	u, err := url.Parse(f.RedirectURI)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "8765" || u.Path != "/callback" {
		t.Fatalf("redirect_uri = %q, want http://127.0.0.1:<os port>/callback", f.RedirectURI)
	}
	seen.add(mustQuery(t, f.AuthorizeURL).Get("state"))
	target, err := e.AS.Consent(ctx, e.AS.Client(), f.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	seen.add(target.Query().Get("code"))
	resp, err := http.Get(target.String()) // the browser at the loopback listener
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Connected") {
		t.Fatalf("loopback callback = %d %s", resp.StatusCode, page)
	}
	st := e.Status("work", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Flow == nil || st.Flow.State != flow.StateConnected {
		t.Fatalf("status = %+v, flow %+v", st, st.Flow)
	}
	blk := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(e.Root, "profiles", "work", "honcho.json")), "hermes_work")
	oa, _ := blk["oauth"].(map[string]any)
	rt, _ := oa["refreshToken"].(string)
	at, _ := blk["apiKey"].(string)
	seen.add(rt, at)
	if x := e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/work/providers/honcho/connection"}); x.Status != 200 || x.JSON(t)["revoked"] != true {
		t.Fatalf("disconnect = %d %s", x.Status, x.Body)
	}
	if st := e.Status("work", "honcho"); st.Connected {
		t.Errorf("still connected after disconnect: %+v", st)
	}
	checkLogs(t, e.Logs.String(), seen)
}

func TestEndToEndDevice(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	e := fixture.NewEnv(t)
	rep := e.Connect("default", "honcho", `{"method":"device"}`)
	if err := e.AS.ApproveDevice(rep.Flow.UserCode); err != nil {
		t.Fatal(err)
	}
	f, err := e.Flows.Wait(ctx, flow.Key{Profile: "default", Provider: "honcho"})
	if err != nil || f.State != flow.StateConnected {
		t.Fatalf("Wait = %+v, %v", f, err)
	}
	st := e.Status("default", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Flow.State != flow.StateConnected || st.Flow.UserCode != "" {
		t.Errorf("status = %+v, flow %+v", st, st.Flow)
	}
	blk := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(e.Root, "honcho.json")), "hermes")
	oa, _ := blk["oauth"].(map[string]any)
	var seen secrets
	seen.add(rep.Flow.UserCode)
	seen.add(blk["apiKey"].(string), oa["refreshToken"].(string))
	checkLogs(t, e.Logs.String(), seen)
}

// TestLogsOverEverything runs every error case and a browser flow in one
// environment and checks its log as a whole.
func TestLogsOverEverything(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithCallback())
	rep := e.Connect("default", "honcho", "")
	var seen secrets
	seen.add(mustQuery(t, rep.Flow.AuthorizeURL).Get("state"))
	for _, c := range fixture.ErrorCases() {
		x := e.Do(c.Rq)
		if x.Status != c.WantStatus {
			t.Errorf("%s: %d, want %d", c.Name, x.Status, c.WantStatus)
		}
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	seen.add(target.Query().Get("code"))
	x := e.Do(fixture.Request{Method: "GET", Path: strings.TrimPrefix(target.String(), e.Base)})
	callbackHTML(t, x, 200, "Connected")
	blk := testkit.HostBlock(testkit.ReadJSON(t, filepath.Join(e.Root, "honcho.json")), "hermes")
	seen.add(blk["apiKey"].(string))
	checkLogs(t, e.Logs.String(), seen)
	for _, want := range []string{`"path":"/api/memory/profiles/default/providers/honcho/callback"`, `"status":500`, `"error":"internal"`} {
		if !strings.Contains(e.Logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// TestRouterWithoutMount serves the router at the root of a server, as a
// host may: the callback exemption and the profile checks still work.
func TestRouterWithoutMount(t *testing.T) {
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
	// The route table, as chi sees it.
	var routes []string
	if err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+route)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(routes) != 11 {
		t.Errorf("routes = %v, want 11 (9, and the Hermes desktop's 2)", routes)
	}
}

// TestCallbackHostAllowed checks that the callback base URL's host is
// allowed next to the default loopback names, so the browser's redirect to
// the callback is not refused by the Host guard.
func TestCallbackHostAllowed(t *testing.T) {
	reg, err := provider.NewRegistry(fixture.FakeProvider{ID: "nooauth"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()},
		CallbackBaseURL: "http://memory.localhost:8080/api/memory"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for host, want := range map[string]int{
		"memory.localhost:8080": 200,
		"127.0.0.1:8080":        200,
		"localhost":             200,
		"other.localhost:8080":  403,
	} {
		req := httptest.NewRequest("GET", "/providers", nil)
		req.Host = host
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("Host %s: %d %s, want %d", host, w.Code, w.Body, want)
		}
		if want == 403 && strings.Count(w.Body.String(), "127.0.0.1") != 1 {
			t.Errorf("403 message names a host twice: %s", w.Body)
		}
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
// port) and starts no more. A flow manager the host passed is the host's to
// close.
func TestCloseEndsCreatedFlows(t *testing.T) {
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
	if f := r.Connector().Flows.Status(flow.Key{Profile: "default", Provider: "honcho"}); f.State != flow.StateError {
		t.Errorf("flow after Close = %s, want error (closed)", f.State)
	}
	if _, err := r.Connector().Connect(t.Context(), "work", "honcho", provider.ConnectRequest{}); !errors.Is(err, flow.ErrClosed) {
		t.Errorf("Connect after Close: %v, want flow.ErrClosed", err)
	}

	own := h.Flows(t)
	r2, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), Flows: own})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Connector().Connect(t.Context(), "work", "honcho", provider.ConnectRequest{}); err != nil {
		t.Errorf("Close closed the host's flow manager: %v", err)
	}
}

// A grant another process found rejected shows as reauth_required in this
// router's status, though this process never called the server.
func TestReauthRequiredFromAnotherProcess(t *testing.T) {
	e := fixture.NewEnv(t)
	grant := e.AS.IssueGrant("write")
	path := filepath.Join(e.Root, "honcho.json")
	testkit.WriteJSON(t, path, map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": grant.AccessToken,
		"oauth": map[string]any{"refreshToken": grant.RefreshToken, "expiresAt": time.Now().Add(-time.Minute).Unix(),
			"clientId": e.AS.ClientID(), "tokenEndpoint": e.AS.TokenURL()},
	}}})
	e.AS.RevokeGrant(grant.RefreshToken)
	if st := e.Status("default", "honcho"); !st.Connected || st.ReauthRequired {
		t.Fatalf("status before any refresh = %+v", st)
	}
	// Another process: a Connector of its own over the same home.
	reg, err := provider.NewRegistry(honcho.New(fixture.NewHermes(t).HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	other := &provider.Connector{Registry: reg, Profiles: provider.HermesProfiles{Root: e.Root}, HTTPClient: e.AS.Client()}
	ts, err := other.TokenSource("default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("the other process: %v, want ErrReauthRequired", err)
	}
	if st := e.Status("default", "honcho"); !st.Connected || st.Auth != provider.AuthOAuth || !st.ReauthRequired {
		t.Errorf("status after another process met the rejection = %+v, want reauth_required", st)
	}
}

// Two instances of a host share the Hermes home and a pending-flow store:
// a sign-in started through one completes when the browser's callback
// lands on the other, and both report the profile connected.
func TestCallbackOnAnotherInstance(t *testing.T) {
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	store := &testkit.FlowStore{}
	instance := func() (*memconnect.Router, *fixture.Server) {
		srv := fixture.NewServer(t)
		var r *memconnect.Router
		flows := flow.NewManager(flow.Config{Store: store, HTTPClient: h.AS.Client(), LoopbackAddr: "127.0.0.1:0",
			Resume: func(ctx context.Context, key flow.Key, cfg oauth2.Config) (func(context.Context, *oauth2.Token) error, error) {
				return r.Connector().Resume(ctx, key, cfg)
			}})
		t.Cleanup(func() { flows.Close() })
		r, err = memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), Flows: flows, HTTPClient: h.AS.Client(),
			CallbackBaseURL: "http://127.0.0.1:9/api/memory"}) // the load balancer's address
		if err != nil {
			t.Fatal(err)
		}
		srv.Start(fixture.HostRouter(r))
		return r, srv
	}
	a, _ := instance()
	_, bsrv := instance()

	rep, err := a.Connector().Connect(t.Context(), "default", "honcho", provider.ConnectRequest{})
	if err != nil {
		t.Fatal(err)
	}
	consentOn(t, h, bsrv, rep.Flow.AuthorizeURL) // the browser's callback lands on instance B
	st, err := a.Connector().Status(t.Context(), "default", "honcho")
	if err != nil || !st.Connected || st.Auth != provider.AuthOAuth {
		t.Errorf("status on A = %+v, %v; want connected", st, err)
	}
}

// consentOn approves the sign-in at authorizeURL as the person would and
// sends the browser's callback to the instance srv, which must answer the
// "Connected" page.
func consentOn(t *testing.T, h *fixture.Hermes, srv *fixture.Server, authorizeURL string) {
	t.Helper()
	back, err := h.AS.Consent(t.Context(), h.AS.Client(), authorizeURL, true)
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("no callback with a code: %v %v", back, err)
	}
	cb, err := srv.Client.Get(srv.Base + strings.TrimPrefix(back.Path, fixture.Prefix) + "?" + back.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(cb.Body)
	cb.Body.Close()
	if cb.StatusCode != http.StatusOK || !strings.Contains(string(body), "Connected") {
		t.Fatalf("callback = %d %s", cb.StatusCode, body)
	}
}

// hermesDesktop is a client that speaks only the two routes Hermes' desktop
// build calls, as the Python router documents them: start, which opens the
// system browser on the server's side, and status, polled, both with
// ?profile=P and the body {"state", "detail", "connected", "auth"}.
type hermesDesktop struct {
	t *testing.T
	e *fixture.Env
}

func (d hermesDesktop) call(method, route, profile string) (int, map[string]any) {
	d.t.Helper()
	x := d.e.Do(fixture.Request{Method: method, Path: "/providers/honcho/oauth/" + route + "?profile=" + url.QueryEscape(profile)})
	return x.Status, x.JSON(d.t)
}

// The Hermes desktop works unchanged: its start route opens the sign-in
// page through the host's hook and its status route follows the flow to
// connected, in the Python router's shape; "current" and "" are the default
// profile; errors are the API's.
func TestHermesDesktopRoutes(t *testing.T) {
	opened := make(chan string, 1)
	e := fixture.NewEnv(t, fixture.WithOpenBrowser(func(_ context.Context, u string) error {
		opened <- u
		return nil
	}))
	d := hermesDesktop{t, e}
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

	for _, profile := range []string{"", "current", "default"} {
		code, st := d.call("GET", "status", profile)
		if code != 200 || st["state"] != "idle" || st["connected"] != false || st["auth"] != nil || !slices.Equal(keys(st), []string{"auth", "connected", "detail", "state"}) {
			t.Fatalf("status ?profile=%q = %d %v, want idle, not connected, auth null", profile, code, st)
		}
	}
	code, st := d.call("POST", "start", "work")
	if code != 200 || st["state"] != "pending" || st["connected"] != false || st["authorize_url"] == "" || !slices.Equal(keys(st), []string{"auth", "authorize_url", "connected", "detail", "state"}) {
		t.Fatalf("start = %d %v, want pending with authorize_url", code, st)
	}
	authorizeURL := <-opened
	if authorizeURL != st["authorize_url"] || !strings.HasPrefix(mustQuery(t, authorizeURL).Get("redirect_uri"), "http://127.0.0.1:") {
		t.Fatalf("opened %q, want the loopback flow's authorize_url %q", authorizeURL, st["authorize_url"])
	}
	if code, again := d.call("POST", "start", "work"); code != 200 || again["authorize_url"] != authorizeURL {
		t.Errorf("a second start = %d %v, want the same pending flow", code, again)
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), authorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(target.String()) // the browser at the loopback listener
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, st = d.call("GET", "status", "work"); code != 200 || st["state"] != "connected" || st["connected"] != true || st["auth"] != "oauth" {
		t.Fatalf("status after consent = %d %v, want connected with oauth", code, st)
	}
	if code, st = d.call("GET", "status", "apikey"); st["state"] != "connected" || st["auth"] != "apikey" {
		t.Errorf("status of a profile with an API key = %d %v", code, st)
	}
	for _, tt := range []struct {
		method, path string
		want         int
		code         string
	}{
		{"GET", "/providers/honcho/oauth/status?profile=Work", 400, "invalid_profile"},
		{"GET", "/providers/honcho/oauth/status?profile=missing", 404, "profile_not_found"},
		{"GET", "/providers/nope/oauth/status", 404, "unknown_provider"},
		{"POST", "/providers/nooauth/oauth/start", 404, "unsupported"},
		{"GET", "/providers/honcho/oauth/start", 405, "method_not_allowed"},
	} {
		x := e.Do(fixture.Request{Method: tt.method, Path: tt.path})
		if x.Status != tt.want || x.JSON(t)["error"] != tt.code {
			t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, x.Status, x.Body, tt.want, tt.code)
		}
	}
}

// Without an OpenBrowser hook start opens nothing: the client opens the
// answer's authorize_url. The routes are guarded like every other.
func TestHermesDesktopRoutesGuarded(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithSessionToken("s3cret"))
	if x := e.Do(fixture.Request{Method: "POST", Path: "/providers/honcho/oauth/start", NoAuth: true}); x.Status != 401 {
		t.Errorf("start without the session token = %d", x.Status)
	}
	x := e.Do(fixture.Request{Method: "POST", Path: "/providers/honcho/oauth/start?profile=work"})
	if st := x.JSON(t); x.Status != 200 || st["state"] != "pending" || st["authorize_url"] == nil {
		t.Errorf("start = %d %s", x.Status, x.Body)
	}
}

// sseEvent is one event read from a stream.
type sseEvent struct{ id, kind, data string }

// openStream GETs the events of profile/honcho with the session token and
// lastID (if not ""), and returns the events as they come.
func openStream(t *testing.T, e *fixture.Env, profile, lastID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Base+"/profiles/"+profile+"/providers/honcho/events", nil)
	if e.Token != "" {
		req.Header.Set("Authorization", "Bearer "+e.Token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("events = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				if ev.kind != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return out
}

func nextEvent(t *testing.T, c <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return sseEvent{}
}

// The events route streams a connect as it happens: the flow pending, the
// grant stored, the flow connected; a disconnect; a reconnecting client
// resumes after the last id it saw. It is guarded like every route, and no
// event holds a token.
func TestEventStream(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithSessionToken("s3cret"))
	if x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/work/providers/honcho/events", NoAuth: true}); x.Status != 401 {
		t.Fatalf("events without the session token = %d", x.Status)
	}
	if x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/nobody/providers/honcho/events"}); x.Status != 404 || x.JSON(t)["error"] != "profile_not_found" {
		t.Fatalf("events of a missing profile = %d %s", x.Status, x.Body)
	}
	if x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/work/providers/honcho/events", Header: map[string]string{"Last-Event-ID": "x"}}); x.Status != 400 {
		t.Fatalf("a bad Last-Event-ID = %d", x.Status)
	}
	stream := openStream(t, e, "work", "")
	rep := e.Connect("work", "honcho", `{"redirect":"loopback"}`)
	pending := nextEvent(t, stream)
	if pending.kind != "flow" || !strings.Contains(pending.data, `"state":"pending"`) || !strings.Contains(pending.data, `"id":"`+rep.Flow.ID+`"`) ||
		!strings.Contains(pending.data, `"authorize_url":"`+rep.Flow.AuthorizeURL+`"`) {
		t.Fatalf("first event = %+v, want the pending flow", pending)
	}
	target, err := e.AS.Consent(t.Context(), e.AS.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(target.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	connected := nextEvent(t, stream)
	if connected.kind != "connection" || connected.data != `{"connection":"connected"}` {
		t.Fatalf("second event = %+v, want connected", connected)
	}
	done := nextEvent(t, stream)
	if done.kind != "flow" || !strings.Contains(done.data, `"state":"connected"`) {
		t.Fatalf("third event = %+v, want the flow connected", done)
	}
	// A client that saw the first event resumes after it.
	resumed := openStream(t, e, "work", pending.id)
	for _, want := range []sseEvent{connected, done} {
		if got := nextEvent(t, resumed); got != want {
			t.Errorf("resumed: %+v, want %+v", got, want)
		}
	}
	if x := e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/work/providers/honcho/connection"}); x.Status != 200 {
		t.Fatalf("disconnect = %d", x.Status)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"disconnected"}` {
		t.Errorf("after disconnect: %+v", ev)
	}
	for _, ev := range []sseEvent{pending, connected, done} {
		if strings.Contains(ev.data, "hch-at-") || strings.Contains(ev.data, "hch-rt-") || strings.Contains(ev.data, "verifier") {
			t.Errorf("an event holds a secret: %+v", ev)
		}
	}
}

// A grant stored, refreshed and removed by another process sharing the
// config file shows up on the stream as it happens.
func TestEventStreamOtherProcess(t *testing.T) {
	e := fixture.NewEnv(t)
	stream := openStream(t, e, "work", "")
	home := filepath.Join(e.Root, "profiles", "work")
	loc, err := honcho.New().GrantLocation(provider.Profile{Name: "work", Home: home, DefaultHome: e.Root})
	if err != nil {
		t.Fatal(err)
	}
	// The other process: its own store over the same file.
	other := oauth.NewGrants(oauth.NewFileStore(loc.WritePath, loc.Layout), oauth.WithHTTPClient(e.AS.Client()))
	tok := e.AS.IssueGrant("write")
	if _, err := other.Install(t.Context(), loc.Host, tok, oauth.Grant{ClientID: e.AS.ClientID(), TokenEndpoint: e.AS.TokenURL(), TokenType: "Bearer"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"connected"}` {
		t.Fatalf("after another process stored a grant: %+v", ev)
	}
	if _, err := other.TokenSource(loc.Host).ForceRefresh(t.Context(), tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"refreshed"}` {
		t.Fatalf("after another process refreshed: %+v", ev)
	}
	// The server rejects the grant when the other process next refreshes.
	cr, err := oauth.NewFileStore(loc.WritePath, loc.Layout).Credentials(t.Context(), loc.Host)
	if err != nil || cr.Grant == nil {
		t.Fatal(err)
	}
	e.AS.RevokeGrant(cr.Grant.RefreshToken)
	if _, err := other.TokenSource(loc.Host).ForceRefresh(t.Context(), cr.Grant.AccessToken); !errors.Is(err, oauth.ErrReauthRequired) {
		t.Fatalf("refresh of a revoked grant: %v", err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"reauth_required"}` {
		t.Fatalf("after the server rejected the grant: %+v", ev)
	}
	// A refresh through this server that fails for a while (the server
	// unavailable): refresh_failed, and the token in hand is kept.
	other2 := oauth.NewGrants(oauth.NewFileStore(loc.WritePath, loc.Layout), oauth.WithHTTPClient(e.AS.Client()))
	tok2 := e.AS.IssueGrant("write")
	tok2.ExpiresIn = 60 // in the refresh window
	if _, err := other2.Install(t.Context(), loc.Host, tok2, oauth.Grant{ClientID: e.AS.ClientID(), TokenEndpoint: e.AS.TokenURL(), TokenType: "Bearer"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"connected"}` {
		t.Fatalf("after another process stored a new grant: %+v", ev)
	}
	e.AS.FailNextTokenRequests(1, http.StatusBadRequest, "temporarily_unavailable")
	ts, err := e.Router.Connector().TokenSource("work", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ts.Token(); err != nil || got.AccessToken != tok2.AccessToken {
		t.Fatalf("Token while the server is unavailable = %v", err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"refresh_failed"}` {
		t.Fatalf("after a failed refresh: %+v", ev)
	}
	if _, err := other.Remove(t.Context(), loc.Host); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"disconnected"}` {
		t.Fatalf("after another process removed the grant: %+v", ev)
	}
}

// Open streams are capped: one too many is a 503 that says why. (That a
// closed stream frees its place is the bus's test.)
func TestEventStreamCap(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithMaxStreams(1))
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Base+"/profiles/work/providers/honcho/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first stream: %v %v", resp, err)
	}
	x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/events"})
	if x.Status != 503 || x.JSON(t)["error"] != "unavailable" || !strings.Contains(string(x.Body), "event streams") {
		t.Fatalf("a stream too many = %d %s", x.Status, x.Body)
	}
	cancel()
	resp.Body.Close()
}

// A client that falls too far behind gets a final "dropped" event and the
// stream ends: here one that resumes after more events than a stream may
// hold.
func TestEventStreamDropsSlowClient(t *testing.T) {
	e := fixture.NewEnv(t)
	key := flow.Key{Profile: "work", Provider: "honcho"}
	for range events.Buffer + 10 {
		e.Router.Events().Publish(events.Event{Key: key, Kind: events.KindConnection, Connection: events.Refreshed})
	}
	stream := openStream(t, e, "work", "1")
	n := 0
	for ev := range stream {
		if ev.kind == "dropped" {
			if n != events.Buffer || !strings.Contains(ev.data, "read the status") {
				t.Errorf("dropped after %d events (%s), want %d", n, ev.data, events.Buffer)
			}
			return
		}
		n++
	}
	t.Fatalf("the stream ended after %d events without saying it dropped the client", n)
}

// An idle stream sends a heartbeat comment, as often as configured.
func TestEventStreamHeartbeat(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithEventHeartbeat(20*time.Millisecond))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.Base+"/profiles/work/providers/honcho/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == ": heartbeat" {
			return
		}
	}
	t.Fatalf("no heartbeat before the stream ended: %v", sc.Err())
}

// A host hook that fails with the URL in its error does not put the URL's
// state into the log.
func TestHermesOpenBrowserErrorLogged(t *testing.T) {
	e := fixture.NewEnv(t, fixture.WithOpenBrowser(func(_ context.Context, u string) error {
		return fmt.Errorf("cannot open %s", u)
	}))
	x := e.Do(fixture.Request{Method: "POST", Path: "/providers/honcho/oauth/start?profile=work"})
	st := x.JSON(t)
	if x.Status != 200 || !strings.Contains(fmt.Sprint(st["detail"]), "yourself") {
		t.Fatalf("start = %d %s", x.Status, x.Body)
	}
	state := mustQuery(t, fmt.Sprint(st["authorize_url"])).Get("state")
	if logs := e.Logs.String(); !strings.Contains(logs, "could not open the sign-in page") || strings.Contains(logs, state) {
		t.Errorf("the log lacks the warning or holds the state:\n%s", logs)
	}
}
