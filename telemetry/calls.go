package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CallMetrics count the calls of system operations, for every connector:
// causeway_connector_calls_total by connector, system, operation and outcome, and
// causeway_connector_call_duration_seconds. Connectors that register them with the same
// registry share the families (RegisterOrReuse). Each series is found by its label values
// once and kept: on a gateway's path, hashing four label values and taking the vector's
// lock for every call cost more than counting.
type CallMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	counters Series[callKey, prometheus.Counter]  // by callKey with outcome
	timings  Series[callKey, prometheus.Observer] // by callKey without outcome
}

type callKey struct{ conn, system, op, outcome string }

// NewCallMetrics makes the call metrics, registered with reg when it is not nil.
func NewCallMetrics(reg prometheus.Registerer) *CallMetrics {
	m := &CallMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_connector_calls_total",
			Help: "Calls of system operations by outcome: ok, transient or permanent failure.",
		}, []string{"connector", "system", "operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_connector_call_duration_seconds",
			Help:    "How long calls of system operations took, answer read included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"connector", "system", "operation"}),
	}
	if reg != nil {
		m.calls = RegisterOrReuse(reg, m.calls).(*prometheus.CounterVec)
		m.duration = RegisterOrReuse(reg, m.duration).(*prometheus.HistogramVec)
	}
	return m
}

// Observe counts a call of operation op of system through connector conn, with its outcome
// ("ok", "transient" or "permanent") and how long it took. The series are bounded by the
// declared systems and operations.
func (m *CallMetrics) Observe(conn, system, op, outcome string, took time.Duration) {
	k := callKey{conn, system, op, outcome}
	m.counters.Get(k, func() prometheus.Counter { return m.calls.WithLabelValues(conn, system, op, outcome) }).Inc()
	k.outcome = ""
	m.timings.Get(k, func() prometheus.Observer { return m.duration.WithLabelValues(conn, system, op) }).Observe(took.Seconds())
}
