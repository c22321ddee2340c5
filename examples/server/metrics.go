package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/memconnect/memconnect/prommetrics"
)

// metrics is the router's observer as Prometheus metrics (package
// prommetrics), with the Go runtime's and the process's, served at
// /metrics on the host's side of the mount. README.md ("Metrics") names
// them.
type metrics struct {
	*prommetrics.Metrics
	reg *prometheus.Registry
}

func newMetrics() (*metrics, error) {
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(reg)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	return &metrics{Metrics: m, reg: reg}, nil
}

// handler serves the metrics in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
