package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
)

// The errors queue as an operator's workbench.
//
// The ERRORS stream holds the open entries; an entry leaves it when an operator replays or
// discards it, and the audit trail keeps what was done with it. Listing reads the stream
// (by flow or source subject when the filter names one) and filters the rest in memory:
// the queue holds what needs a person's attention, thousands of entries rather than
// millions, and reading it from the stream keeps it the one source of truth on every node.
//
// A replay publishes the entry's message again addressed to the one flow that failed (the
// target attribute), as an original with retrycount 0, caused by the failed message and
// naming the entry (extension replayof). Its id is derived from the entry's, so a replay
// repeated after a crash is one message and one run.

// ExtReplayOf is the extension attribute naming the errors queue entry a message replays.
const ExtReplayOf = "replayof"

// ErrNotFound is an entry that is not (or no longer) in the queue.
var ErrNotFound = errors.New("no such entry in the errors queue")

// ErrNotReplayable is an entry that cannot be replayed: a source's raw event, or a flow
// that is not defined any more.
var ErrNotReplayable = errors.New("entry cannot be replayed")

// Options configures a Queue.
type Options struct {
	// Bus holds the ERRORS stream.
	Bus *bus.Bus
	// FlowTrigger says how a flow is triggered ("message", "schedule", "invoke"), and
	// whether it is defined.
	FlowTrigger func(flow string) (string, bool)
	// Check validates a message's data against its MessageType (after a patch).
	Check func(typ string, data []byte) error
	// Node names this node in replayed messages and audit records.
	Node string
	// Logger receives the queue's logs.
	Logger *slog.Logger
	// Registerer receives the queue's metrics.
	Registerer prometheus.Registerer
}

// Queue reads and works the errors queue.
type Queue struct {
	opts    Options
	log     *slog.Logger
	actions *prometheus.CounterVec
	audit   *Audit
}

// NewQueue returns the errors queue of a bus.
func NewQueue(opts Options) *Queue {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	q := &Queue{opts: opts, log: opts.Logger.With("component", "errors-queue"), audit: NewAudit(opts.Bus),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_errors_queue_actions_total", Help: "Errors queue entries replayed or discarded by operators.",
		}, []string{"action"})}
	if opts.Registerer != nil {
		// The queue's size is causeway_stream_messages{stream="ERRORS"}, which the bus reports.
		opts.Registerer.MustRegister(q.actions)
	}
	return q
}

// Audit returns the audit trail the queue records its actions in.
func (q *Queue) Audit() *Audit { return q.audit }

