package memconnect_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/handlers"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
)

const statusPath = "/profiles/default/providers/honcho/status"

func TestNewConfig(t *testing.T) {
	reg, err := provider.NewRegistry(fakeProvider{name: "nooauth"})
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Flows == nil {
				flows := oauth.NewFlowManager()
				t.Cleanup(func() { flows.Close() })
				tt.cfg.Flows = flows
			}
			r, err := memconnect.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || r == nil {
					t.Fatalf("New = %v, %v; want a router", r, err)
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
	e := newEnv(t, withSessionToken("session-secret-123"))
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
			x := e.do(request{method: "GET", path: tt.path, noAuth: true})
			if x.status != tt.wantStatus || string(x.body) != tt.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, x.status, x.body, tt.wantStatus, tt.wantBody)
			}
			if x.header.Get("X-Request-Id") != "" {
				t.Errorf("host route got memconnect's middleware (X-Request-Id %q)", x.header.Get("X-Request-Id"))
			}
		})
	}
}

func TestListProviders(t *testing.T) {
	e := newEnv(t)
	x := e.do(request{method: "GET", path: "/providers", header: map[string]string{"Accept": "application/xml"}})
	if x.status != 200 || x.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /providers = %d %s %q", x.status, x.header.Get("Content-Type"), x.body)
	}
	want := `{"providers":[` +
		`{"name":"boom","display_name":"Boom","auth_methods":[]},` +
		`{"name":"broken","display_name":"Honcho","auth_methods":["browser","device"]},` +
		`{"name":"honcho","display_name":"Honcho","auth_methods":["browser","device"]},` +
		`{"name":"nooauth","display_name":"Nooauth","auth_methods":[]}]}` + "\n"
	if string(x.body) != want {
		t.Errorf("body =\n%s\nwant\n%s", x.body, want)
	}
	if cc := x.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		path string
		want string
	}{
		{"not connected", statusPath,
			`{"provider":"honcho","profile":"default","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
		{"current is default", "/profiles/current/providers/honcho/status",
			`{"provider":"honcho","profile":"default","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
		{"named profile", "/profiles/work/providers/honcho/status",
			`{"provider":"honcho","profile":"work","supported":true,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
		{"api key", "/profiles/apikey/providers/honcho/status",
			`{"provider":"honcho","profile":"apikey","supported":true,"connected":true,"auth":"apikey","reauth_required":false,"token":null,"flow":null}`},
		{"no oauth", "/profiles/default/providers/nooauth/status",
			`{"provider":"nooauth","profile":"default","supported":false,"connected":false,"auth":null,"reauth_required":false,"token":null,"flow":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.do(request{method: "GET", path: tt.path})
			if x.status != 200 || strings.TrimSpace(string(x.body)) != tt.want {
				t.Errorf("GET %s = %d\n%s\nwant 200\n%s", tt.path, x.status, x.body, tt.want)
			}
			if strings.Contains(string(x.body), "plain-api-key") {
				t.Error("the status body holds the API key")
			}
		})
	}
}

func TestConnect(t *testing.T) {
	tests := []struct {
		name         string
		opts         []envOption
		body         string
		wantMethod   oauth.FlowMethod
		wantRedirect *regexp.Regexp // nil: no redirect_uri
	}{
		{"empty body, callback configured", []envOption{withCallback()}, "",
			oauth.MethodBrowser, regexp.MustCompile(`^http://127\.0\.0\.1:\d+/api/memory/profiles/default/providers/honcho/callback$`)},
		{"empty object, loopback default", nil, "{}",
			oauth.MethodBrowser, regexp.MustCompile(`^http://127\.0\.0\.1:\d+/callback$`)},
		{"loopback asked while callback configured", []envOption{withCallback()}, `{"method":"browser","redirect":"loopback","source":"hermes-desktop"}`,
			oauth.MethodBrowser, regexp.MustCompile(`^http://127\.0\.0\.1:\d+/callback$`)},
		{"device", nil, `{"method":"device","source":"hermes-cli"}`, oauth.MethodDevice, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			rep := e.connect("current", "honcho", tt.body)
			f := rep.Flow
			if rep.Profile != "default" || rep.Connected || f.State != oauth.FlowPending || f.Method != tt.wantMethod || f.ID == "" {
				t.Fatalf("connect = %+v, flow %+v", rep, f)
			}
			if f.ExpiresAt.IsZero() {
				t.Errorf("flow.expires_at is missing")
			}
			if tt.wantMethod == oauth.MethodDevice {
				if f.UserCode == "" || f.VerificationURI != e.as.DeviceVerificationURL() || f.RedirectURI != "" {
					t.Errorf("device flow = %+v", f)
				}
				return
			}
			if !tt.wantRedirect.MatchString(f.RedirectURI) {
				t.Errorf("redirect_uri = %q, want a match of %s", f.RedirectURI, tt.wantRedirect)
			}
			u, err := url.Parse(f.AuthorizeURL)
			if err != nil || !strings.HasPrefix(f.AuthorizeURL, e.as.AuthorizeURL()+"?") {
				t.Fatalf("authorize_url = %q", f.AuthorizeURL)
			}
			q := u.Query()
			if q.Get("redirect_uri") != f.RedirectURI || q.Get("code_challenge_method") != "S256" || len(q.Get("state")) < 40 {
				t.Errorf("authorize query = %v", q)
			}
			// A second connect with the same method joins the pending flow.
			again := e.connect("default", "honcho", tt.body)
			if again.Flow.ID != f.ID {
				t.Errorf("second connect started flow %s, want the pending %s", again.Flow.ID, f.ID)
			}
		})
	}
}

