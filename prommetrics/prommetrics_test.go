package prommetrics_test

import (
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/memconnect/memconnect/observe"
	"github.com/memconnect/memconnect/prommetrics"
)

// scrape returns what the registry serves at /metrics.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestScrapeAfterARefresh: what the router observes shows in a scrape,
// under the documented names and labels.
func TestScrapeAfterARefresh(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var _ observe.Observer = m
	m.Refresh(observe.Refresh{Provider: "honcho", Outcome: "ok", Took: 40 * time.Millisecond, LockWait: time.Millisecond})
	m.Refresh(observe.Refresh{Provider: "honcho", Outcome: "adopted", Background: true})
	m.FlowStarted("honcho", "browser")
	m.FlowFinished("honcho", "connected")
	m.APIKeyChecked("honcho", "rejected")
	m.Streams(3)
	m.KeeperRun(observe.KeeperRun{Checked: 5, Refreshed: 4, Adopted: 1, Took: time.Second})
	m.Webhook("ok")
	got := scrape(t, reg)
	for _, want := range []string{
		`memconnect_refreshes_total{background="false",outcome="ok",provider="honcho"} 1`,
		`memconnect_refreshes_total{background="true",outcome="adopted",provider="honcho"} 1`,
		`memconnect_refresh_duration_seconds_count{provider="honcho"} 1`,
		`memconnect_refresh_lock_wait_seconds_count{provider="honcho"} 2`,
		`memconnect_flows_started_total{method="browser",provider="honcho"} 1`,
		`memconnect_flows_finished_total{outcome="connected",provider="honcho"} 1`,
		`memconnect_api_key_checks_total{outcome="rejected",provider="honcho"} 1`,
		`memconnect_event_streams_open 3`,
		`memconnect_keeper_runs_total 1`,
		`memconnect_keeper_grants_total{result="refreshed"} 4`,
		`memconnect_keeper_run_duration_seconds_count 1`,
		`memconnect_webhook_deliveries_total{outcome="ok"} 1`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the scrape lacks %s:\n%s", want, got)
		}
	}
}

// TestNamesAreStable: the metric names are the documented ones (a name may
// be added, never renamed), and a registry that has them already refuses a
// second set instead of mixing them.
func TestNamesAreStable(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := prommetrics.New(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	for _, want := range []string{"memconnect_event_streams_open", "memconnect_keeper_runs_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("metrics %v lack %s", names, want)
		}
	}
	if _, err := prommetrics.New(reg); err == nil {
		t.Error("a second set of the same names was registered")
	}
}