// Filter selects entries. Empty fields match everything.
type Filter struct {
	Origin      string    `json:"origin,omitempty"`
	Flow        string    `json:"flow,omitempty"`
	Source      string    `json:"source,omitempty"`
	System      string    `json:"system,omitempty"`
	Type        string    `json:"type,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Class       string    `json:"class,omitempty"`
	From        time.Time `json:"from,omitzero"`
	Until       time.Time `json:"until,omitzero"`
}

// Empty reports whether the filter selects every entry.
func (f Filter) Empty() bool { return f == Filter{} }

// Match reports whether e passes the filter.
func (f Filter) Match(e *Entry) bool {
	return (f.Origin == "" || e.Origin == f.Origin) && (f.Flow == "" || e.Flow == f.Flow) &&
		(f.Source == "" || e.Source == f.Source) && (f.System == "" || e.System == f.System) &&
		(f.Type == "" || e.Type == f.Type) && (f.Fingerprint == "" || e.Fingerprint == f.Fingerprint) &&
		(f.Class == "" || e.Class == f.Class) && (f.From.IsZero() || !e.Time.Before(f.From)) &&
		(f.Until.IsZero() || e.Time.Before(f.Until))
}

// subject is the narrowest subject that holds the entries the filter selects.
func (f Filter) subject() string {
	switch {
	case f.Flow != "" && f.Origin != OriginSource:
		return bus.SubjectErrors + "flow." + f.Flow
	case f.Source != "" && f.Origin != OriginFlow:
		return bus.SubjectErrors + "source." + f.Source
	case f.Origin != "":
		return bus.SubjectErrors + f.Origin + ".>"
	}
	return bus.SubjectErrors + ">"
}

// Each calls fn for every entry that passes the filter, oldest first, starting after the
// sequence after, until fn returns false. It reads the stream as it stood when called.
func (q *Queue) Each(ctx context.Context, f Filter, after uint64, fn func(*Entry) bool) error {
	s, err := q.opts.Bus.Stream(ctx, bus.StreamErrors)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || after >= last {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.subject()}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			e, derr := decodeEntry(m.Subject(), m.Data())
			if derr != nil {
				q.log.Warn("unreadable errors queue entry; skipping it", "seq", md.Sequence.Stream, "err", derr)
			} else {
				e.Seq = md.Sequence.Stream
				if f.Match(e) && !fn(e) {
					return nil
				}
			}
			if md.Sequence.Stream >= last || md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 {
			// Nothing right now although entries were pending: they were removed
			// meanwhile.
			return nil
		}
	}
}

// decodeEntry reads an entry and fills what older entries and source entries leave out.
func decodeEntry(subject string, data []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, err
	}
	rest := strings.TrimPrefix(subject, bus.SubjectErrors)
	origin, name, _ := strings.Cut(rest, ".")
	if e.Origin == "" {
		e.Origin = origin
	}
	if e.Origin == OriginSource && e.Source == "" {
		e.Source = name
	}
	if e.Class == "" {
		e.Class = ClassPermanent
	}
	if e.Fingerprint == "" {
		e.SetFingerprint()
	}
	return &e, nil
}

// List returns up to limit entries that pass the filter, oldest first, after the sequence
// after, and the sequence to list from next (0 when there are no more).
func (q *Queue) List(ctx context.Context, f Filter, after uint64, limit int) ([]*Entry, uint64, error) {
	var out []*Entry
	var next uint64
	err := q.Each(ctx, f, after, func(e *Entry) bool {
		if len(out) == limit {
			next = out[len(out)-1].Seq
			return false
		}
		out = append(out, e)
		return true
	})
	return out, next, err
}

// Get returns the entry with a sequence number or an id.
func (q *Queue) Get(ctx context.Context, handle string) (*Entry, error) {
	if seq, err := strconv.ParseUint(handle, 10, 64); err == nil && seq > 0 {
		s, err := q.opts.Bus.Stream(ctx, bus.StreamErrors)
		if err != nil {
			return nil, err
		}
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, handle)
		}
		if err != nil {
			return nil, err
		}
		e, err := decodeEntry(raw.Subject, raw.Data)
		if err != nil {
			return nil, err
		}
		e.Seq = seq
		return e, nil
	}
	var found *Entry
	err := q.Each(ctx, Filter{}, 0, func(e *Entry) bool {
		if e.ID == handle {
			found = e
			return false
		}
		return true
	})
	if err == nil && found == nil {
		err = fmt.Errorf("%w: %s", ErrNotFound, handle)
	}
	return found, err
}

// Action is what an operator asks of entries.
type Action struct {
	// Actor is who asks; Reason why.
	Actor, Reason string
	// Patch, for a replay, is a jq program that turns the message's data into the data to
	// replay (validated against the message type).
	Patch string
	// DryRun reports what would be done without doing it.
	DryRun bool
}

// Outcome is what an action did (or, dry, would do) to one entry.
type Outcome struct {
	Seq   uint64 `json:"seq"`
	Entry string `json:"entry"`
	Flow  string `json:"flow,omitempty"`
	// MessageID and RunID are the replayed message and the run it starts.
	MessageID string `json:"messageId,omitempty"`
	RunID     string `json:"runId,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Replay re-delivers an entry's message to the flow that failed and removes the entry.
// runID gives the id of the run a message starts in a flow.
func (q *Queue) Replay(ctx context.Context, e *Entry, a Action, runID func(flow, msgID string) string) (Outcome, error) {
	out := Outcome{Seq: e.Seq, Entry: e.ID, Flow: e.Flow}
	ev, subject, err := q.replayMessage(ctx, e, a.Patch)
	if err != nil {
		return out, err
	}
	out.MessageID, out.RunID = ev.ID, runID(e.Flow, ev.ID)
	if a.DryRun {
		return out, nil
	}
	nm := ev.ToNATS(subject)
	nm.Header.Set(message.HeaderNode, q.opts.Node)
	stream := bus.StreamMessages
	if strings.HasPrefix(subject, bus.SubjectInvoke) {
		stream = bus.StreamInvocations
	}
	if _, err := q.opts.Bus.JetStream().PublishMsg(ctx, nm, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(stream)); err != nil {
		return out, fmt.Errorf("publishing the replay: %w", err)
	}
	if err := q.settle(ctx, e, "replay", a, map[string]string{"messageId": ev.ID, "runId": out.RunID}); err != nil {
		return out, err
	}
	q.actions.WithLabelValues("replay").Inc()
	q.log.Info("errors queue entry replayed", "entry", e.ID, "seq", e.Seq, "flow", e.Flow, "message", ev.ID, "actor", a.Actor)
	return out, nil
}

// replayMessage builds the message a replay publishes, and the subject it goes to.
func (q *Queue) replayMessage(ctx context.Context, e *Entry, patch string) (*message.Event, string, error) {
	if e.Origin != OriginFlow {
		return nil, "", fmt.Errorf("%w: entry %d is a source's raw event, which never became a message; discard it, and have the system send it again", ErrNotReplayable, e.Seq)
	}
	trigger, ok := "", false
	if q.opts.FlowTrigger != nil {
		trigger, ok = q.opts.FlowTrigger(e.Flow)
	}
	if !ok {
		return nil, "", fmt.Errorf("%w: flow %q of entry %d is not defined any more", ErrNotReplayable, e.Flow, e.Seq)
	}
	if trigger == "invoke" {
		return nil, "", fmt.Errorf("%w: flow %q is invoked by callers, who got the failure; invoke it again", ErrNotReplayable, e.Flow)
	}
	orig, err := q.original(ctx, e)
	if err != nil {
		return nil, "", err
	}
	ev := *orig
	ev.ID = "replay-" + e.ID
	ev.Time = time.Now().UTC()
	ev.Kind = message.KindOriginal
	ev.RetryCount = 0
	ev.CausationID = orig.ID
	ev.Target = "flow:" + e.Flow
	ev.Extensions = map[string]string{}
	for k, v := range orig.Extensions {
		switch k {
		case "runid", "resubmitof", "parkseq":
		default:
			ev.Extensions[k] = v
		}
	}
	ev.Extensions[ExtReplayOf] = e.ID
	if patch != "" {
		if ev.Data, err = applyPatch(ctx, patch, ev.Data); err != nil {
			return nil, "", err
		}
		if q.opts.Check != nil {
			if err := q.opts.Check(ev.Type, ev.Data); err != nil {
				return nil, "", fmt.Errorf("%w: the patched data: %w", ErrBadPatch, err)
			}
		}
	}
	if trigger == "schedule" {
		return &ev, bus.SubjectInvoke + e.Flow, nil
	}
	return &ev, bus.Subject(ev.Type), nil
}

// ErrBadPatch is a patch that does not compile, fails, or yields data the message type
// rejects.
var ErrBadPatch = errors.New("bad patch")

// CheckPatch compiles a patch.
func CheckPatch(src string) (*expr.Program, error) {
	p, err := expr.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPatch, err)
	}
	return p, nil
}

