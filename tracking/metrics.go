package tracking

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the indexer's Prometheus metrics.
type Metrics struct {
	indexed     *prometheus.CounterVec
	indexErrors prometheus.Counter
}

// NewMetrics registers the indexer's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		indexed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_tracking_indexed_total",
			Help: "Stream entries written to the tracking index, by stream.",
		}, []string{"stream"}),
		indexErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "causeway_tracking_index_errors_total",
			Help: "Failed writes to the tracking index (each is retried).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.indexed, m.indexErrors)
	}
	return m
}