// errorCase is a request answered with an error of the API.
type errorCase struct {
	name       string
	rq         request
	wantStatus int
	wantCode   handlers.Code
	wantMsg    string // a substring of the message; "" means any
}

// errorCases are requests, for an env without session token and with a
// callback URL, answered with every error code of DESIGN.md and the
// router's own (not_found, method_not_allowed, payload_too_large). The
// conflict case needs a browser flow pending for default/honcho first.
func errorCases() []errorCase {
	long := strings.Repeat("a", 65)
	return []errorCase{
		{"invalid_request bad method", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"method":"pigeon"}`},
			400, handlers.CodeInvalidRequest, `"method" must be "browser" or "device"`},
		{"invalid_request unknown field", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"methd":"browser"}`},
			400, handlers.CodeInvalidRequest, `The field "methd" is not known`},
		{"invalid_request wrong type", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"method":5}`},
			400, handlers.CodeInvalidRequest, `"method" must be a JSON string`},
		{"invalid_request bad JSON", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"method":`},
			400, handlers.CodeInvalidRequest, "not valid JSON"},
		{"invalid_request trailing data", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{} {}`},
			400, handlers.CodeInvalidRequest, "nothing after it"},
		{"invalid_request not JSON", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `method=device`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
			400, handlers.CodeInvalidRequest, "Content-Type: application/json"},
		{"invalid_request redirect for device", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"method":"device","redirect":"loopback"}`},
			400, handlers.CodeInvalidRequest, "browser method only"},
		{"invalid_request bad source", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"source":"<script>"}`},
			400, handlers.CodeInvalidRequest, `"source"`},
		{"invalid_profile uppercase", request{method: "GET", path: "/profiles/Work/providers/honcho/status"},
			400, handlers.CodeInvalidProfile, "profile name is not valid"},
		{"invalid_profile dot dot", request{method: "GET", path: "/profiles/../providers/honcho/status"},
			400, handlers.CodeInvalidProfile, ""},
		{"invalid_profile escaped dot dot", request{method: "GET", path: "/profiles/%2e%2e/providers/honcho/status"},
			400, handlers.CodeInvalidProfile, ""},
		{"invalid_profile slash", request{method: "GET", path: "/profiles/a/b/providers/honcho/status"},
			400, handlers.CodeInvalidProfile, ""},
		{"invalid_profile escaped slash", request{method: "POST", path: "/profiles/a%2Fb/providers/honcho/connect"},
			400, handlers.CodeInvalidProfile, ""},
		{"invalid_profile empty", request{method: "DELETE", path: "/profiles//providers/honcho/connection"},
			400, handlers.CodeInvalidProfile, ""},
		{"invalid_profile 65 chars", request{method: "GET", path: "/profiles/" + long + "/providers/honcho/status"},
			400, handlers.CodeInvalidProfile, ""},
		{"forbidden host", request{method: "GET", path: statusPath, header: map[string]string{"Host": "evil.example:8080"}},
			403, handlers.CodeForbidden, "only answers requests addressed to"},
		{"forbidden origin", request{method: "POST", path: "/profiles/default/providers/honcho/cancel", header: map[string]string{"Origin": "https://evil.example"}},
			403, handlers.CodeForbidden, "other origins"},
		{"profile_not_found", request{method: "GET", path: "/profiles/nope/providers/honcho/status"},
			404, handlers.CodeProfileNotFound, "no profile with this name"},
		{"profile_not_found 64 chars", request{method: "GET", path: "/profiles/" + long[:64] + "/providers/honcho/status"},
			404, handlers.CodeProfileNotFound, ""},
		{"unknown_provider", request{method: "GET", path: "/profiles/default/providers/nope/status"},
			404, handlers.CodeUnknownProvider, "GET /providers"},
		{"unknown_provider on connect", request{method: "POST", path: "/profiles/default/providers/nope/connect"},
			404, handlers.CodeUnknownProvider, ""},
		{"unsupported connect", request{method: "POST", path: "/profiles/default/providers/nooauth/connect"},
			404, handlers.CodeUnsupported, ""},
		{"unsupported disconnect", request{method: "DELETE", path: "/profiles/default/providers/nooauth/connection"},
			404, handlers.CodeUnsupported, ""},
		{"conflict device while browser pending", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"method":"device"}`},
			409, handlers.CodeConflict, "cancel it"},
		{"conflict disconnect api key", request{method: "DELETE", path: "/profiles/apikey/providers/honcho/connection"},
			409, handlers.CodeConflict, "API key"},
		{"upstream_error device start", request{method: "POST", path: "/profiles/default/providers/broken/connect", body: `{"method":"device"}`},
			502, handlers.CodeUpstreamError, "Could not start the sign-in"},
		{"internal config file", request{method: "GET", path: "/profiles/corrupt/providers/honcho/status"},
			500, handlers.CodeInternal, "The Honcho config file could not be read"},
		{"internal panic", request{method: "GET", path: "/profiles/default/providers/boom/status"},
			500, handlers.CodeInternal, "Something went wrong on our side"},
		{"not_found", request{method: "GET", path: "/nope"},
			404, handlers.CodeNotFound, ""},
		{"not_found unknown action", request{method: "GET", path: "/profiles/default/providers/honcho/token"},
			404, handlers.CodeNotFound, ""},
		{"method_not_allowed", request{method: "PUT", path: "/providers"},
			405, handlers.CodeMethodNotAllowed, ""},
		{"method_not_allowed status", request{method: "DELETE", path: statusPath},
			405, handlers.CodeMethodNotAllowed, ""},
		{"payload_too_large", request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"source":"` + strings.Repeat("x", 70<<10) + `"}`},
			413, handlers.CodePayloadTooLarge, "65536 bytes"},
	}
}

// checkError asserts that x is the JSON error of c.
func checkError(t *testing.T, x exchange, c errorCase) {
	t.Helper()
	if x.status != c.wantStatus {
		t.Fatalf("%s %s = %d %s, want %d", c.rq.method, c.rq.path, x.status, x.body, c.wantStatus)
	}
	if ct := x.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if cc := x.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store (a 404 or 405 is cacheable by default)", cc)
	}
	body := x.json(t)
	if len(body) != 3 || body["error"] != string(c.wantCode) || body["request_id"] != x.header.Get("X-Request-Id") || body["request_id"] == "" {
		t.Errorf("body = %v, want error %q and request_id %q", body, c.wantCode, x.header.Get("X-Request-Id"))
	}
	msg, _ := body["message"].(string)
	if msg == "" || !strings.Contains(msg, c.wantMsg) {
		t.Errorf("message = %q, want one containing %q", msg, c.wantMsg)
	}
	if strings.Contains(msg, "/tmp") || strings.Contains(msg, "honcho.json\"") || strings.Contains(msg, "provider:") || strings.Contains(msg, "oauth:") {
		t.Errorf("message %q leaks a path or an internal error", msg)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t, withCallback())
	e.connect("default", "honcho", `{"method":"browser"}`) // for the conflict case
	for _, c := range errorCases() {
		t.Run(c.name, func(t *testing.T) {
			checkError(t, e.do(c.rq), c)
		})
	}
}

func TestMethodNotAllowedAllow(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ method, path, want string }{
		{"PUT", "/providers", "GET"},
		{"POST", statusPath, "GET"},
		{"GET", "/profiles/default/providers/honcho/connect", "POST"},
		{"GET", "/profiles/default/providers/honcho/connection", "DELETE"},
	}
	for _, tt := range tests {
		x := e.do(request{method: tt.method, path: tt.path})
		if x.status != 405 || x.header.Get("Allow") != tt.want {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", tt.method, tt.path, x.status, x.header.Get("Allow"), tt.want)
		}
	}
}

// TestProfilePathsArrive checks what reaches the server for the tricky
// profile segments: Go's client sends them as written (curl would squash
// "/../" unless given --path-as-is), and the answer is a 400 JSON, not a
// 404 or a redirect to a cleaned path.
func TestProfilePathsArrive(t *testing.T) {
	seen := make(chan string, 1)
	e := newEnv(t, withWrap(func(next http.Handler) http.Handler {
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
			conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
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
	e := newEnv(t, withSessionToken(token), withCallback())
	tests := []struct {
		name       string
		rq         request
		wantStatus int
		wantCode   string // "" for a non-JSON answer
	}{
		{"missing", request{method: "GET", path: "/providers", noAuth: true}, 401, "unauthorized"},
		{"wrong", request{method: "GET", path: statusPath, noAuth: true, header: map[string]string{"Authorization": "Bearer nope"}}, 401, "unauthorized"},
		{"other scheme", request{method: "GET", path: statusPath, noAuth: true, header: map[string]string{"Authorization": "Basic " + token}}, 401, "unauthorized"},
		{"missing on connect", request{method: "POST", path: "/profiles/default/providers/honcho/connect", noAuth: true}, 401, "unauthorized"},
		{"missing on disconnect", request{method: "DELETE", path: "/profiles/default/providers/honcho/connection", noAuth: true}, 401, "unauthorized"},
		{"missing on unknown path", request{method: "GET", path: "/nope", noAuth: true}, 401, "unauthorized"},
		{"missing on POST callback", request{method: "POST", path: "/profiles/default/providers/honcho/callback", noAuth: true}, 401, "unauthorized"},
		{"right", request{method: "GET", path: statusPath}, 200, ""},
		{"callback exempt", request{method: "GET", path: "/profiles/default/providers/honcho/callback?state=x&code=y", noAuth: true}, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.do(tt.rq)
			if x.status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.rq.method, tt.rq.path, x.status, x.body, tt.wantStatus)
			}
			if tt.wantCode != "" {
				if got := x.json(t)["error"]; got != tt.wantCode {
					t.Errorf("error = %v, want %s", got, tt.wantCode)
				}
				if !strings.HasPrefix(x.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", x.header.Get("WWW-Authenticate"))
				}
			}
			if strings.Contains(string(x.body), token) {
				t.Error("the answer holds the session token")
			}
		})
	}
	if strings.Contains(e.logs.String(), token) {
		t.Error("the log holds the session token")
	}
}

func TestGuards(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		rq         request
		wantStatus int
	}{
		{"host localhost", request{method: "GET", path: "/providers", header: map[string]string{"Host": "localhost:8080"}}, 200},
		{"host ipv6", request{method: "GET", path: "/providers", header: map[string]string{"Host": "[::1]:8080"}}, 200},
		{"host rebinding", request{method: "GET", path: "/providers", header: map[string]string{"Host": "attacker.example"}}, 403},
		{"host rebinding on callback", request{method: "GET", path: "/profiles/default/providers/honcho/callback", header: map[string]string{"Host": "attacker.example"}}, 403},
		{"origin same host", request{method: "POST", path: "/profiles/default/providers/honcho/cancel", header: map[string]string{"Origin": "http://127.0.0.1:8080"}}, 200},
		{"origin foreign", request{method: "POST", path: "/profiles/default/providers/honcho/cancel", header: map[string]string{"Origin": "http://evil.example"}}, 403},
		{"origin null", request{method: "DELETE", path: "/profiles/default/providers/honcho/connection", header: map[string]string{"Origin": "null"}}, 403},
		{"origin foreign on GET", request{method: "GET", path: "/providers", header: map[string]string{"Origin": "http://evil.example"}}, 200},
		{"no origin (curl)", request{method: "POST", path: "/profiles/default/providers/honcho/cancel"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.do(tt.rq)
			if x.status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.rq.method, tt.rq.path, x.status, x.body, tt.wantStatus)
			}
			if tt.wantStatus == 403 && x.json(t)["error"] != "forbidden" {
				t.Errorf("body = %s, want error forbidden", x.body)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	big := `{"source":"` + strings.Repeat("x", 64<<10) + `"}`
	path := e.base + "/profiles/default/providers/honcho/connect"
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
			resp, err := e.client.Do(req)
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
	x := e.do(request{method: "POST", path: "/profiles/default/providers/honcho/connect", body: `{"source":"` + strings.Repeat("x", 60<<10) + `"}`})
	if x.status != 400 || x.json(t)["error"] != "invalid_request" {
		t.Errorf("60 KiB body = %d %s, want 400 invalid_request", x.status, x.body)
	}
}

func TestPanicIsJSON500WithRequestID(t *testing.T) {
	e := newEnv(t)
	x := e.do(request{method: "GET", path: "/profiles/default/providers/boom/status", header: map[string]string{"X-Request-Id": "req-panic-1"}})
	if x.status != 500 {
		t.Fatalf("status = %d %s, want 500", x.status, x.body)
	}
	body := x.json(t)
	if body["error"] != "internal" || body["request_id"] != "req-panic-1" || x.header.Get("X-Request-Id") != "req-panic-1" {
		t.Errorf("body = %v, header id %q; want internal with request id req-panic-1", body, x.header.Get("X-Request-Id"))
	}
	if strings.Contains(string(x.body), "boom") {
		t.Errorf("body %s leaks the panic value", x.body)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"panic":"boom: a provider bug"`) || !strings.Contains(logs, `"request_id":"req-panic-1"`) {
		t.Errorf("log does not record the panic with its request id:\n%s", logs)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	rep := e.connect("default", "honcho", "")
	x := e.do(request{method: "POST", path: "/profiles/default/providers/honcho/cancel"})
	if x.status != 200 {
		t.Fatalf("cancel = %d %s", x.status, x.body)
	}
	var after provider.StatusReport
	if err := json.Unmarshal(x.body, &after); err != nil {
		t.Fatal(err)
	}
	if after.Flow == nil || after.Flow.ID != rep.Flow.ID || after.Flow.State != oauth.FlowIdle || after.Flow.Detail != "Cancelled" || after.Flow.AuthorizeURL != "" {
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
	if x := e.do(request{method: "POST", path: "/profiles/default/providers/honcho/cancel"}); x.status != 200 {
		t.Errorf("second cancel = %d %s", x.status, x.body)
	}
	// Now a device flow may start: no conflict.
	if dev := e.connect("default", "honcho", `{"method":"device"}`); dev.Flow.Method != oauth.MethodDevice {
		t.Errorf("device after cancel = %+v", dev.Flow)
	}
}

func TestDisconnectWithoutGrant(t *testing.T) {
	e := newEnv(t)
	x := e.do(request{method: "DELETE", path: "/profiles/work/providers/honcho/connection"})
	want := `{"disconnected":true,"removed":false,"revoked":false,"revoke_error":null}`
	if x.status != 200 || strings.TrimSpace(string(x.body)) != want {
		t.Errorf("DELETE without grant = %d %s, want 200 %s", x.status, x.body, want)
	}
}

// callbackHTML asserts that x is an HTML page with status want whose text
// contains every string in has.
func callbackHTML(t *testing.T, x exchange, want int, has ...string) {
	t.Helper()
	if x.status != want {
		t.Errorf("callback = %d, want %d:\n%s", x.status, want, x.body)
	}
	if ct := x.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("callback Content-Type = %q, want HTML", ct)
	}
	for k, v := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if x.header.Get(k) != v {
			t.Errorf("callback %s = %q, want %q", k, x.header.Get(k), v)
		}
	}
	for _, s := range has {
		if !strings.Contains(string(x.body), s) {
			t.Errorf("callback page lacks %q:\n%s", s, x.body)
		}
	}
	if id := x.header.Get("X-Request-Id"); !strings.Contains(string(x.body), id) {
		t.Errorf("callback page lacks the request id %q", id)
	}
}

