package flow

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine's Prometheus metrics. Consumer lag per flow is reported by the
// bus collector, as causeway_stream_consumer_pending{consumer="flow_<name>"}.
type metrics struct {
	started      *prometheus.CounterVec
	finished     *prometheus.CounterVec
	filtered     *prometheus.CounterVec
	inflight     *prometheus.GaugeVec
	runDuration  *prometheus.HistogramVec
	stepDuration *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	parked       *prometheus.CounterVec
	released     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_flow_runs_started_total", Help: "Runs started, by flow.",
		}, []string{"flow"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_flow_runs_finished_total", Help: "Runs ended, by flow and status (succeeded, failed).",
		}, []string{"flow", "status"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_flow_messages_filtered_total", Help: "Trigger messages the flow's filter turned away.",
		}, []string{"flow"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_flow_runs_in_progress", Help: "Runs being worked on by this node.",
		}, []string{"flow"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "causeway_flow_run_duration_seconds", Help: "How long runs took from start to end, waits included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 14),
		}, []string{"flow", "status"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "causeway_flow_step_duration_seconds", Help: "How long steps took, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 14),
		}, []string{"flow", "step"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_flow_retries_total", Help: "Retries scheduled after a call failed transiently, by flow and system.",
		}, []string{"flow", "system"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_flow_dead_letters_total", Help: "Runs that ended in the errors queue, by flow and error class (transient: out of retries; permanent).",
		}, []string{"flow", "class"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_flow_parked_total", Help: "Deliveries parked because the system they call was offline or in maintenance, by flow and system.",
		}, []string{"flow", "system"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_flow_released_total", Help: "Parked deliveries released (by this node) once their system was back, by system.",
		}, []string{"system"}),
	}
	if reg != nil {
		reg.MustRegister(m.started, m.finished, m.filtered, m.inflight, m.runDuration, m.stepDuration, m.retries, m.deadLetters, m.parked, m.released)
	}
	return m
}
