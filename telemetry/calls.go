package telemetry

import (
	"sync/atomic"
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

// Call is the series of one operation's calls through one connector, for a caller that
// makes many calls of the same operation: its successful calls are counted without
// finding the series by their label values each time.
type Call struct {
	m                *CallMetrics
	conn, system, op string
	ok               atomic.Pointer[callSeries]
}

type callSeries struct {
	count  prometheus.Counter
	timing prometheus.Observer
}

// Call returns the series of operation op of system through connector conn. They are made
// as Observe makes them, on the first call: a prepared operation never called shows none.
func (m *CallMetrics) Call(conn, system, op string) *Call {
	return &Call{m: m, conn: conn, system: system, op: op}
}

// Observe is CallMetrics.Observe for the call's operation.
func (c *Call) Observe(outcome string, took time.Duration) {
	if outcome == "ok" {
		if s := c.ok.Load(); s != nil {
			s.count.Inc()
			s.timing.Observe(took.Seconds())
			return
		}
	}
	c.m.Observe(c.conn, c.system, c.op, outcome, took)
	if outcome == "ok" {
		// The series exist now: keep them for the next calls.
		k := callKey{c.conn, c.system, c.op, outcome}
		s := &callSeries{count: c.m.counters.Get(k, func() prometheus.Counter { return c.m.calls.WithLabelValues(c.conn, c.system, c.op, outcome) })}
		k.outcome = ""
		s.timing = c.m.timings.Get(k, func() prometheus.Observer { return c.m.duration.WithLabelValues(c.conn, c.system, c.op) })
		c.ok.Store(s)
	}
}
