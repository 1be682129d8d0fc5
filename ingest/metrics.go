package ingest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingestion endpoint's Prometheus metrics.
type Metrics struct {
	messages        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	publishDuration *prometheus.HistogramVec

	// The series every accepted request touches, looked up once: a label lookup hashes
	// its values and takes the vector's lock, once per message of a batch.
	acceptedByType telemetry.Series[string, prometheus.Counter]
	// fast counts the requests served on the lean listener's fast path (ServeFast).
	fast          prometheus.Counter
	modeDuration  [3]prometheus.Observer // by mode
	publishStream prometheus.Observer    // publishDuration of MESSAGES
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
	m.fast = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "causeway_ingest_fast_requests_total",
		Help: "Ingestion requests served without a net/http request (ServeFast) on the lean listener: those whose messages were all accepted, with a media type that needs no parsing.",
	})
	if reg != nil {
		reg.MustRegister(m.messages, m.requestDuration, m.publishDuration, m.fast)
	}
	for md := range m.modeDuration {
		m.modeDuration[md] = m.requestDuration.WithLabelValues(mode(md).String())
	}
	m.publishStream = m.publishDuration.WithLabelValues(bus.StreamMessages)
	return m
}

// accepted counts an accepted message of type typ. Types are those of the catalog (a
// message of another is refused), so the series stay few.
func (m *Metrics) accepted(typ string) {
	m.acceptedByType.Get(typ, func() prometheus.Counter { return m.messages.WithLabelValues(typ, "accepted", "") }).Inc()
}

// rejected counts a rejected request. The type label stays empty: a rejected message's type
// is whatever the client sent, and putting it in a label would let clients create series.
func (m *Metrics) rejected(reason string) { m.messages.WithLabelValues("", "rejected", reason).Inc() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	body := jsonBody(v)
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = contentLength(len(body))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// jsonBody encodes v, a value of this package's answers, which always marshal.
func jsonBody(v any) []byte {
	body, _ := json.Marshal(v)
	return body
}

// contentLength is the Content-Length header's value for a body of n bytes.
func contentLength(n int) []string { return []string{strconv.Itoa(n)} }

// jsonType is the Content-Type of JSON answers, shared: nothing changes a header's values.
var jsonType = []string{"application/json"}

// writeAccepted answers 202 with {"ids":[...]}, the answer to every accepted request.
func writeAccepted(w http.ResponseWriter, ids []string) {
	body, ok := acceptedBody(ids)
	if !ok {
		writeJSON(w, http.StatusAccepted, accepted{IDs: ids})
		return
	}
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = contentLength(len(body))
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(body)
}
