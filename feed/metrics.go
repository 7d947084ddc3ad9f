package feed

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the figures of every feed in a process, labelled by feed name.
// Metrics is a prometheus.Collector: register it once,
// registry.MustRegister(m), and give it to each feed's Config.
type Metrics struct {
	Lag        *prometheus.GaugeVec   // koers_feed_lag_events: stream last sequence minus checkpoint
	Checkpoint *prometheus.GaugeVec   // koers_feed_checkpoint_sequence: last sequence the target confirmed
	Delivered  *prometheus.CounterVec // koers_feed_delivered_total: events the target confirmed
	Retries    *prometheus.CounterVec // koers_feed_retries_total: failed attempts that will be tried again
	Poisoned   *prometheus.CounterVec // koers_feed_poisoned_total: events the target refused, moved to the poison queue
	Rejected   *prometheus.CounterVec // koers_feed_rejected_total: forged or malformed log messages skipped
}

// NewMetrics makes a set of feed metrics.
func NewMetrics() *Metrics {
	label := []string{"feed"}
	return &Metrics{
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "koers", Subsystem: "feed", Name: "lag_events",
			Help: "Events in the ledger's stream after the feed's checkpoint (stream last sequence minus checkpoint)."}, label),
		Checkpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "koers", Subsystem: "feed", Name: "checkpoint_sequence",
			Help: "The last stream sequence the feed's target confirmed."}, label),
		Delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "koers", Subsystem: "feed", Name: "delivered_total",
			Help: "Events the feed's target confirmed."}, label),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "koers", Subsystem: "feed", Name: "retries_total",
			Help: "Failed attempts to connect or publish that the feed will try again."}, label),
		Poisoned: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "koers", Subsystem: "feed", Name: "poisoned_total",
			Help: "Events the target refused outright, moved to the poison queue in PostgreSQL."}, label),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "koers", Subsystem: "feed", Name: "rejected_total",
			Help: "Messages in the log that are not genuine events (forged or malformed), never published."}, label),
	}
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.Lag, m.Checkpoint, m.Delivered, m.Retries, m.Poisoned, m.Rejected}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}

// feedMetrics are one feed's children of Metrics.
type feedMetrics struct {
	lag, checkpoint                        prometheus.Gauge
	delivered, retries, poisoned, rejected prometheus.Counter
}

func (m *Metrics) of(name string) feedMetrics {
	return feedMetrics{
		lag: m.Lag.WithLabelValues(name), checkpoint: m.Checkpoint.WithLabelValues(name),
		delivered: m.Delivered.WithLabelValues(name), retries: m.Retries.WithLabelValues(name),
		poisoned: m.Poisoned.WithLabelValues(name), rejected: m.Rejected.WithLabelValues(name),
	}
}
