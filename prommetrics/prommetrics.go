// Package prommetrics turns what a memconnect router observes into
// Prometheus metrics: refreshes (by provider, outcome and whether the
// keeper made them), their duration and lock waits, sign-in flows started
// and finished, API-key checks, open event streams, keeper rounds and
// webhook deliveries. The library itself imports no metrics library; a
// host that wants Prometheus imports this package:
//
//	reg := prometheus.NewRegistry()
//	m, err := prommetrics.New(reg)
//	if err != nil {
//		return err
//	}
//	router, err := memconnect.New(memconnect.Config{Observer: m, ...})
//	mux.Handle("/metrics", router.Guard(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
package prommetrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memconnect/memconnect/observe"
)

// Metrics is a router's observer ([observe.Observer], for
// memconnect.Config.Observer) as Prometheus metrics. The names and labels
// are stable: a metric or a label may be added, never renamed.
//
// Metrics is safe for concurrent use by multiple goroutines.
type Metrics struct {
	refreshes    *prometheus.CounterVec
	refreshTime  *prometheus.HistogramVec
	lockWait     *prometheus.HistogramVec
	flowsStarted *prometheus.CounterVec
	flowsEnded   *prometheus.CounterVec
	keyChecks    *prometheus.CounterVec
	streams      prometheus.Gauge
	keeperRuns   prometheus.Counter
	keeperGrants *prometheus.CounterVec
	keeperTime   prometheus.Histogram
	webhooks     *prometheus.CounterVec
}

var _ observe.Observer = (*Metrics)(nil)

// New returns the metrics, registered with reg (the host's registry, or
// prometheus.DefaultRegisterer). It fails when reg holds metrics of the
// same names already.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memconnect_refreshes_total",
			Help: "Grant refreshes under the locks, by provider, outcome (ok, adopted, transient_failure, rejected) and whether the keeper made them."},
			[]string{"provider", "outcome", "background"}),
		refreshTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "memconnect_refresh_duration_seconds",
			Help: "Time of the exchange with the token endpoint, by provider.", Buckets: prometheus.DefBuckets}, []string{"provider"}),
		lockWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "memconnect_refresh_lock_wait_seconds",
			Help:    "Wait for the in-process lock and the store's lock (file lock or PostgreSQL lease) before a refresh, by provider.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .5, 1, 5, 10}}, []string{"provider"}),
		flowsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memconnect_flows_started_total",
			Help: "Sign-in flows started, by provider and method (browser, device)."}, []string{"provider", "method"}),
		flowsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memconnect_flows_finished_total",
			Help: "Sign-in flows finished, by provider and outcome (connected, error, cancelled)."}, []string{"provider", "outcome"}),
		keyChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memconnect_api_key_checks_total",
			Help: "API keys checked with the provider's server, by provider and outcome (ok, rejected, error)."}, []string{"provider", "outcome"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "memconnect_event_streams_open",
			Help: "Event streams open on this instance."}),
		keeperRuns: prometheus.NewCounter(prometheus.CounterOpts{Name: "memconnect_keeper_runs_total",
			Help: "Rounds of the background keeper."}),
		keeperGrants: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memconnect_keeper_grants_total",
			Help: "Grants the keeper's rounds looked at, by result (checked, refreshed, adopted, failed)."}, []string{"result"}),
		keeperTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "memconnect_keeper_run_duration_seconds",
			Help: "Duration of a keeper round.", Buckets: prometheus.DefBuckets}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "memconnect_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome (ok, retry, failed), and events dropped with a full queue (dropped)."}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.refreshes, m.refreshTime, m.lockWait, m.flowsStarted, m.flowsEnded, m.keyChecks,
		m.streams, m.keeperRuns, m.keeperGrants, m.keeperTime, m.webhooks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("prommetrics: %w", err)
		}
	}
	return m, nil
}

// Refresh implements [observe.Observer].
func (m *Metrics) Refresh(r observe.Refresh) {
	bg := "false"
	if r.Background {
		bg = "true"
	}
	m.refreshes.WithLabelValues(r.Provider, r.Outcome, bg).Inc()
	if r.Took > 0 {
		m.refreshTime.WithLabelValues(r.Provider).Observe(r.Took.Seconds())
	}
	m.lockWait.WithLabelValues(r.Provider).Observe(r.LockWait.Seconds())
}

// FlowStarted implements [observe.Observer].
func (m *Metrics) FlowStarted(provider, method string) {
	m.flowsStarted.WithLabelValues(provider, method).Inc()
}

// FlowFinished implements [observe.Observer].
func (m *Metrics) FlowFinished(provider, outcome string) {
	m.flowsEnded.WithLabelValues(provider, outcome).Inc()
}

// APIKeyChecked implements [observe.Observer].
func (m *Metrics) APIKeyChecked(provider, outcome string) {
	m.keyChecks.WithLabelValues(provider, outcome).Inc()
}

// Streams implements [observe.Observer].
func (m *Metrics) Streams(open int) { m.streams.Set(float64(open)) }

// KeeperRun implements [observe.Observer].
func (m *Metrics) KeeperRun(r observe.KeeperRun) {
	m.keeperRuns.Inc()
	m.keeperGrants.WithLabelValues("checked").Add(float64(r.Checked))
	m.keeperGrants.WithLabelValues("refreshed").Add(float64(r.Refreshed))
	m.keeperGrants.WithLabelValues("adopted").Add(float64(r.Adopted))
	m.keeperGrants.WithLabelValues("failed").Add(float64(r.Failed))
	m.keeperTime.Observe(r.Took.Seconds())
}

// Webhook implements [observe.Observer].
func (m *Metrics) Webhook(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }
