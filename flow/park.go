package flow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/system/status"
)

// Parking.
//
// Before a call step calls a system, it looks at the system's status. While the system is
// offline or in maintenance, the system's delivery.whenOffline says what happens: retry (a
// transient failure: the retry path), fail (a permanent one: the errors queue), or park
// (the default). A parked delivery is a copy of the run's trigger in the PARKED stream, on
// cw.park.<system>, naming the run (extension runid) and its turn (extension parkseq); the
// run is recorded as parked and its delivery acknowledged. No call is made and no retry is
// spent.
//
// Every node runs a releaser per system: while the system is available, it takes the
// parked deliveries in the order they were parked and publishes each again addressed to
// its flow, which continues the run from the step it parked at. The rate ramps from a
// tenth of the system's delivery.release.rate to all of it over rampUp, so that a system
// that just came back is not flooded. While a system has parked deliveries, new ones for
// it are parked too, behind them, so that they cannot overtake.

// ExtParkSeq is the extension attribute of a released delivery: the run's parking it ends.
const ExtParkSeq = "parkseq"

// parkError is a call not made because its system is not available and parks.
type parkError struct {
	system string
	status status.Status
}

func (e *parkError) Error() string {
	return fmt.Sprintf("system %s is %s (%s): delivery parked", e.system, e.status.Status, e.status.Reason)
}

// OfflineError is a call not made because its system is offline or in maintenance, when
// the system does not park: transient when it retries, permanent when it fails.
type OfflineError struct {
	System    string
	Status    status.Status
	transient bool
}

func (e *OfflineError) Error() string {
	return fmt.Sprintf("system %s is %s (%s %s): call not made", e.System, e.Status.Status, e.Status.Cause, e.Status.Reason)
}

// TransientError says whether the retry path takes the failure.
func (e *OfflineError) TransientError() bool { return e.transient }

// gate decides whether a call to a system may be made now.
func (e *Engine) gate(name string, released bool, whenOffline string) error {
	if e.opts.Status == nil {
		return nil
	}
	st, ok := e.opts.Status.Get(name)
	if !ok {
		return nil
	}
	mode := e.systems[name].OfflineMode()
	if whenOffline != "" {
		mode = whenOffline
	}
	if st.Available() {
		// Behind a backlog of parked deliveries, a new one waits its turn.
		if mode == system.WhenOfflinePark && !released && e.parked.count(name) > 0 {
			return &parkError{system: name, status: st}
		}
		return nil
	}
	switch mode {
	case system.WhenOfflineRetry:
		return &OfflineError{System: name, Status: st, transient: true}
	case system.WhenOfflineFail:
		return &OfflineError{System: name, Status: st}
	}
	return &parkError{system: name, status: st}
}

// park stores the run's delivery in PARKED and records the run as parked.
func (e *Engine) park(ctx context.Context, f *loadedFlow, ev *message.Event, run *Run, pe *parkError) error {
	k := run.Parks + 1
	p := *ev
	p.ID = "park-" + run.ID + "-" + strconv.Itoa(k)
	p.CausationID = ev.ID
	p.Target = TargetPrefix + f.name
	p.Extensions = map[string]string{}
	for key, v := range ev.Extensions {
		p.Extensions[key] = v
	}
	p.Extensions[ExtRunID] = run.ID
	p.Extensions[ExtParkSeq] = strconv.Itoa(k)
	msg := p.ToNATS(bus.SubjectParked + pe.system)
	msg.Header.Set(message.HeaderNode, e.opts.Node)
	if _, err := e.opts.Bus.JetStream().PublishMsg(ctx, msg, jetstream.WithMsgID(p.ID), jetstream.WithExpectStream(bus.StreamParked)); err != nil {
		return &infraError{err}
	}
	e.parked.add(pe.system, 1)
	run.Parks, run.ParkedOn, run.Status = k, pe.system, StatusParked
	run.Error = pe.Error()
	e.metrics.parked.WithLabelValues(f.name, pe.system).Inc()
	e.log.Info("delivery parked", "flow", f.name, "run", run.ID, "system", pe.system, "status", pe.status.Status, "reason", pe.status.Reason)
	return nil
}

// parkedCounts caches how many deliveries are parked per system, from the stream's
// subject counts: the same for every node, read at most twice a second.
type parkedCounts struct {
	bus *bus.Bus

	mu     sync.Mutex
	counts map[string]int
	read   time.Time
}

// count returns the deliveries parked for a system.
func (p *parkedCounts) count(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.read) > 500*time.Millisecond {
		p.refresh()
	}
	return p.counts[name]
}

// refresh reads the counts; the caller holds mu.
func (p *parkedCounts) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.read = time.Now()
	s, err := p.bus.Stream(ctx, bus.StreamParked)
	if err != nil {
		return
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectParked+">"))
	if err != nil {
		return
	}
	counts := map[string]int{}
	for subj, n := range info.State.Subjects {
		counts[strings.TrimPrefix(subj, bus.SubjectParked)] = int(n)
	}
	p.counts = counts
}

