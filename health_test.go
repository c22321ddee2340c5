package memconnect_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
)

// TestHealth: the status body says how a connection is doing (expiring,
// failing with the last error, ok with the last refresh), and a refresh
// that works after failing publishes "recovered" on the event stream.
func TestHealth(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	e := fixture.NewEnv(t, fixture.WithClock(clock))
	tok := e.AS.IssueGrant("write")
	now := clock.Now()
	writeGrant(t, e, tok, now.Add(time.Minute), now.Add(-time.Hour))
	status := func() map[string]any {
		t.Helper()
		x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/work/providers/honcho/status"})
		if x.Status != 200 {
			t.Fatalf("status = %d %s", x.Status, x.Body)
		}
		return x.JSON(t)
	}
	st := status()
	if st["health"] != "expiring" || st["last_refresh_at"] != now.Add(-time.Hour).UTC().Format(time.RFC3339) || st["last_error"] != nil {
		t.Fatalf("a token a minute from its end: health %v, last_refresh_at %v, last_error %v", st["health"], st["last_refresh_at"], st["last_error"])
	}

	stream := openStream(t, e, "work", "")
	ts, err := e.Router.Connector().TokenSource("work", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	e.AS.FailNextTokenRequests(1, http.StatusBadRequest, "temporarily_unavailable")
	if _, err := ts.Token(); err != nil {
		t.Fatalf("Token while the server fails = %v (want the current token)", err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"refresh_failed"}` {
		t.Fatalf("after a failed refresh: %+v", ev)
	}
	st = status()
	le, _ := st["last_error"].(map[string]any)
	if st["health"] != "failing" || le == nil || le["at"] != now.UTC().Format(time.RFC3339) || le["since"] != le["at"] || !strings.Contains(le["message"].(string), "temporarily_unavailable") {
		t.Fatalf("after a failed refresh: health %v, last_error %v", st["health"], st["last_error"])
	}
	if strings.Contains(le["message"].(string), tok.RefreshToken) {
		t.Fatal("last_error holds the refresh token")
	}

	clock.Advance(31 * time.Second) // past the cooldown
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, stream); ev.data != `{"connection":"recovered"}` {
		t.Fatalf("after the refresh worked again: %+v", ev)
	}
	st = status()
	if st["health"] != "ok" || st["last_error"] != nil || st["last_refresh_at"] != clock.Now().UTC().Format(time.RFC3339) {
		t.Fatalf("after recovery: health %v, last_refresh_at %v, last_error %v", st["health"], st["last_refresh_at"], st["last_error"])
	}
	if x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/default/providers/honcho/status"}); strings.Contains(string(x.Body), `"health"`) {
		t.Errorf("a profile not connected has a health: %s", x.Body)
	}
}

// TestHealthShortLivedToken: health uses the margin the refresh uses, half
// a short token's lifetime: a 90 s token just obtained is "ok", and
// "expiring" only in its last 45 s.
func TestHealthShortLivedToken(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	e := fixture.NewEnv(t, fixture.WithClock(clock))
	tok := e.AS.IssueGrant("write")
	now := clock.Now()
	writeGrant(t, e, tok, now.Add(90*time.Second), now)
	for _, step := range []struct {
		advance time.Duration
		want    string
	}{{0, "ok"}, {40 * time.Second, "ok"}, {10 * time.Second, "expiring"}} {
		clock.Advance(step.advance)
		x := e.Do(fixture.Request{Method: "GET", Path: "/profiles/work/providers/honcho/status"})
		if got := x.JSON(t)["health"]; got != step.want {
			t.Errorf("%s before expiry: health %v; want %s", now.Add(90*time.Second).Sub(clock.Now()), got, step.want)
		}
	}
}
