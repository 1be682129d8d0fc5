package gateway

import (
	"strconv"

	"github.com/causeway/causeway/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// routeMetrics are one route's series, looked up once instead of on every request: finding
// a series by its label values hashes them all and takes the vector's lock, which on the
// gateway's path costs more than counting.
type routeMetrics struct {
	api, route string
	requests   *prometheus.CounterVec
	latency    prometheus.Observer
	// counters holds a counter per consumer and status, made on first use. Both are
	// bounded: consumers are declared resources, statuses a few dozen.
	counters telemetry.Series[countKey, prometheus.Counter]
}

type countKey struct {
	consumer string
	status   int
}

func (g *Gateway) routeMetrics(api, route string) *routeMetrics {
	return &routeMetrics{api: api, route: route, requests: g.requests, latency: g.duration.WithLabelValues(api, route)}
}

// count adds a request of consumer answered with status.
func (m *routeMetrics) count(consumer string, status int) {
	m.counters.Get(countKey{consumer, status}, func() prometheus.Counter {
		return m.requests.WithLabelValues(m.api, m.route, consumer, strconv.Itoa(status))
	}).Inc()
}