// add adjusts a count between reads (this node's own parkings and releases).
func (p *parkedCounts) add(name string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.counts == nil {
		p.counts = map[string]int{}
	}
	p.counts[name] = max(p.counts[name]+n, 0)
}

// Parked returns how many deliveries are parked for each system.
func (e *Engine) Parked() map[string]int {
	e.parked.mu.Lock()
	defer e.parked.mu.Unlock()
	e.parked.refresh()
	out := map[string]int{}
	for k, v := range e.parked.counts {
		out[k] = v
	}
	return out
}

// releaseConsumer is the durable consumer of a system's parked deliveries.
func releaseConsumer(name string) string {
	return "release_" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(name)
}

// releaser lets a system's parked deliveries go while the system is available.
func (e *Engine) releaser(name string, halt <-chan struct{}) {
	defer e.helpers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-halt
		cancel()
	}()
	policy := e.systems[name].ReleasePolicy()
	var cons jetstream.Consumer
	var started time.Time // when the system became available; zero while it is not
	lim := rate.NewLimiter(rate.Limit(policy.RateAt(0)), 1)
	for ctx.Err() == nil {
		st, _ := e.opts.Status.Get(name)
		if !st.Available() || e.parked.count(name) == 0 {
			started = time.Time{}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if started.IsZero() {
			started = time.Now()
			e.log.Info("releasing parked deliveries", "system", name, "parked", e.parked.count(name), "rate", policy.Rate, "rampUp", policy.RampUp)
		}
		if cons == nil {
			var err error
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			cons, err = e.opts.Bus.JetStream().CreateOrUpdateConsumer(cctx, bus.StreamParked, jetstream.ConsumerConfig{
				Durable: releaseConsumer(name), Description: "Causeway: releases the parked deliveries of system " + name,
				FilterSubject: bus.SubjectParked + name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
				MaxAckPending: 1,
			})
			ccancel()
			if err != nil {
				e.log.Warn("parked deliveries: consumer", "system", name, "err", err)
				cons = nil
				time.Sleep(time.Second)
				continue
			}
		}
		lim.SetLimit(rate.Limit(policy.RateAt(time.Since(started))))
		if err := lim.Wait(ctx); err != nil {
			return
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			continue
		}
		for m := range batch.Messages() {
			if err := e.release(ctx, m); err != nil {
				e.log.Warn("parked delivery not released; it is tried again", "system", name, "err", err)
				_ = m.NakWithDelay(time.Second)
				continue
			}
			_ = m.Ack()
			e.parked.add(name, -1)
			e.metrics.released.WithLabelValues(name).Inc()
		}
	}
}

// release publishes a parked delivery again, addressed to its flow.
func (e *Engine) release(ctx context.Context, m jetstream.Msg) error {
	ev, err := message.FromNATS(m.Headers(), m.Data())
	if err != nil {
		return err
	}
	runID, k := ev.Extensions[ExtRunID], ev.Extensions[ExtParkSeq]
	flowName := strings.TrimPrefix(ev.Target, TargetPrefix)
	trigger, ok := e.TriggerOf(flowName)
	if !ok {
		// The flow is gone: nothing would run the delivery.
		e.log.Warn("parked delivery of a flow no longer defined; dropped", "flow", flowName, "run", runID)
		return nil
	}
	parkedID := ev.ID
	ev.ID = "release-" + runID + "-" + k
	ev.CausationID = parkedID
	subject, stream := bus.Subject(ev.Type), bus.StreamMessages
	if trigger != "message" {
		subject, stream = bus.SubjectInvoke+flowName, bus.StreamInvocations
	}
	msg := ev.ToNATS(subject)
	msg.Header.Set(message.HeaderNode, e.opts.Node)
	_, err = e.opts.Bus.JetStream().PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(stream))
	return err
}

// errPark reports whether err is a parked call.
func errPark(err error) (*parkError, bool) {
	var pe *parkError
	ok := errors.As(err, &pe)
	return pe, ok
}

// isPark reports whether err is a parked call.
func isPark(err error) bool {
	_, ok := errPark(err)
	return ok
}

// OldestParked returns, per system with parked deliveries, when the oldest was parked.
func (e *Engine) OldestParked(ctx context.Context) (map[string]time.Time, error) {
	s, err := e.opts.Bus.Stream(ctx, bus.StreamParked)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectParked+">"))
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for subj, n := range info.State.Subjects {
		if n == 0 {
			continue
		}
		raw, err := s.GetMsg(ctx, info.State.FirstSeq, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			continue
		}
		out[strings.TrimPrefix(subj, bus.SubjectParked)] = raw.Time
	}
	return out, nil
}
