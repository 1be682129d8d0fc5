package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/reliability"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/system/status"
)

// Options configures an Engine.
type Options struct {
	// Bus is where trigger messages come from and follow-ups go.
	Bus *bus.Bus
	// Config holds the flows and the systems they call.
	Config *config.Config
	// Connectors carry out the call steps' operations; when nil the engine makes its own
	// and closes them when it stops.
	Connectors *connector.Set
	// Check validates the data of a message a flow publishes against its MessageType.
	Check func(typ string, data []byte) error
	// Node names this node in run records and published messages.
	Node string
	// AckWait is how long a delivered trigger may go without a sign of life before the bus
	// delivers it again (to this node or another); runs in progress renew it.
	AckWait time.Duration
	// Status holds the systems' statuses: calls to a system that is offline or in
	// maintenance are parked, retried or failed as its delivery.whenOffline says, and
	// every call's outcome feeds its circuit breaker. Nil calls regardless.
	Status *status.Registry
	// OnDeadLetter is told of every delivery this node puts into the errors queue (for
	// alerts); it must not block for long.
	OnDeadLetter func(*reliability.Entry)
	// Logger receives the engine's logs.
	Logger *slog.Logger
	// Registerer receives the engine's metrics.
	Registerer prometheus.Registerer
}

// Engine runs the flows of a configuration: one durable consumer of MESSAGES per flow with
// a message trigger, and a runner per delivered message.
type Engine struct {
	opts    Options
	log     *slog.Logger
	journal *journal
	conns   *connector.Set
	// ownConns says the engine made conns and closes them.
	ownConns bool
	systems  map[string]*system.Spec
	flows    []*loadedFlow
	metrics  *metrics
	parked   *parkedCounts
	limits   *limits

	mu      sync.Mutex
	running []jetstream.ConsumeContext
	wg      sync.WaitGroup // runs in progress
	helpers sync.WaitGroup // background helpers, which end when halt closes
	halt    chan struct{}
	halted  chan struct{} // closed when Stop begins: idle workers end
	stop    context.CancelFunc
	ctx     context.Context
}

// loadedFlow is a flow of the configuration.
type loadedFlow struct {
	name string
	spec *Spec
	conc int           // runs at once (keys at once, for a keyed flow)
	sem  chan struct{} // a slot per run (per active key) in progress
	keys *keyQueues    // per-key queues of a flow with a key; nil otherwise
	// startSeq is the last sequence of the trigger stream when the flow started here.
	startSeq uint64
}

// triggerKind names what starts the flow's runs, as run records show it.
func (f *loadedFlow) triggerKind() string {
	switch {
	case f.spec.Trigger.Invoke != nil:
		return "invoke"
	case f.spec.Trigger.Schedule != nil:
		return "schedule"
	}
	return "message"
}

// ConsumerName is the durable consumer of a flow on MESSAGES.
func ConsumerName(flow string) string { return "flow_" + flow }

// NewEngine prepares the flows of opts.Config: it opens the journal and creates each flow's
// consumer. Flows whose trigger this version does not run yet (schedule, invoke) are
// reported in the log and left alone.
func NewEngine(ctx context.Context, opts Options) (*Engine, error) {
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	e := &Engine{opts: opts, log: opts.Logger.With("component", "flows"), conns: opts.Connectors, systems: map[string]*system.Spec{}}
	if e.conns == nil {
		e.conns, e.ownConns = connector.New(connector.Options{Node: opts.Node, Registerer: opts.Registerer}), true
	}
	for _, r := range opts.Config.ByKind(system.Kind) {
		e.systems[r.Metadata.Name] = r.Spec.(*system.Spec)
	}
	for _, r := range opts.Config.ByKind(Kind) {
		spec := r.Spec.(*Spec)
		f := &loadedFlow{name: r.Metadata.Name, spec: spec, conc: spec.Concurrency, sem: make(chan struct{}, spec.Concurrency)}
		if spec.Key != "" {
			f.keys = &keyQueues{queues: map[string][]jetstream.Msg{}}
		}
		e.flows = append(e.flows, f)
	}
	sort.Slice(e.flows, func(i, j int) bool { return e.flows[i].name < e.flows[j].name })
	e.metrics = newMetrics(opts.Registerer)
	e.parked = &parkedCounts{bus: opts.Bus}
	e.limits = newLimits(e.systems)
	js := opts.Bus.JetStream()
	var err error
	if e.journal, err = openJournal(ctx, js); err != nil {
		return nil, err
	}
	return e, nil
}

