package main

import (
	"fmt"
	"slices"
	"time"
)

// result is what one scenario measured: how many messages were acknowledged in how long,
// and the latency of each acknowledged request.
type result struct {
	messages  int
	elapsed   time.Duration
	latencies []time.Duration
	// indexCatchUp is how long after the load the tracking index had every message.
	indexCatchUp time.Duration
}

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.messages) / r.elapsed.Seconds()
}

func (r *result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	i := int(float64(len(r.latencies)-1) * p / 100)
	return r.latencies[i]
}

func (r *result) merge(o *result) {
	r.messages += o.messages
	r.latencies = append(r.latencies, o.latencies...)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
