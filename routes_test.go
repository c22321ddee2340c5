package memconnect_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/oauth/flow"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
)

func TestListProviders(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithCallback())
	e.Connect("default", "honcho", `{"method":"browser"}`) // for the conflict case
	for _, c := range fixture.ErrorCases() {
		t.Run(c.Name, func(t *testing.T) {
			checkError(t, e.Do(c.Rq), c)
		})
	}
}

func TestMethodNotAllowedAllow(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

func TestBodyLimit(t *testing.T) {
	t.Parallel()
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

func TestCancel(t *testing.T) {
	// Not parallel: a parallel test's listener could take the freed port.
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
	t.Parallel()
	e := fixture.NewEnv(t)
	x := e.Do(fixture.Request{Method: "DELETE", Path: "/profiles/work/providers/honcho/connection"})
	want := `{"disconnected":true,"removed":false,"revoked":false,"revoke_error":null}`
	if x.Status != 200 || strings.TrimSpace(string(x.Body)) != want {
		t.Errorf("DELETE without grant = %d %s, want 200 %s", x.Status, x.Body, want)
	}
}

// A grant another process found rejected shows as reauth_required in this
// router's status, though this process never called the server.
func TestReauthRequiredFromAnotherProcess(t *testing.T) {
	t.Parallel()
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
