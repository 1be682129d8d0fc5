package tracking

import (
	"context"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the indexer's Prometheus metrics.
type Metrics struct {
	indexed     *prometheus.CounterVec
	indexErrors prometheus.Counter
	// txEntries and txSeconds describe each transaction written: how many entries it
	// carried (1,000 at most at a steady rate, up to 20,000 while catching up) and how long
	// the write took.
	txEntries, txSeconds *prometheus.HistogramVec
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
		txEntries: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_tracking_index_transaction_entries",
			Help:    "Stream entries per tracking index transaction, by stream: larger while the index catches up.",
			Buckets: []float64{1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000},
		}, []string{"stream"}),
		txSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_tracking_index_transaction_seconds",
			Help:    "Time to write one tracking index transaction, by stream.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms to 4 s
		}, []string{"stream"}),
	}
	if reg != nil {
		reg.MustRegister(m.indexed, m.indexErrors, m.txEntries, m.txSeconds)
	}
	return m
}

// LagCollector reports how far the tracking index is behind each stream: the stream's last
// sequence minus the last sequence indexed, read at scrape time.
type LagCollector struct {
	ix  *Indexer
	lag *prometheus.Desc
}

// NewLagCollector returns the collector for ix; register it with a Prometheus registry.
func NewLagCollector(ix *Indexer) *LagCollector {
	return &LagCollector{ix: ix, lag: prometheus.NewDesc("causeway_tracking_index_lag",
		"Stream entries not yet in the tracking index: how long after its 202 a message may not be found yet.", []string{"stream"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.lag }

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, name := range []string{bus.StreamMessages, bus.StreamTracking} {
		s, err := c.ix.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		last := s.CachedInfo().State.LastSeq
		lag := float64(0)
		if pos := c.ix.Position(name); last > pos {
			lag = float64(last - pos)
		}
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag, name)
	}
}
