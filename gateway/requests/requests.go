// Package requests holds the gateway's asynchronous requests: the durable record of every
// request answered "202 Accepted", its status and result, the offline queue of requests
// waiting for their system, and the callbacks that tell a client a request is done.
//
// # Records live in a stream, keyed by subject
//
// Everything known about a request is a message on the REQUESTS stream under
// cw.requests.<id>.<what>: .accepted (the record), .result (the outcome the gateway stored),
// .reply (a flow's answer, which the flow publishes there itself because the gateway names
// ReplySubject in the Causeway-Reply-To header), .attempt (the queued runs started) and
// .callback (how the callback went). A status is the last message of each of these
// subjects, read by subject without any index: every node sees the same thing, nothing has
// to be kept in step, and the stream's age limit forgets requests by itself. A flow needs
// no code of ours to answer, because JetStream stores a plain publish on a stream subject.
//
// # The queue is a separate work-queue stream
//
// A proxy or flow request whose system is offline or in maintenance waits in
// GATEWAY_QUEUE on cw.gwqueue.<system>, with everything the worker needs to carry it out.
// The queue is kept apart from the records because it has other needs: an entry must
// leave once it has run (work-queue retention), must never be dropped for its age (a
// system may be down for a week), and may carry credentials that should not be kept for
// the records' retention. Each system's entries are worked by one durable consumer shared
// by all nodes that lets one entry out at a time, so a system gets its requests in the
// order they were accepted and at one call at a time.
//
// # What a crash means
//
// Accept writes the queue entry first and the record second. A crash before the queue
// entry: nothing was stored and the client got no 202. A crash between the two: the
// request will run though the client got no 202 (the same as a crash after both writes
// and before the answer, which no ordering can avoid); the worker writes the missing
// record, with the same content and message id, before it looks at the system's status,
// so Status finds the request from then on. When the bus refuses the record (rather than
// the node stopping), Accept takes the queue entry back, best effort, so that a request
// the client is told failed does not run. The worker records an attempt before each run
// and stores the result before it acknowledges the entry: a crash during a run runs the
// request again when the entry is redelivered (at least once, as for any call whose
// outcome was not recorded), and a crash between result and acknowledgement runs nothing,
// because the worker acknowledges an entry that already has a result. A callback is
// delivered by the node that stored the result; a node stopping in the middle of it drops
// the callback, and the status then shows no callback outcome.
package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/bus"
)

// Streams, subjects and headers.
const (
	// Stream holds the records, results, replies, attempts and callback outcomes of
	// requests, on cw.requests.<id>.<what>.
	Stream = "REQUESTS"
	// QueueStream holds the requests waiting for their system, on cw.gwqueue.<system>,
	// until they have run.
	QueueStream = "GATEWAY_QUEUE"
	// HeaderRequestID names the request on queue entries and on callbacks.
	HeaderRequestID = "Causeway-Request-Id"

	subjectRequests = "cw.requests."
	subjectQueue    = "cw.gwqueue."
)

// The kinds of request.
const (
	// KindPublish is a message published for some flow to answer.
	KindPublish = "publish"
	// KindProxy is a call passed on to a system.
	KindProxy = "proxy"
	// KindFlow is a flow invoked by the route.
	KindFlow = "flow"
)

// The states of a request.
const (
	// StateQueued is a request waiting in the queue for its system, with no result yet.
	StateQueued = "queued"
	// StateAccepted is a request accepted and not answered yet.
	StateAccepted = "accepted"
	// StateCompleted is a request with a result that is not an error.
	StateCompleted = "completed"
	// StateFailed is a request whose result is an error or a status of 500 or more.
	StateFailed = "failed"
)

// ErrNotFound is a request that is not known, or no longer (past the retention).
var ErrNotFound = errors.New("requests: no such request")

// ReplySubject is the subject a flow's reply to the request id is stored on: what the
// gateway puts in the Causeway-Reply-To header of the message it publishes. The reply is
// stored whether it comes before or after the record.
func ReplySubject(id string) string { return subjectRequests + id + ".reply" }

