package memconnect_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
)

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
	t.Parallel()
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
	t.Parallel()
	e := fixture.NewEnv(t, fixture.WithSessionToken("s3cret"))
	if x := e.Do(fixture.Request{Method: "POST", Path: "/providers/honcho/oauth/start", NoAuth: true}); x.Status != 401 {
		t.Errorf("start without the session token = %d", x.Status)
	}
	x := e.Do(fixture.Request{Method: "POST", Path: "/providers/honcho/oauth/start?profile=work"})
	if st := x.JSON(t); x.Status != 200 || st["state"] != "pending" || st["authorize_url"] == nil {
		t.Errorf("start = %d %s", x.Status, x.Body)
	}
}

// A host hook that fails with the URL in its error does not put the URL's
// state into the log.
func TestHermesOpenBrowserErrorLogged(t *testing.T) {
	t.Parallel()
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
