package bus

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the size of every Causeway stream and the backlog of its consumers,
// read from JetStream at scrape time so the figures are never stale.
type Collector struct {
	b        *Bus
	messages *prometheus.Desc
	bytes    *prometheus.Desc
	pending  *prometheus.Desc
}

// NewCollector returns a collector for b's streams; register it with a Prometheus registry.
func NewCollector(b *Bus) *Collector {
	return &Collector{
		b:        b,
		messages: prometheus.NewDesc("causeway_stream_messages", "Messages held by a stream.", []string{"stream"}, nil),
		bytes:    prometheus.NewDesc("causeway_stream_bytes", "Bytes held by a stream.", []string{"stream"}, nil),
		pending:  prometheus.NewDesc("causeway_stream_consumer_pending", "Messages a durable consumer has yet to receive (its lag).", []string{"stream", "consumer"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.bytes
	ch <- c.pending
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, cfg := range c.b.streamConfigs() {
		s, err := c.b.js.Stream(ctx, cfg.Name)
		if err != nil {
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.GaugeValue, float64(info.State.Msgs), cfg.Name)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(info.State.Bytes), cfg.Name)
		names := s.ConsumerNames(ctx)
		for name := range names.Name() {
			cons, err := s.Consumer(ctx, name)
			if err != nil {
				continue
			}
			ci := cons.CachedInfo()
			if fresh, err := cons.Info(ctx); err == nil {
				ci = fresh
			}
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ci.NumPending+uint64(ci.NumAckPending)), cfg.Name, name)
		}
	}
}