// Run returns the record of a run, or nil when there is none.
func (e *Engine) Run(ctx context.Context, id string) (*Run, error) { return e.journal.load(ctx, id) }

// Start creates each flow's consumer and starts consuming.
func (e *Engine) Start(ctx context.Context) error {
	e.ctx, e.stop = context.WithCancel(context.Background())
	e.halt = make(chan struct{})
	e.halted = e.halt
	js := e.opts.Bus.JetStream()
	e.removeStaleConsumers(ctx)
	if e.opts.Status != nil && len(e.flows) > 0 {
		for name := range e.systems {
			e.helpers.Add(1)
			go e.releaser(name, e.halt)
		}
	}
	for _, f := range e.flows {
		stream, subjects := bus.StreamInvocations, []string{bus.SubjectInvoke + f.name}
		if m := f.spec.Trigger.Message; m != nil {
			stream, subjects = bus.StreamMessages, make([]string, len(m.Types))
			for i, t := range m.Types {
				subjects[i] = bus.Subject(t)
			}
		}
		// Every message stored before this start may have a run already (a crash of the
		// node, with the embedded server in it, can leave its delivery uncounted); later
		// ones can only have one if they are delivered again. See handle.
		if st, err := js.Stream(ctx, stream); err == nil {
			f.startSeq = st.CachedInfo().State.LastSeq
		} else {
			f.startSeq = ^uint64(0) // unknown: look every run up
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		pending := f.conc
		if f.keys != nil {
			// Messages for a busy key wait in memory, unacknowledged, while other keys go
			// on; the bound on them is the bound on that memory.
			pending = f.conc * keyedBacklog
		}
		cfg := jetstream.ConsumerConfig{
			Durable:        ConsumerName(f.name),
			Description:    "Causeway flow " + f.name,
			FilterSubjects: subjects,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        e.opts.AckWait,
			MaxAckPending:  pending,
			// A new flow starts with the messages accepted from now on.
			DeliverPolicy: jetstream.DeliverNewPolicy,
		}
		if len(subjects) == 1 {
			// One subject in the field every server version knows (several need 2.10).
			cfg.FilterSubject, cfg.FilterSubjects = subjects[0], nil
		}
		cons, err := js.CreateOrUpdateConsumer(cctx, stream, cfg)
		cancel()
		if err != nil {
			e.Stop(0)
			return fmt.Errorf("flow %s: consumer: %w", f.name, err)
		}
		if f.keys != nil {
			e.helpers.Add(1)
			go e.keepQueuedAlive(f, e.halt)
		}
		if f.spec.Trigger.Schedule != nil {
			e.helpers.Add(1)
			go e.schedule(f, e.halt)
		}
		// Runs of a flow without a key are worked by a pool of conc long-lived workers:
		// their stacks stay grown between runs (a run's expressions go deep), which saves
		// the copying a fresh goroutine per run would cost.
		work := make(chan jetstream.Msg)
		if f.keys == nil {
			for range f.conc {
				e.wg.Add(1)
				go func() {
					defer e.wg.Done()
					for {
						select {
						case m := <-work:
							e.handle(f, m)
						case <-e.halted:
							return
						}
					}
				}()
			}
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			if f.keys != nil {
				e.dispatchKeyed(f, m)
				return
			}
			// Blocking here holds back the next delivery: the flow's concurrency is the
			// limit, together with the consumer's MaxAckPending.
			select {
			case work <- m:
			case <-e.halted:
			}
		})
		if err != nil {
			e.Stop(0)
			return fmt.Errorf("flow %s: consume: %w", f.name, err)
		}
		e.mu.Lock()
		e.running = append(e.running, cc)
		e.mu.Unlock()
		e.log.Info("flow running", "flow", f.name, "subjects", subjects, "concurrency", f.conc)
	}
	return nil
}

