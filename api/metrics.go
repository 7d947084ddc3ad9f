package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"koers/ledger"
)

// Metric names, for dashboards and tests.
const (
	MetricAppendSeconds   = "koers_append_duration_seconds"
	MetricProjectorLag    = "koers_projector_lag_events"
	MetricEventsApplied   = "koers_projector_events_applied_total"
	MetricStreamSequence  = "koers_stream_last_sequence"
	MetricProjectorActive = "koers_projector_active"
)

type metrics struct {
	appendSeconds *prometheus.HistogramVec
}

func newMetrics(cfg Config) (*metrics, error) {
	m := &metrics{
		appendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricAppendSeconds,
			Help: "Time to decide and append one decision submitted over HTTP, by outcome (created, duplicate, or the problem type).",
			// 1ms to about 8s: an append is a few JetStream round trips,
			// conflicts add bounded backoff.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"outcome"}),
	}
	cs := append([]prometheus.Collector{m.appendSeconds, &projectorCollector{p: cfg.Projector, timeout: cfg.CheckTimeout}}, cfg.Collectors...)
	if active := cfg.ProjectorActive; active != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: MetricProjectorActive,
			Help: "1 while this process's projector holds the read models' lease and writes them, 0 while it stands by for another process's."},
			func() float64 {
				if active() {
					return 1
				}
				return 0
			}))
	}
	for _, c := range cs {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observeAppend(d time.Duration, res ledger.Result, err error) {
	outcome := "created"
	switch {
	case err != nil:
		outcome = problemFor(err).Type
	case res.Duplicate:
		outcome = "duplicate"
	}
	m.appendSeconds.WithLabelValues(outcome).Observe(d.Seconds())
}

func (m *metrics) handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// A failing lag read leaves its metrics out rather than the rest.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	})
}

var (
	lagDesc = prometheus.NewDesc(MetricProjectorLag,
		"Stream messages not yet applied to the read models.", nil, nil)
	appliedDesc = prometheus.NewDesc(MetricEventsApplied,
		"Stream messages applied to the read models (the projector's checkpoint; it restarts after a rebuild into a fresh schema).", nil, nil)
	lastDesc = prometheus.NewDesc(MetricStreamSequence,
		"The event stream's last sequence.", nil, nil)
)

// projectorCollector asks the projector for its lag on every scrape, so
// that the numbers are as fresh as the scrape.
type projectorCollector struct {
	p       Projector
	timeout time.Duration
}

func (c *projectorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- appliedDesc
	ch <- lastDesc
}

func (c *projectorCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	lag, err := c.p.Lag(ctx)
	if err != nil {
		err = fmt.Errorf("projector lag: %w", err)
		ch <- prometheus.NewInvalidMetric(lagDesc, err)
		ch <- prometheus.NewInvalidMetric(appliedDesc, err)
		ch <- prometheus.NewInvalidMetric(lastDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag.Events()))
	ch <- prometheus.MustNewConstMetric(appliedDesc, prometheus.CounterValue, float64(lag.Checkpoint))
	ch <- prometheus.MustNewConstMetric(lastDesc, prometheus.GaugeValue, float64(lag.Last))
}
