package ingest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingestion endpoint's Prometheus metrics.
type Metrics struct {
	messages        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	publishDuration *prometheus.HistogramVec
}

// latencyBuckets span a sub-millisecond in-memory path to a slow fsync.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers the metrics with reg (nil: unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_ingest_messages_total",
			Help: "Messages offered to POST /v1/messages, by type, result (accepted, rejected) and reason of rejection.",
		}, []string{"type", "result", "reason"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_ingest_request_duration_seconds",
			Help:    "Time to answer an accepted ingestion request, by content mode (structured, batch, binary).",
			Buckets: latencyBuckets,
		}, []string{"mode"}),
		publishDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_bus_publish_duration_seconds",
			Help:    "Time from publishing a request's messages until the bus acknowledged all of them, by stream.",
			Buckets: latencyBuckets,
		}, []string{"stream"}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.requestDuration, m.publishDuration)
	}
	return m
}

func (m *Metrics) accepted(typ string) { m.messages.WithLabelValues(typ, "accepted", "").Inc() }

// rejected counts a rejected request. The type label stays empty: a rejected message's type
// is whatever the client sent, and putting it in a label would let clients create series.
func (m *Metrics) rejected(reason string) { m.messages.WithLabelValues("", "rejected", reason).Inc() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v) // the values written here always marshal
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
