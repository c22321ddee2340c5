package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDesktopRenewalFailing: a connection whose renewal fails (the token
// endpoint answers 503) shows on the Connect page as "Renewal failing
// since HH:MM · retrying; …", with the reason as a detail, in Chromium.
func TestDesktopRenewalFailing(t *testing.T) {
	h := StartHydra(t)
	home := hermesHome(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	}))
	t.Cleanup(down.Close)
	cfg := map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": "ory_at_e2e-failing-0123456789",
		"oauth": map[string]any{"refreshToken": "ory_rt_e2e-failing-0123456789", "expiresAt": time.Now().Add(time.Minute).Unix(),
			"clientId": e2eClientID, "tokenEndpoint": down.URL + "/oauth2/token", "scope": e2eScope, "tokenType": "Bearer"},
	}}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(configPath(home), b, 0o600); err != nil {
		t.Fatal(err)
	}
	ds := startDesktop(t, h, home, true)
	ts, err := ds.Router.Connector().TokenSource("default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil { // fails open: the token in hand is kept
		t.Fatal(err)
	}
	if rep := ds.Status(t); rep.Health != "failing" || rep.LastError == nil {
		t.Fatalf("status: health %q, last_error %+v; want failing", rep.Health, rep.LastError)
	}

	browser := NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	st := openPage(t, ctx, ds, "renewal failing", func(st pageState) bool {
		return strings.HasPrefix(st.State, "Renewal failing since ") && strings.HasSuffix(st.State, " · retrying; reconnect if it goes on")
	})
	if !strings.HasPrefix(st.Detail, "Details: ") || !strings.Contains(st.Detail, "503") || strings.Contains(st.State, "503") || !st.Disconnect {
		t.Errorf("page state %q, detail %q (disconnect shown: %v), want the reason in the detail alone, and Disconnect", st.State, st.Detail, st.Disconnect)
	}
	if s := st.State + st.Detail; strings.Contains(s, "ory_rt_") || strings.Contains(s, "ory_at_") {
		t.Errorf("the page shows a token: %q", s)
	}
	screenshot(t, ctx, "health-failing.png")
}
