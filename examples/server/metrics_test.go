package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memconnect/memconnect"
	"github.com/memconnect/memconnect/internal/testsupport/fixture"
	"github.com/memconnect/memconnect/internal/testsupport/testkit"
	"github.com/memconnect/memconnect/oauth"
	"github.com/memconnect/memconnect/provider"
	"github.com/memconnect/memconnect/provider/honcho"
	"github.com/memconnect/memconnect/webhook"
)

// scrape returns the value of the sample of /metrics whose name and labels
// are series, such as `memconnect_refreshes_total{background="false",outcome="ok",provider="honcho"}`;
// 0 when absent.
func scrape(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMetricsMoveWithRefreshes scrapes the example's /metrics, as
// Prometheus would, while the router refreshes a grant: the refresh
// counter, its latency and lock-wait histograms and the stream gauge move.
func TestMetricsMoveWithRefreshes(t *testing.T) {
	t.Parallel()
	h := fixture.NewHermes(t)
	reg, err := provider.NewRegistry(honcho.New(h.HonchoOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	memory, err := memconnect.New(memconnect.Config{Registry: reg, Profiles: h.Profiles(), HTTPClient: h.AS.Client(), Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { memory.Close() })
	srv := httptest.NewServer(hostRouter(memory, nil, m.handler()))
	t.Cleanup(srv.Close)

	tok := h.AS.IssueGrant("write")
	testkit.WriteJSON(t, filepath.Join(h.Root, "honcho.json"), map[string]any{"hosts": map[string]any{"hermes": map[string]any{
		"apiKey": tok.AccessToken,
		"oauth": map[string]any{"refreshToken": tok.RefreshToken, "expiresAt": time.Now().Add(30 * time.Second).Unix(),
			"clientId": h.AS.ClientID(), "tokenEndpoint": h.AS.TokenURL(), "scope": "write", "tokenType": "Bearer"},
	}}})
	ok := `memconnect_refreshes_total{background="false",outcome="ok",provider="honcho"}`
	if v := scrape(t, srv.URL, ok); v != 0 {
		t.Fatalf("%s = %v before any refresh", ok, v)
	}
	ts, err := memory.Connector().TokenSource("default", "honcho")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil { // 30 s from expiry: refreshed
		t.Fatal(err)
	}
	if v := scrape(t, srv.URL, ok); v != 1 {
		t.Errorf("%s = %v after a refresh, want 1", ok, v)
	}
	for _, series := range []string{
		`memconnect_refresh_duration_seconds_count{provider="honcho"}`,
		`memconnect_refresh_lock_wait_seconds_count{provider="honcho"}`,
	} {
		if v := scrape(t, srv.URL, series); v != 1 {
			t.Errorf("%s = %v, want 1", series, v)
		}
	}
	h.AS.FailNextTokenRequests(1, http.StatusBadRequest, "temporarily_unavailable")
	if _, err := ts.ForceRefresh(t.Context(), mustToken(t, ts)); err == nil {
		t.Fatal("ForceRefresh while the server fails = nil error")
	}
	failed := `memconnect_refreshes_total{background="false",outcome="transient_failure",provider="honcho"}`
	if v := scrape(t, srv.URL, failed); v != 1 {
		t.Errorf("%s = %v, want 1", failed, v)
	}

	// An open event stream shows in the gauge.
	resp, err := http.Get(srv.URL + "/api/memory/profiles/default/providers/honcho/events")
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, line); err != nil { // the stream's first comment: it is open
		t.Fatal(err)
	}
	if v := scrape(t, srv.URL, "memconnect_event_streams_open"); v != 1 {
		t.Errorf("memconnect_event_streams_open = %v with one stream, want 1", v)
	}
	resp.Body.Close()
	body := scrapeAll(t, srv.URL)
	if !strings.Contains(body, "# HELP memconnect_keeper_runs_total ") {
		t.Errorf("/metrics lacks memconnect_keeper_runs_total:\n%s", body)
	}
	if strings.Contains(body, tok.AccessToken) || strings.Contains(body, tok.RefreshToken) {
		t.Error("/metrics holds a token")
	}
}

func mustToken(t *testing.T, ts *oauth.Source) string {
	t.Helper()
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func scrapeAll(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestRunWebhookAndMetrics: -webhook sends a signed connection.connected
// when an API key is stored, and the API-key check shows in /metrics.
func TestRunWebhookAndMetrics(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	secret := webhook.NewSecret()
	base, stop := server(t, "-dev", "-addr", "127.0.0.1:0", "-keep-fresh", "24h", "-webhook", hook.URL, "-webhook-secret", secret)
	resp, err := http.Post(base+"/api/memory/profiles/default/providers/honcho/connect", "application/json",
		strings.NewReader(`{"method":"apikey","api_key":"`+devAPIKey+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("connect with the API key = %d", resp.StatusCode)
	}
	select {
	case r := <-got:
		if r.Header.Get("webhook-signature") == "" || r.Header.Get("webhook-id") == "" {
			t.Errorf("the webhook is not signed: %v", r.Header)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook came")
	}
	if v := scrape(t, base, `memconnect_api_key_checks_total{outcome="ok",provider="honcho"}`); v != 1 {
		t.Errorf("API-key checks = %v, want 1", v)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}
