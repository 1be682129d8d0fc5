package source

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the counters every kind of source reports to.
type Metrics struct {
	events *prometheus.CounterVec
}

// NewMetrics makes the source metrics and registers them with reg, when not nil. A node makes
// them once and hands them to every kind of source through Options.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "causeway_source_events_total",
		Help: "Events received by sources, by result: accepted (stored as a message), errors (kept in the ERRORS stream), refused (webhooks: signature, size, not JSON).",
	}, []string{"source", "result"})}
	if reg != nil {
		reg.MustRegister(m.events)
	}
	return m
}

// count adds n events of a source with a result.
func (m *Metrics) count(source, result string, n int) {
	if m != nil && n > 0 {
		m.events.WithLabelValues(source, result).Add(float64(n))
	}
}
