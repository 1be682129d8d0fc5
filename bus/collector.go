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
	groups   *prometheus.Desc
	grouped  *prometheus.Desc
	fallback *prometheus.Desc
	fast     *prometheus.Desc
	fastBack *prometheus.Desc
	coal     *prometheus.Desc
	coalMsgs *prometheus.Desc
	lean     *prometheus.Desc
}

// NewCollector returns a collector for b's streams; register it with a Prometheus registry.
func NewCollector(b *Bus) *Collector {
	return &Collector{
		b:        b,
		messages: prometheus.NewDesc("causeway_stream_messages", "Messages held by a stream.", []string{"stream"}, nil),
		bytes:    prometheus.NewDesc("causeway_stream_bytes", "Bytes held by a stream.", []string{"stream"}, nil),
		pending:  prometheus.NewDesc("causeway_stream_consumer_pending", "Messages a durable consumer has yet to receive (its lag).", []string{"stream", "consumer"}, nil),
		groups:   prometheus.NewDesc("causeway_bus_group_commits_total", "Atomic batches the group committer sent, each stored with one fsync.", []string{"stream"}, nil),
		grouped:  prometheus.NewDesc("causeway_bus_group_commit_messages_total", "Messages in those batches; divided by the batches, the mean batch size.", []string{"stream"}, nil),
		fallback: prometheus.NewDesc("causeway_bus_group_commit_fallbacks_total", "Batches the server did not commit whose messages were then published one by one (a resent id, usually).", []string{"stream"}, nil),
		fast:     prometheus.NewDesc("causeway_bus_fast_batches_total", "Batches of messages sent as one fast batch, answered once instead of once per message.", []string{"stream"}, nil),
		fastBack: prometheus.NewDesc("causeway_bus_fast_batch_fallbacks_total", "Fast batches the server did not take whole whose messages were then published one by one (a resent batch, usually).", []string{"stream"}, nil),
		coal:     prometheus.NewDesc("causeway_bus_coalesced_batches_total", "Fast batches gathered from the single messages of concurrent callers (ADR 0015); they count among the fast batches too.", []string{"stream"}, nil),
		coalMsgs: prometheus.NewDesc("causeway_bus_coalesced_messages_total", "Messages in those batches; divided by the batches, the mean batch size.", []string{"stream"}, nil),
		lean: prometheus.NewDesc("causeway_bus_lean_recoveries_total", "Times a lean in-process connection (ADR 0012) was replaced after it ended, or a header consumer was recreated on the server (a gap, a deleted consumer, silence); steady growth means trouble.",
			[]string{"connection", "event"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	ch <- c.bytes
	ch <- c.pending
	ch <- c.groups
	ch <- c.grouped
	ch <- c.fallback
	ch <- c.fast
	ch <- c.fastBack
	ch <- c.coal
	ch <- c.coalMsgs
	ch <- c.lean
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if g := c.b.group; g != nil {
		ch <- prometheus.MustNewConstMetric(c.groups, prometheus.CounterValue, float64(g.batches.Load()), g.stream)
		ch <- prometheus.MustNewConstMetric(c.grouped, prometheus.CounterValue, float64(g.messages.Load()), g.stream)
		ch <- prometheus.MustNewConstMetric(c.fallback, prometheus.CounterValue, float64(g.fallbacks.Load()), g.stream)
	}
	if batches, fallbacks, ok := c.b.fastCounts(); ok {
		ch <- prometheus.MustNewConstMetric(c.fast, prometheus.CounterValue, float64(batches), StreamMessages)
		ch <- prometheus.MustNewConstMetric(c.fastBack, prometheus.CounterValue, float64(fallbacks), StreamMessages)
	}
	if c.b.lean != nil {
		ch <- prometheus.MustNewConstMetric(c.lean, prometheus.CounterValue, float64(c.b.lean.reconnects.Load()), "publisher", "reconnect")
		if q := c.b.lean.coalesce; q != nil {
			ch <- prometheus.MustNewConstMetric(c.coal, prometheus.CounterValue, float64(q.batches.Load()), StreamMessages)
			ch <- prometheus.MustNewConstMetric(c.coalMsgs, prometheus.CounterValue, float64(q.messages.Load()), StreamMessages)
		}
	}
	if c.b.srv != nil {
		ch <- prometheus.MustNewConstMetric(c.lean, prometheus.CounterValue, float64(c.b.headerReconnects.Load()), "header-consumer", "reconnect")
		ch <- prometheus.MustNewConstMetric(c.lean, prometheus.CounterValue, float64(c.b.headerRecreations.Load()), "header-consumer", "recreate")
	}
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