// Stop stops taking trigger messages and waits up to grace for the runs in progress; the
// rest are cancelled, and their triggers are delivered again later, so they resume from
// their journals.
func (e *Engine) Stop(grace time.Duration) {
	e.mu.Lock()
	for _, cc := range e.running {
		cc.Stop()
	}
	e.running = nil
	if e.halt != nil {
		close(e.halt)
		e.halt = nil
	}
	e.mu.Unlock()
	e.helpers.Wait()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		if e.stop != nil {
			e.stop()
		}
		<-done
	}
	if e.stop != nil {
		e.stop()
	}
	if e.ownConns {
		e.conns.Close()
	}
}

// handle runs (or resumes) the run for one delivered trigger message, and settles the
// message: acknowledged when the run has ended, delivered again later when it waits or
// when the platform failed under it.
func (e *Engine) handle(f *loadedFlow, m jetstream.Msg) {
	ev, err := message.FromNATS(m.Headers(), m.Data())
	if err != nil {
		// Ingestion only stores valid messages, so this is not one of ours: nothing a
		// run could do with it.
		e.log.Error("undecodable message on the bus; skipping it", "flow", f.name, "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	ctx := e.ctx
	if ev.Target != "" && ev.Target != TargetPrefix+f.name {
		// A message resubmitted to another flow: not this flow's business.
		_ = m.Ack()
		return
	}
	data, err := decodeData(ev)
	if err != nil {
		e.log.Error("message data is not JSON; skipping it", "flow", f.name, "message", ev.ID, "err", err)
		_ = m.Term()
		return
	}
	envelope := envelopeOf(ev)
	if flt := f.spec.compiled.filter; flt != nil {
		ok, err := flt.Bool(ctx, expr.Input{Message: envelope, Data: data}.Doc())
		if err != nil || !ok {
			if err != nil {
				e.log.Warn("filter failed; the message does not start a run", "flow", f.name, "message", ev.ID, "err", err)
			}
			e.metrics.filtered.WithLabelValues(f.name).Inc()
			_ = m.Ack()
			return
		}
	}

	// Keep the delivery alive while the run works: a run may take longer than AckWait. A
	// timer that re-arms itself costs nothing for the many runs that end before it fires.
	var alive *time.Timer
	var aliveMu sync.Mutex
	stopped := false
	var renew func()
	renew = func() {
		_ = m.InProgress()
		aliveMu.Lock()
		if !stopped {
			alive.Reset(e.opts.AckWait / 3)
		}
		aliveMu.Unlock()
	}
	aliveMu.Lock()
	alive = time.AfterFunc(e.opts.AckWait/3, renew)
	aliveMu.Unlock()
	defer func() {
		aliveMu.Lock()
		stopped = true
		alive.Stop()
		aliveMu.Unlock()
	}()

	id := RunID(f.name, ev.ID)
	retry := retryOf(f, ev)
	if retry != "" {
		id = retry
	}
	// A run exists already only for a trigger that was delivered before: one stored before
	// this node started (after a crash of the node and its embedded server, the earlier
	// delivery may not have been counted, since consumer state is written lazily) or one
	// the bus counts as delivered again; and for a retry message. Any other delivery is a
	// trigger's first, and skipping its lookup saves a round trip to the bus per run.
	var run *Run
	if md, merr := m.Metadata(); retry != "" || merr != nil || md.NumDelivered > 1 || md.Sequence.Stream <= f.startSeq {
		run, err = e.journal.load(ctx, id)
	}
	if err != nil {
		e.retryLater(m, f, ev, err)
		return
	}
	if run != nil && (run.Status == StatusSucceeded || run.Status == StatusFailed) {
		_ = m.Ack() // delivered again after the run ended: nothing left to do
		return
	}
	if run != nil && e.superseded(f, ev, run, retry != "") {
		// A retry message that a later one replaces, or the original delivery of a run
		// that its retry message continues: the run is someone else's to carry on.
		_ = m.Ack()
		return
	}
	if run == nil {
		run = &Run{ID: id, Flow: f.name, Status: StatusRunning, Started: time.Now().UTC(),
			Trigger:       RunTrigger{Kind: f.triggerKind(), MessageID: ev.ID, Type: ev.Type, Source: ev.Source},
			ResubmitOf:    ev.Extensions[ExtResubmitOf],
			CorrelationID: ev.CorrelationID}
		if k := f.spec.compiled.key; k != nil {
			if v, err := k.Eval(ctx, expr.Input{Message: envelope, Data: data}.Doc()); err == nil {
				run.Key = expr.ToString(v)
			}
		}
		if md, err := m.Metadata(); err == nil {
			run.Trigger.Stream, run.Trigger.Seq = md.Stream, md.Sequence.Stream
		}
		if retry != "" {
			// A continuation of a run whose record is gone: the journal is written without
			// an fsync of its own, so a crash of the node with its embedded bus can take the
			// record while the retry message it scheduled survives. The run goes on from
			// where the message says it is; started again from none, its next retry would
			// get the id of the message just delivered, which the bus drops as a duplicate,
			// and the run would wait for a retry that never comes.
			e.superseded(f, ev, run, true)
		}
		run.index()
		e.metrics.started.WithLabelValues(f.name).Inc()
	}
	run.Attempt++
	run.Status = StatusRunning
	run.Node = e.opts.Node
	r := &runner{rt: e.runtime(), f: f, ev: ev, run: run, data: data, msg: envelope, outs: map[string]any{}, vars: run.Vars,
		replyTo: m.Headers().Get(bus.HeaderReplyTo), gatewayRequest: m.Headers().Get(bus.HeaderGatewayRequest)}
	if n := len(f.spec.Steps); n > 0 {
		r.last = f.spec.Steps[n-1].ID
	}
	e.metrics.inflight.WithLabelValues(f.name).Inc()
	defer e.metrics.inflight.WithLabelValues(f.name).Dec()

	err = r.steps(ctx, f.spec.Steps, "", nil)
	var we *waitError
	var ie *infraError
	for f.keys != nil && errors.As(err, &we) {
		// A keyed flow holds its key while a run waits, so that the next message for the
		// key cannot overtake it: it waits here, the delivery kept alive, instead of
		// handing the message back to the bus. A crash meanwhile loses nothing: the
		// journal holds when the wait ends.
		run.Status = StatusWaiting
		if serr := r.save(ctx); serr != nil {
			e.retryLater(m, f, ev, serr)
			return
		}
		select {
		case <-time.After(time.Until(we.until)):
		case <-ctx.Done():
			return
		}
		run.Status = StatusRunning
		err = r.steps(ctx, f.spec.Steps, "", nil)
	}
	switch {
	case errors.As(err, &we):
		run.Status = StatusWaiting
		if serr := r.save(ctx); serr != nil {
			e.retryLater(m, f, ev, serr)
			return
		}
		_ = m.NakWithDelay(max(time.Until(we.until), 0))
		return
	case errors.As(err, &ie), ctx.Err() != nil:
		e.retryLater(m, f, ev, err)
		return
	case isPark(err):
		pe, _ := errPark(err)
		if perr := e.park(ctx, f, ev, run, pe); perr != nil {
			e.retryLater(m, f, ev, perr)
			return
		}
		if serr := r.save(ctx); serr != nil {
			e.retryLater(m, f, ev, serr)
			return
		}
		_ = m.Ack()
		return
	case err != nil:
		if f.retries() {
			retried, rerr := e.scheduleRetry(ctx, f, ev, run, err)
			if rerr != nil {
				e.retryLater(m, f, ev, rerr)
				return
			}
			if retried {
				if serr := r.save(ctx); serr != nil {
					e.retryLater(m, f, ev, serr)
					return
				}
				if f.retryByMessage(e.opts.Bus) {
					_ = m.Ack()
				} else {
					_ = m.NakWithDelay(max(time.Until(run.NextRetry), time.Second))
				}
				return
			}
			e.noteFailure(run, err, time.Time{})
		}
		run.Error = err.Error()
		if len(f.spec.OnError) > 0 {
			r.vars = withError(r.vars, err)
			if oerr := r.steps(ctx, f.spec.OnError, "", nil); oerr != nil {
				if errors.As(oerr, &ie) || errors.As(oerr, &we) || ctx.Err() != nil {
					e.retryLater(m, f, ev, oerr)
					return
				}
				run.Error += "; onError: " + oerr.Error()
			}
		}
		run.Status = StatusFailed
	default:
		run.Status = StatusSucceeded
	}
	run.Ended = time.Now().UTC()
	if run.Status == StatusFailed && f.retries() {
		// Into the errors queue before the run is recorded as failed: a crash between the
		// two repeats the entry (which the queue drops as a duplicate), never loses it.
		if derr := e.deadLetter(ctx, f, ev, run, err); derr != nil {
			e.retryLater(m, f, ev, derr)
			return
		}
	}
	if err := r.save(ctx); err != nil {
		e.retryLater(m, f, ev, err)
		return
	}
	if f.spec.Trigger.Invoke != nil {
		r.finalReply()
	}
	e.metrics.finished.WithLabelValues(f.name, run.Status).Inc()
	e.metrics.runDuration.WithLabelValues(f.name, run.Status).Observe(run.Ended.Sub(run.Started).Seconds())
	if run.Status == StatusFailed {
		e.log.Warn("run failed", "flow", f.name, "run", run.ID, "message", ev.ID, "err", run.Error)
	}
	_ = m.Ack()
}

// retryLater leaves a run for the next delivery of its trigger.
func (e *Engine) retryLater(m jetstream.Msg, f *loadedFlow, ev *message.Event, err error) {
	if e.ctx.Err() != nil {
		return // stopping: the delivery runs out and comes back after a restart
	}
	e.log.Warn("run interrupted; it resumes from its journal on the next delivery", "flow", f.name, "message", ev.ID, "err", err)
	_ = m.NakWithDelay(time.Second)
}

// withError gives onError steps the failure as .vars.error.
func withError(vars map[string]any, err error) map[string]any {
	out := map[string]any{}
	for k, v := range vars {
		out[k] = v
	}
	out["error"] = err.Error()
	return out
}

// decodeData decodes a trigger's data for expressions.
func decodeData(ev *message.Event) (any, error) {
	if len(ev.Data) == 0 {
		return nil, nil
	}
	return expr.DecodeJSON(ev.Data)
}

// envelopeOf is a message's attributes as expressions see them in .message.
func envelopeOf(ev *message.Event) map[string]any {
	m := map[string]any{
		"id": ev.ID, "source": ev.Source, "type": ev.Type, "specversion": ev.SpecVersion,
		"kind": ev.Kind, "retrycount": ev.RetryCount, "correlationid": ev.CorrelationID,
	}
	if !ev.Time.IsZero() {
		m["time"] = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range map[string]string{"subject": ev.Subject, "causationid": ev.CausationID, "target": ev.Target, "operation": ev.Operation, "datacontenttype": ev.DataContentType} {
		if v != "" {
			m[k] = v
		}
	}
	for k, v := range ev.Extensions {
		m[k] = v
	}
	return m
}

// removeStaleConsumers deletes the consumers of flows that are no longer defined (removed
// or renamed), which would otherwise hold their position on the stream forever and show as
// an ever-growing lag.
func (e *Engine) removeStaleConsumers(ctx context.Context) {
	defined := map[string]bool{}
	for _, r := range e.opts.Config.ByKind(Kind) {
		defined[ConsumerName(r.Metadata.Name)] = true
	}
	js := e.opts.Bus.JetStream()
	for _, stream := range []string{bus.StreamMessages, bus.StreamInvocations} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			continue
		}
		names := s.ConsumerNames(ctx)
		var stale []string
		for name := range names.Name() {
			if strings.HasPrefix(name, "flow_") && !defined[name] {
				stale = append(stale, name)
			}
		}
		for _, name := range stale {
			if err := s.DeleteConsumer(ctx, name); err != nil {
				e.log.Warn("could not remove the consumer of a flow that is no longer defined", "consumer", name, "err", err)
				continue
			}
			e.log.Info("removed the consumer of a flow that is no longer defined", "stream", stream, "consumer", name)
		}
	}
}