// applyPatch runs a jq program over the data.
func applyPatch(ctx context.Context, src string, data []byte) ([]byte, error) {
	p, err := CheckPatch(src)
	if err != nil {
		return nil, err
	}
	var in any
	if len(data) > 0 {
		if in, err = expr.DecodeJSON(data); err != nil {
			return nil, fmt.Errorf("%w: the message data is not JSON: %w", ErrBadPatch, err)
		}
	}
	out, err := p.Eval(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPatch, err)
	}
	return expr.MarshalJSON(out)
}

// original is the entry's failed message: from the entry, or from the bus when it did not
// fit in it.
func (q *Queue) original(ctx context.Context, e *Entry) (*message.Event, error) {
	if len(e.Message) > 0 {
		ev, err := message.DecodeStructured(e.Message, "")
		if err != nil {
			return nil, fmt.Errorf("entry %d: its message: %w", e.Seq, err)
		}
		return ev, nil
	}
	if e.MessageStream == "" || e.MessageSeq == 0 {
		return nil, fmt.Errorf("%w: entry %d holds no message", ErrNotReplayable, e.Seq)
	}
	s, err := q.opts.Bus.Stream(ctx, e.MessageStream)
	if err != nil {
		return nil, err
	}
	raw, err := s.GetMsg(ctx, e.MessageSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: the message of entry %d is no longer on the bus (past its retention)", ErrNotReplayable, e.Seq)
	}
	if err != nil {
		return nil, err
	}
	return message.FromNATS(raw.Header, raw.Data)
}

