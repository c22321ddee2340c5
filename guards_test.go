package memconnect_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/provider"
)

func TestSessionToken(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// TestCallbackHostAllowed checks that the callback base URL's host is
// allowed next to the default loopback names, so the browser's redirect to
// the callback is not refused by the Host guard.
func TestCallbackHostAllowed(t *testing.T) {
	t.Parallel()
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