// Record is what was accepted.
type Record struct {
	// ID names the request: letters, digits, '-' and '_', up to 128 characters.
	ID    string `json:"id"`
	API   string `json:"api,omitempty"`
	Route string `json:"route,omitempty"`
	// Kind is KindPublish, KindProxy or KindFlow.
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"createdAt"`
	// Callback is the URL told of the outcome, already validated with CallbackPolicy.Check.
	Callback string `json:"callback,omitempty"`
	// MessageID is the message a publish request published.
	MessageID string `json:"messageId,omitempty"`
	// Payload is what the worker needs to carry out a queued request, opaque to this
	// package. It travels in the queue entry only: the stored record and the status leave
	// it out, since it may carry credentials.
	Payload json.RawMessage `json:"payload,omitempty"`
	// System is the system a queued request waits for.
	System string `json:"system,omitempty"`
	// Owner is who made the request (a Consumer, a token's subject), when the API knows:
	// the status is shown to them only.
	Owner string `json:"owner,omitempty"`
	// CallbackPolicy is the allow-list the callback was accepted under, when it is not
	// the store's; deliveries are checked against it. The status leaves it out.
	CallbackPolicy *CallbackPolicy `json:"callbackPolicy,omitempty"`
}

// queued reports whether the record goes through the queue.
func (r *Record) queued() bool { return r.System != "" && (r.Kind == KindProxy || r.Kind == KindFlow) }

// Result is a request's outcome. Its JSON has the fields of a flow's answer, so that a
// flow's reply reads as a result.
type Result struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is JSON; a body that is not is stored as a JSON string.
	Body  json.RawMessage `json:"body,omitempty"`
	Error string          `json:"error,omitempty"`
	RunID string          `json:"runId,omitempty"`
	At    time.Time       `json:"at,omitzero"`
}

// failed reports whether the result is a failure.
func (r *Result) failed() bool { return r.Error != "" || r.Status >= 500 }

// Status is what is known of a request.
type Status struct {
	ID string `json:"id"`
	// State is StateQueued, StateAccepted, StateCompleted or StateFailed.
	State string `json:"state"`
	// Record is the accepted record, without its payload.
	Record Record `json:"record"`
	// Result is the outcome, once there is one.
	Result *Result `json:"result,omitempty"`
	// Attempts counts the runs of a queued request started so far.
	Attempts int `json:"attempts,omitempty"`
	// Callback is how the callback went, once it is over.
	Callback *CallbackOutcome `json:"callback,omitempty"`
}

// Options configures a Store.
type Options struct {
	// Bus holds the streams.
	Bus *bus.Bus
	// Retention is how long records are kept (default 7 days). Queued requests are kept
	// until they run, however long that takes.
	Retention time.Duration
	// Node names this node in logs and attempt records.
	Node string
	// Logger receives the store's logs.
	Logger *slog.Logger
	// Registerer receives the metrics, when set.
	Registerer prometheus.Registerer
	// Available reports whether a system can take calls now and, when it cannot, how long
	// to wait before asking again. Nil means every system always can.
	Available func(system string) (bool, time.Duration)
	// Callbacks says which callback URLs are allowed.
	Callbacks CallbackPolicy
}

// Store keeps the asynchronous requests.
type Store struct {
	opts    Options
	log     *slog.Logger
	js      jetstream.JetStream
	records jetstream.Stream
	queue   jetstream.Stream
	client  *callbackClient
	metrics *metrics

	// kick wakes the workers of this node when a request is queued.
	kick chan struct{}
	// ctx ends with Close, which then waits for Work and the callbacks in flight (wg).
	// mu guards closed, so that nothing is added to wg while Close waits.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup

	// retryBase and cbBackoff are the first waits of the run and callback backoffs;
	// tests shorten them.
	retryBase time.Duration
	cbBackoff time.Duration
}

// Open creates or updates both streams and returns the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Bus == nil {
		return nil, errors.New("requests: open: no bus")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if err := opts.Callbacks.validate(); err != nil {
		return nil, fmt.Errorf("requests: open: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("requests: open: metrics: %w", err)
	}
	js := opts.Bus.JetStream()
	replicas := max(opts.Bus.Replicas(), 1)
	// The de-duplication window must not outlast the records themselves.
	dedup := min(2*time.Minute, opts.Retention)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	records, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "Causeway: the gateway's asynchronous requests (records, results, replies, callbacks)",
		Subjects:    []string{subjectRequests + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      opts.Retention,
		// Each subject is one fact of one request; only the last counts, and ten leave
		// room for the attempts of a queued request.
		MaxMsgsPerSubject: 10,
		Duplicates:        dedup,
		Replicas:          replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("requests: open: stream %s: %w", Stream, err)
	}
	queue, err := js.CreateOrUpdateStream(cctx, jetstream.StreamConfig{
		Name:        QueueStream,
		Description: "Causeway: gateway requests waiting for their system",
		Subjects:    []string{subjectQueue + ">"},
		Storage:     jetstream.FileStorage,
		// An entry leaves once it has run; none is dropped for its age or for room,
		// since that would lose an accepted request.
		Retention:  jetstream.WorkQueuePolicy,
		Discard:    jetstream.DiscardNew,
		Duplicates: 2 * time.Minute,
		Replicas:   replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("requests: open: stream %s: %w", QueueStream, err)
	}
	sctx, stop := context.WithCancel(context.Background())
	return &Store{
		opts: opts, log: opts.Logger.With("component", "gateway-requests"), js: js,
		records: records, queue: queue, client: opts.Callbacks.newClient(), metrics: m,
		kick: make(chan struct{}, 1), ctx: sctx, cancel: stop,
		retryBase: time.Second, cbBackoff: time.Second,
	}, nil
}

// Close stops Work and the callbacks in flight, and waits for them. A run cut short runs
// again later; a callback cut short is not delivered (see the package comment).
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.client.close()
}

// idPattern is what a request id may be: one subject token, of a sensible length.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// systemPattern is what a queued request's system may be called: a System's name, which
// may hold dots; each dot-separated part is one subject token.
var systemPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// subject is the subject of one fact of a request.
func subject(id, what string) string { return subjectRequests + id + "." + what }

// Accept stores an accepted request durably and, for a proxy or flow request with a
// System, queues it for that system. It returns once the bus has stored both. Accepting
// the same id again (within the bus's de-duplication window) stores nothing new. A
// callback URL is checked for its form and against the allow-list only: the gateway calls
// CallbackPolicy.Check, which resolves the host, before accepting, and every delivery
// checks the address it connects to.
func (s *Store) Accept(ctx context.Context, rec Record) error {
	if err := s.validate(&rec); err != nil {
		return fmt.Errorf("requests: accept %q: %w", rec.ID, err)
	}
	log := s.log.With("request", rec.ID)
	// The queue entry first: see the package comment for what a crash between the two
	// writes means.
	var qack *jetstream.PubAck
	if rec.queued() {
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("requests: accept %s: encoding the queue entry: %w", rec.ID, err)
		}
		msg := &nats.Msg{Subject: subjectQueue + rec.System, Data: data, Header: nats.Header{}}
		msg.Header.Set(HeaderRequestID, rec.ID)
		qack, err = s.js.PublishMsg(ctx, msg, jetstream.WithMsgID("req-queue-"+rec.ID), jetstream.WithExpectStream(QueueStream))
		if err != nil {
			return fmt.Errorf("requests: accept %s: queueing it for system %s: %w", rec.ID, rec.System, err)
		}
	}
	ack, err := s.storeRecord(ctx, rec)
	if err != nil {
		if qack != nil && !qack.Duplicate {
			s.unqueue(qack.Sequence, log)
		}
		return fmt.Errorf("requests: accept %s: %w", rec.ID, err)
	}
	fresh := !ack.Duplicate
	if qack != nil {
		// The worker may have written the record first (see ensureRecord); the queue
		// entry says whether this request is new.
		fresh = !qack.Duplicate
		s.wake()
	}
	if fresh {
		s.metrics.accepted.WithLabelValues(rec.Kind).Inc()
	}
	log.Info("request accepted", "kind", rec.Kind, "api", rec.API, "route", rec.Route, "system", rec.System,
		"queued", rec.queued(), "callback", rec.Callback != "", "duplicate", !fresh)
	return nil
}

// validate checks a record before it is stored and fills its defaults.
func (s *Store) validate(rec *Record) error {
	if !idPattern.MatchString(rec.ID) {
		return errors.New("the id must be 1 to 128 letters, digits, '-' or '_'")
	}
	switch rec.Kind {
	case KindPublish, KindProxy, KindFlow:
	default:
		return fmt.Errorf("unknown kind %q (expected publish, proxy or flow)", rec.Kind)
	}
	if rec.System != "" && (len(rec.System) > 128 || !systemPattern.MatchString(rec.System)) {
		return fmt.Errorf("system %q cannot name a queue", rec.System)
	}
	if len(rec.Payload) > 0 && !json.Valid(rec.Payload) {
		return errors.New("the payload is not JSON")
	}
	if rec.Callback != "" {
		if rec.CallbackPolicy != nil {
			if err := rec.CallbackPolicy.validate(); err != nil {
				return err
			}
		}
		if _, err := s.policy(rec).match(rec.Callback); err != nil {
			return err
		}
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now().UTC()
	}
	return nil
}

// storeRecord writes the .accepted record, without the payload, with the message id that
// makes the Accept and the worker's repair one record.
func (s *Store) storeRecord(ctx context.Context, rec Record) (*jetstream.PubAck, error) {
	rec.Payload = nil
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encoding the record: %w", err)
	}
	ack, err := s.js.Publish(ctx, subject(rec.ID, "accepted"), data,
		jetstream.WithMsgID("req-accepted-"+rec.ID), jetstream.WithExpectStream(Stream))
	if err != nil {
		return nil, fmt.Errorf("storing the record: %w", err)
	}
	return ack, nil
}

// unqueue takes back a queue entry whose record could not be stored, so that a request the
// client was told failed does not run. It is best effort: the worker may have taken the
// entry already (it then wrote the record itself).
func (s *Store) unqueue(seq uint64, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.queue.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Warn("queue entry of a request not accepted could not be removed; it may still run", "seq", seq, "err", err)
	}
}

// wake tells this node's workers that something was queued.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Complete stores the result of a request and then, when the record names a callback,
// delivers it in the background. A result completed twice within the bus's
// de-duplication window is stored, and called back, once. A queued request completed
// before it ran does not run: the worker finds the result.
func (s *Store) Complete(ctx context.Context, id string, res Result) error {
	rec, err := s.record(ctx, id)
	if err != nil {
		return fmt.Errorf("requests: complete %s: %w", id, err)
	}
	if err := s.complete(ctx, rec, res); err != nil {
		return fmt.Errorf("requests: complete %s: %w", id, err)
	}
	return nil
}

// complete stores res as the result of rec and starts its callback.
func (s *Store) complete(ctx context.Context, rec *Record, res Result) error {
	if res.At.IsZero() {
		res.At = time.Now().UTC()
	}
	if len(res.Body) > 0 && !json.Valid(res.Body) {
		// A body that is not JSON is kept, as a string, rather than lost.
		res.Body, _ = json.Marshal(string(res.Body))
	}
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encoding the result: %w", err)
	}
	ack, err := s.js.Publish(ctx, subject(rec.ID, "result"), data,
		jetstream.WithMsgID("req-result-"+rec.ID), jetstream.WithExpectStream(Stream))
	if err != nil {
		return fmt.Errorf("storing the result: %w", err)
	}
	s.log.Info("request completed", "request", rec.ID, "status", res.Status, "failed", res.failed(), "duplicate", ack.Duplicate)
	if rec.Callback != "" && !ack.Duplicate {
		s.callBack(rec)
	}
	return nil
}

// record reads the accepted record of a request.
func (s *Store) record(ctx context.Context, id string) (*Record, error) {
	if !idPattern.MatchString(id) {
		return nil, ErrNotFound
	}
	var rec Record
	found, err := s.last(ctx, id, "accepted", &rec, nil)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	return &rec, nil
}

// last decodes into v the last message of one fact of a request, and reports whether
// there is one. at, when not nil, receives the time the message was stored.
func (s *Store) last(ctx context.Context, id, what string, v any, at *time.Time) (bool, error) {
	raw, err := s.records.GetLastMsgForSubject(ctx, subject(id, what))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s of request %s: %w", what, id, err)
	}
	if err := json.Unmarshal(raw.Data, v); err != nil {
		return false, fmt.Errorf("reading %s of request %s: %w", what, id, err)
	}
	if at != nil {
		*at = raw.Time
	}
	return true, nil
}

// Status returns what is known of a request, or ErrNotFound.
func (s *Store) Status(ctx context.Context, id string) (*Status, error) {
	rec, err := s.record(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("requests: status %s: %w", id, err)
	}
	st := &Status{ID: id, Record: *rec}
	st.Record.CallbackPolicy = nil
	res, err := s.result(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("requests: status: %w", err)
	}
	st.Result = res
	if rec.queued() {
		var a attempt
		if _, err := s.last(ctx, id, "attempt", &a, nil); err != nil {
			return nil, fmt.Errorf("requests: status: %w", err)
		}
		st.Attempts = a.Attempt
	}
	if rec.Callback != "" {
		var o CallbackOutcome
		found, err := s.last(ctx, id, "callback", &o, nil)
		if err != nil {
			return nil, fmt.Errorf("requests: status: %w", err)
		}
		if found {
			st.Callback = &o
		}
	}
	switch {
	case res != nil && res.failed():
		st.State = StateFailed
	case res != nil:
		st.State = StateCompleted
	case rec.queued():
		st.State = StateQueued
	default:
		st.State = StateAccepted
	}
	return st, nil
}

// result reads a request's result: the one stored, or else a flow's reply.
func (s *Store) result(ctx context.Context, id string) (*Result, error) {
	var res Result
	found, err := s.last(ctx, id, "result", &res, nil)
	if err != nil {
		return nil, err
	}
	if found {
		return &res, nil
	}
	var at time.Time
	res = Result{}
	found, err = s.last(ctx, id, "reply", &res, &at)
	if err != nil || !found {
		return nil, err
	}
	if res.At.IsZero() {
		res.At = at.UTC()
	}
	return &res, nil
}

// attempt is the record of a queued run started.
type attempt struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Node    string    `json:"node,omitempty"`
}

// metrics are the store's metrics.
type metrics struct {
	accepted  *prometheus.CounterVec
	depth     *prometheus.GaugeVec
	runs      *prometheus.CounterVec
	callbacks *prometheus.CounterVec
}

// newMetrics creates the metrics and registers them on reg, reusing those a previous
// store registered there.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_requests_accepted_total", Help: "Asynchronous gateway requests accepted, by kind.",
		}, []string{"kind"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_gateway_queue_depth", Help: "Gateway requests waiting in the queue, by system.",
		}, []string{"system"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_queued_runs_total", Help: "Gateway queue entries handled by this node, by outcome: completed, failed, retried, exhausted, waiting, duplicate, invalid, unstored.",
		}, []string{"outcome"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_callbacks_total", Help: "Callbacks of asynchronous gateway requests, by outcome: delivered, failed, refused.",
		}, []string{"outcome"}),
	}
	var err error
	if m.accepted, err = register(reg, m.accepted); err != nil {
		return nil, err
	}
	if m.depth, err = register(reg, m.depth); err != nil {
		return nil, err
	}
	if m.runs, err = register(reg, m.runs); err != nil {
		return nil, err
	}
	if m.callbacks, err = register(reg, m.callbacks); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c on reg, or returns the collector of the same kind already there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