// Discard removes an entry, recording why.
func (q *Queue) Discard(ctx context.Context, e *Entry, a Action) (Outcome, error) {
	out := Outcome{Seq: e.Seq, Entry: e.ID, Flow: e.Flow}
	if a.DryRun {
		return out, nil
	}
	if err := q.settle(ctx, e, "discard", a, nil); err != nil {
		return out, err
	}
	q.actions.WithLabelValues("discard").Inc()
	q.log.Info("errors queue entry discarded", "entry", e.ID, "seq", e.Seq, "flow", e.Flow, "actor", a.Actor, "reason", a.Reason)
	return out, nil
}

// settle audits an action on an entry and takes the entry out of the queue. The audit
// record comes first: an entry gone without a record of why must not happen.
func (q *Queue) settle(ctx context.Context, e *Entry, action string, a Action, detail map[string]string) error {
	rec := Record{Action: "errors." + action, Actor: a.Actor, Reason: a.Reason, Target: "errors/" + strconv.FormatUint(e.Seq, 10),
		Detail: map[string]string{"entry": e.ID, "fingerprint": e.Fingerprint}}
	if e.Flow != "" {
		rec.Detail["flow"] = e.Flow
	}
	if a.Patch != "" {
		rec.Detail["patch"] = a.Patch
	}
	for k, v := range detail {
		rec.Detail[k] = v
	}
	if err := q.audit.Record(ctx, rec, q.opts.Node); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	s, err := q.opts.Bus.Stream(ctx, bus.StreamErrors)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, e.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("removing entry %d: %w", e.Seq, err)
	}
	return nil
}

// Bulk applies an action to every entry that passes a filter, at most perSecond entries a
// second, and returns what it did to each (up to limit entries; 0 for all). Entries that
// fail are reported and skipped; the rest go on.
func (q *Queue) Bulk(ctx context.Context, f Filter, action string, a Action, perSecond float64, limit int, runID func(flow, msgID string) string) ([]Outcome, error) {
	var entries []*Entry
	err := q.Each(ctx, f, 0, func(e *Entry) bool {
		entries = append(entries, e)
		return limit <= 0 || len(entries) < limit
	})
	if err != nil {
		return nil, err
	}
	if perSecond <= 0 {
		perSecond = 20
	}
	lim := rate.NewLimiter(rate.Limit(perSecond), 1)
	out := make([]Outcome, 0, len(entries))
	for _, e := range entries {
		if !a.DryRun {
			if err := lim.Wait(ctx); err != nil {
				return out, err
			}
		}
		var o Outcome
		var err error
		if action == "replay" {
			o, err = q.Replay(ctx, e, a, runID)
		} else {
			o, err = q.Discard(ctx, e, a)
		}
		if err != nil {
			o.Error = err.Error()
		}
		out = append(out, o)
	}
	return out, nil
}