func TestCallbackPages(t *testing.T) {
	e := newEnv(t, withCallback())
	rep := e.connect("default", "honcho", "")
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
		{"denied", cb + "?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=" + state, 400, []string{"Sign-in was declined", "connect again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := e.do(request{method: "GET", path: tt.path})
			callbackHTML(t, x, tt.status, tt.has...)
			if strings.Contains(string(x.body), "<script") || strings.Contains(string(x.body), "<b>") {
				t.Errorf("page echoes markup:\n%s", x.body)
			}
			if strings.Contains(string(x.body), state) {
				t.Error("page echoes the state")
			}
		})
	}
	// The bad callbacks before "denied" left the flow pending; the denial ended it.
	if st := e.status("default", "honcho"); st.Flow == nil || st.Flow.State != oauth.FlowError || st.Flow.Detail != "Sign-in was denied" {
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
	e := newEnv(t, withCallback(), withSessionToken(token))
	var seen secrets
	seen.add(token)

	rep := e.connect("default", "honcho", `{"source":"hermes-desktop"}`)
	f := rep.Flow
	if f.RedirectURI != e.base+"/profiles/default/providers/honcho/callback" {
		t.Fatalf("redirect_uri = %q", f.RedirectURI)
	}
	seen.add(mustQuery(t, f.AuthorizeURL).Get("state"), mustQuery(t, f.AuthorizeURL).Get("code_challenge"))

	target, err := e.as.Consent(ctx, e.as.Client(), f.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	if q := e.as.LastAuthorizeQuery(); q.Get("source") != "hermes-desktop" || q.Get("config_path") != "~/.hermes/honcho.json" {
		t.Errorf("authorize query = %v", q)
	}
	seen.add(target.Query().Get("code"))
	if !strings.HasPrefix(target.String(), f.RedirectURI+"?") {
		t.Fatalf("consent redirects to %s, want the callback route", target)
	}
	// The browser follows the redirect: no session token.
	x := e.do(request{method: "GET", path: strings.TrimPrefix(target.String(), e.base), noAuth: true})
	callbackHTML(t, x, 200, "Connected to Honcho", "you can close this window")

	// Replaying the callback changes nothing.
	x = e.do(request{method: "GET", path: strings.TrimPrefix(target.String(), e.base), noAuth: true})
	callbackHTML(t, x, 400, "not valid")

	st := e.status("default", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Token == nil || st.Token.ClientID != "hermes-agent" ||
		st.Token.Scope != "write" || st.Token.ExpiresIn <= 0 || st.Flow == nil || st.Flow.State != oauth.FlowConnected {
		t.Fatalf("status after callback = %+v (flow %+v)", st, st.Flow)
	}
	cfg := filepath.Join(e.root, "honcho.json")
	blk := hostBlock(t, cfg, "hermes")
	oa, _ := blk["oauth"].(map[string]any)
	rt, _ := oa["refreshToken"].(string)
	at, _ := blk["apiKey"].(string)
	seen.add(rt, at)
	if !strings.HasPrefix(at, "hch-at-") || !e.as.Active(rt) {
		t.Fatalf("host block = %v", blk)
	}
	if peer := readConfig(t, cfg)["peerName"]; peer != "you" {
		t.Errorf("peerName = %v, want the consent's \"you\" merged into the file", peer)
	}

	x = e.do(request{method: "DELETE", path: "/profiles/default/providers/honcho/connection"})
	if want := `{"disconnected":true,"removed":true,"revoked":true,"revoke_error":null}`; x.status != 200 || strings.TrimSpace(string(x.body)) != want {
		t.Fatalf("disconnect = %d %s, want %s", x.status, x.body, want)
	}
	if e.as.Active(rt) || e.as.Active(at) {
		t.Error("the grant is still active at the server after disconnect")
	}
	if st := e.status("default", "honcho"); st.Connected || st.Auth != "" || st.Token != nil {
		t.Errorf("status after disconnect = %+v", st)
	}
	if blk := hostBlock(t, cfg, "hermes"); blk["apiKey"] != nil || blk["oauth"] != nil {
		t.Errorf("host block after disconnect = %v, want the grant gone", blk)
	}
	if peer := readConfig(t, cfg)["peerName"]; peer != "you" {
		t.Errorf("peerName after disconnect = %v, want it kept", peer)
	}
	// The state and the PKCE challenge are in the authorize_url of the
	// status body, by design; the code and the tokens never are.
	for _, x := range e.exchanges() {
		for _, v := range []string{token, target.Query().Get("code"), rt, at} {
			if strings.Contains(string(x.body), v) {
				t.Errorf("%s %s answered the secret %q", x.req.Method, x.req.URL.Path, v)
			}
		}
	}
	checkLogs(t, e.logs.String(), seen)
}

// TestEndToEndLoopback runs the browser flow in loopback mode: the redirect
// URI is a one-shot listener on 127.0.0.1 with an OS-assigned port.
func TestEndToEndLoopback(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	var seen secrets
	rep := e.connect("work", "honcho", `{"redirect":"loopback"}`)
	f := rep.Flow
	u, err := url.Parse(f.RedirectURI)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "8765" || u.Path != "/callback" {
		t.Fatalf("redirect_uri = %q, want http://127.0.0.1:<os port>/callback", f.RedirectURI)
	}
	seen.add(mustQuery(t, f.AuthorizeURL).Get("state"))
	target, err := e.as.Consent(ctx, e.as.Client(), f.AuthorizeURL, true)
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
	st := e.status("work", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Flow == nil || st.Flow.State != oauth.FlowConnected {
		t.Fatalf("status = %+v, flow %+v", st, st.Flow)
	}
	blk := hostBlock(t, filepath.Join(e.root, "profiles", "work", "honcho.json"), "hermes_work")
	oa, _ := blk["oauth"].(map[string]any)
	rt, _ := oa["refreshToken"].(string)
	at, _ := blk["apiKey"].(string)
	seen.add(rt, at)
	if x := e.do(request{method: "DELETE", path: "/profiles/work/providers/honcho/connection"}); x.status != 200 || x.json(t)["revoked"] != true {
		t.Fatalf("disconnect = %d %s", x.status, x.body)
	}
	if st := e.status("work", "honcho"); st.Connected {
		t.Errorf("still connected after disconnect: %+v", st)
	}
	checkLogs(t, e.logs.String(), seen)
}

func TestEndToEndDevice(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	e := newEnv(t)
	rep := e.connect("default", "honcho", `{"method":"device"}`)
	if err := e.as.ApproveDevice(rep.Flow.UserCode); err != nil {
		t.Fatal(err)
	}
	f, err := e.flows.Wait(ctx, oauth.FlowKey{Profile: "default", Provider: "honcho"})
	if err != nil || f.State != oauth.FlowConnected {
		t.Fatalf("Wait = %+v, %v", f, err)
	}
	st := e.status("default", "honcho")
	if !st.Connected || st.Auth != provider.AuthOAuth || st.Flow.State != oauth.FlowConnected || st.Flow.UserCode != "" {
		t.Errorf("status = %+v, flow %+v", st, st.Flow)
	}
	blk := hostBlock(t, filepath.Join(e.root, "honcho.json"), "hermes")
	oa, _ := blk["oauth"].(map[string]any)
	var seen secrets
	seen.add(rep.Flow.UserCode)
	seen.add(blk["apiKey"].(string), oa["refreshToken"].(string))
	checkLogs(t, e.logs.String(), seen)
}

// TestLogsOverEverything runs every error case and a browser flow in one
// environment and checks its log as a whole.
func TestLogsOverEverything(t *testing.T) {
	e := newEnv(t, withCallback())
	rep := e.connect("default", "honcho", "")
	var seen secrets
	seen.add(mustQuery(t, rep.Flow.AuthorizeURL).Get("state"))
	for _, c := range errorCases() {
		x := e.do(c.rq)
		if x.status != c.wantStatus {
			t.Errorf("%s: %d, want %d", c.name, x.status, c.wantStatus)
		}
	}
	target, err := e.as.Consent(t.Context(), e.as.Client(), rep.Flow.AuthorizeURL, true)
	if err != nil {
		t.Fatal(err)
	}
	seen.add(target.Query().Get("code"))
	x := e.do(request{method: "GET", path: strings.TrimPrefix(target.String(), e.base)})
	callbackHTML(t, x, 200, "Connected")
	blk := hostBlock(t, filepath.Join(e.root, "honcho.json"), "hermes")
	seen.add(blk["apiKey"].(string))
	checkLogs(t, e.logs.String(), seen)
	for _, want := range []string{`"path":"/api/memory/profiles/default/providers/honcho/callback"`, `"status":500`, `"error":"internal"`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// TestRouterWithoutMount serves the router at the root of a server, as a
// host may: the callback exemption and the profile checks still work.
func TestRouterWithoutMount(t *testing.T) {
	reg, err := provider.NewRegistry(fakeProvider{name: "nooauth"})
	if err != nil {
		t.Fatal(err)
	}
	flows := oauth.NewFlowManager()
	t.Cleanup(func() { flows.Close() })
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()},
		Flows: flows, SessionToken: "tok-123456789"})
	if err != nil {
		t.Fatal(err)
	}
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
	if len(routes) != 6 {
		t.Errorf("routes = %v, want 6", routes)
	}
}

// TestCallbackHostAllowed checks that the callback base URL's host is
// allowed next to the default loopback names, so the browser's redirect to
// the callback is not refused by the Host guard.
func TestCallbackHostAllowed(t *testing.T) {
	reg, err := provider.NewRegistry(fakeProvider{name: "nooauth"})
	if err != nil {
		t.Fatal(err)
	}
	flows := oauth.NewFlowManager()
	t.Cleanup(func() { flows.Close() })
	r, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: provider.HermesProfiles{Root: t.TempDir()},
		Flows: flows, CallbackBaseURL: "http://memory.localhost:8080/api/memory"})
	if err != nil {
		t.Fatal(err)
	}
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
