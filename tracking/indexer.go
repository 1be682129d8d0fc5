// Package tracking keeps the tracking index: it reads the bus's streams and writes what it
// reads into the store, together with the stream position it has reached. Because the index
// is derived from the streams, a crash between accepting a message and indexing it loses
// nothing: the indexer resumes right after the position stored with the last batch that
// committed, and re-indexing an entry is harmless.
package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/store"
	"github.com/nats-io/nats.go/jetstream"
)

// maxBatch bounds the transactions of the streams read through nats.go (tracking events
// and run records, whose entries carry their bodies), and a transaction of that many is
// written without lingering for more; it is also how many such entries one pull asks for.
// MESSAGES, read through the header consumer, has busyBatch and maxCatchUp instead.
const maxBatch = 1000

// maxCatchUp bounds the transactions of the MESSAGES stream read through the bus's header
// consumer, whose entries are a few short attributes each. At a steady rate the index
// writes what arrives within the linger, up to busyBatch; when it has fallen behind (after
// a burst, or during one faster than it writes) what gathered while it wrote the last
// transaction goes into the next, up to this many. SQLite writes each page a transaction
// changed once, so a larger transaction changes fewer pages per message: random message
// ids (the UUIDs the CloudEvents SDKs make) land in random pages of the id index, and
// indexing one cost 12.2 µs in transactions of 1,000 against 6.0 µs in transactions of
// 20,000 (BenchmarkIndexTransactionSize, docs/performance.md).
const maxCatchUp = 20000

// lingerTime is how long a transaction waits to fill once its first entry has arrived.
// It bounds how long after its 202 a message may not yet be found while messages arrive
// at a moderate rate.
const lingerTime = 20 * time.Millisecond

// A busy index lingers longer. When busyAt entries or more have arrived within lingerTime
// (25,000 messages a second), the writer waits for more until busyLinger has passed since
// the first, or busyBatch entries (of the MESSAGES stream read through the header
// consumer; maxBatch of the others) have gathered. A transaction of 4,000 entries costs
// a quarter less per message than one of 800 with the ids producers count, and a third
// less with random ids (BenchmarkIndexMessageIDs, docs/performance.md): under load the
// index's share of the node's CPU falls, at the price of lookups that may wait up to
// 100 ms after the 202 instead of 20. Below that rate nothing changes.
const (
	busyAt     = 500
	busyLinger = 100 * time.Millisecond
	busyBatch  = 5000
)

// StreamRuns is the stream behind the flow journal's key-value bucket (CW_RUNS): every
// write of a run record is an entry, so the run index follows the journal.
const StreamRuns = "KV_CW_RUNS"

// runRecord is the part of a flow run record the index keeps.
type runRecord struct {
	ID            string    `json:"id"`
	Flow          string    `json:"flow"`
	Status        string    `json:"status"`
	Started       time.Time `json:"started"`
	Ended         time.Time `json:"ended"`
	Key           string    `json:"key"`
	CorrelationID string    `json:"correlationId"`
	Error         string    `json:"error"`
	Node          string    `json:"node"`
	Trigger       struct {
		MessageID string `json:"messageId"`
		Type      string `json:"type"`
	} `json:"trigger"`
}

// latestRuns keeps the last entry of each run in a batch: a run is written several times
// while it works, and only its latest state belongs in the index.
func latestRuns(runs []store.Run) []store.Run {
	if len(runs) < 2 {
		return runs
	}
	last := make(map[string]int, len(runs))
	for i, r := range runs {
		last[r.ID] = i
	}
	out := make([]store.Run, 0, len(last))
	for i, r := range runs {
		if last[r.ID] == i {
			out = append(out, r)
		}
	}
	return out
}

// Store is what the indexer writes to.
type Store interface {
	// Index writes a batch read up to pos, and the position, at once.
	Index(ctx context.Context, pos store.Position, b store.Batch) error
	// Position returns how far stream has been indexed.
	Position(ctx context.Context, stream string) (store.Position, error)
}

// Event is a tracking event as published on the TRACKING stream.
type Event struct {
	MessageID string    `json:"messageId"`
	Event     string    `json:"event"`
	Time      time.Time `json:"time"`
	Node      string    `json:"node,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// Indexer consumes the MESSAGES and TRACKING streams into the store.
type Indexer struct {
	js      jetstream.JetStream
	store   Store
	log     *slog.Logger
	metrics *Metrics

	// bus, when set, lets the indexer read MESSAGES through a header consumer (see
	// bus.ConsumeHeaders) instead of nats.go, where the bus's server is embedded.
	bus *bus.Bus

	cancel context.CancelFunc
	wg     sync.WaitGroup
	ccs    []jetstream.ConsumeContext
	hcs    []*bus.HeaderConsumer

	// positions holds, per stream, the last sequence written to the store.
	positions sync.Map // stream name -> *atomic.Uint64
}

func (ix *Indexer) position(stream string) *atomic.Uint64 {
	p, _ := ix.positions.LoadOrStore(stream, new(atomic.Uint64))
	return p.(*atomic.Uint64)
}

// Position returns the last sequence of stream the index holds.
func (ix *Indexer) Position(stream string) uint64 { return ix.position(stream).Load() }

// NewIndexer returns an indexer; Start begins consuming.
func NewIndexer(js jetstream.JetStream, st Store, log *slog.Logger, m *Metrics) *Indexer {
	if log == nil {
		log = slog.Default()
	}
	return &Indexer{js: js, store: st, log: log.With("component", "tracking-index"), metrics: m}
}

// ReadWith lets the indexer read MESSAGES through b's header consumer where b's server is
// embedded: the same entries, at a fraction of the CPU (docs/performance.md).
func (ix *Indexer) ReadWith(b *bus.Bus) *Indexer {
	ix.bus = b
	return ix
}

// entry is one entry read from a stream: a MESSAGES entry already read from its headers
// (msg, when raw is nil), or a message as nats.go delivers it.
type entry struct {
	raw jetstream.Msg
	msg store.Message
}

// Start begins indexing each stream in the background, right after its stored position.
//
// The indexer reads through ordered consumers, which keep no state on the server: the
// position lives in the store, written in the same transaction as the index rows. That
// costs the bus no acknowledgements and no consumer-state writes (which, with fsync before
// every acknowledgement, would compete with accepting messages), and it makes a deleted
// index rebuild itself from the streams.
func (ix *Indexer) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	ix.cancel = cancel
	for _, name := range []string{bus.StreamMessages, bus.StreamTracking, StreamRuns} {
		if err := ix.startStream(ctx, runCtx, name); err != nil {
			ix.Stop()
			return err
		}
	}
	return nil
}

func (ix *Indexer) startStream(ctx, runCtx context.Context, name string) error {
	pos, err := ix.store.Position(ctx, name)
	if err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	stream, err := ix.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("tracking: stream %s: %w", name, err)
	}
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// The index needs only the attributes of a message, which travel in headers;
		// tracking events carry their content in the body.
		HeadersOnly: name == bus.StreamMessages,
	}
	if name == bus.StreamMessages {
		// Not the schedules of retry messages: a retry is indexed when it is published,
		// when it is due.
		cfg.FilterSubjects = []string{bus.SubjectMessages + ">"}
	}
	// The stream's creation time tells its incarnations apart: one deleted and created
	// again starts its sequences anew, and must be indexed from its start (entries already
	// indexed are ignored).
	epoch := stream.CachedInfo().Created.UTC().Format(time.RFC3339Nano)
	seq := pos.Seq
	switch {
	case pos.Seq > 0 && pos.Epoch != epoch:
		ix.log.Warn("stream was created again since it was indexed; indexing it from its start", "stream", name, "indexed", pos.Seq)
		seq = 0
	case pos.Seq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos.Seq+1
	}
	if name == bus.StreamMessages && ix.bus != nil {
		g := newGather(runCtx, maxCatchUp, busyBatch)
		var r entryReader // the header consumer calls back from its one feed goroutine
		hc, err := ix.bus.ConsumeHeaders(ctx, name, bus.SubjectMessages+">", seq, func(sseq uint64, stored time.Time, header []byte) {
			g.put(entry{msg: r.read(name, sseq, stored, header)})
		})
		switch {
		case err == nil:
			ix.hcs = append(ix.hcs, hc)
			ix.position(name).Store(seq)
			ix.wg.Add(1)
			go ix.run(runCtx, store.Position{Stream: name, Epoch: epoch}, g)
			return nil
		case !errors.Is(err, bus.ErrNoHeaderConsumer):
			return fmt.Errorf("tracking: %w", err)
		}
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("tracking: consumer on %s: %w", name, err)
	}
	// The handler waits for room in the gather, which pushes back on the consumer instead
	// of buffering without bound; it gives up once stopped.
	g := newGather(runCtx, maxBatch, maxBatch)
	cc, err := cons.Consume(func(m jetstream.Msg) { g.put(entry{raw: m}) },
		jetstream.PullMaxMessages(maxBatch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !errors.Is(err, jetstream.ErrNoHeartbeat) {
				ix.log.Warn("consume", "stream", name, "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("tracking: consume %s: %w", name, err)
	}
	ix.ccs = append(ix.ccs, cc)
	ix.position(name).Store(seq)
	ix.wg.Add(1)
	go ix.run(runCtx, store.Position{Stream: name, Epoch: epoch}, g)
	return nil
}

// Stop stops consuming and waits for the batch in progress to be written.
func (ix *Indexer) Stop() {
	// Cancelled first: a consumer's handler waiting for room in a full batch channel gives
	// up, so the consumer can stop. What it drops was not indexed, and is read again after
	// the restart.
	if ix.cancel != nil {
		ix.cancel()
	}
	for _, cc := range ix.ccs {
		cc.Stop()
	}
	for _, hc := range ix.hcs {
		hc.Stop()
	}
	ix.wg.Wait()
}

// run takes what has gathered (at least one entry) and writes it, with the position of its
// last entry, in one transaction.
func (ix *Indexer) run(ctx context.Context, pos store.Position, g *gather) {
	defer ix.wg.Done()
	var batch []entry
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.ready:
		}
		// Linger briefly for more entries: under load one transaction then carries hundreds
		// of entries instead of a few, which is what keeps the index's cost per message low.
		// The linger bounds how long after its 202 a message may not yet be found.
		linger(ctx, g)
		batch = g.take(batch)
		if len(batch) == 0 {
			continue // a stale signal: what it was about went into the last transaction
		}
		ix.index(ctx, pos, batch)
	}
}

// linger waits for the transaction to fill: lingerTime, and up to busyLinger in all when
// busyAt entries came within lingerTime, unless the gather fills first.
func linger(ctx context.Context, g *gather) {
	t := time.NewTimer(lingerTime)
	defer t.Stop()
	select {
	case <-g.full:
		return
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if g.len() < busyAt {
		return
	}
	t.Reset(busyLinger - lingerTime)
	select {
	case <-g.full:
	case <-ctx.Done():
	case <-t.C:
	}
}

func (ix *Indexer) index(ctx context.Context, pos store.Position, batch []entry) {
	stream := pos.Stream
	var msgs []store.Message
	var events []store.Event
	var runs []store.Run
	var last uint64
	for _, e := range batch {
		if e.raw == nil {
			last = e.msg.Sequence
			if e.msg.ID == "" {
				ix.log.Warn("message without id on the bus", "seq", e.msg.Sequence)
				continue
			}
			msgs = append(msgs, e.msg)
			continue
		}
		m := e.raw
		md, err := m.Metadata()
		if err != nil {
			ix.log.Error("entry without metadata", "stream", stream, "err", err)
			continue
		}
		last = md.Sequence.Stream
		switch stream {
		case bus.StreamMessages:
			h := m.Headers()
			id := message.Attribute(h, "id")
			if id == "" {
				ix.log.Warn("message without id on the bus", "seq", md.Sequence.Stream)
				continue
			}
			node := h.Get(message.HeaderNode)
			msgs = append(msgs, store.Message{
				ID: id, Type: message.Attribute(h, "type"), Source: message.Attribute(h, "source"), Subject: message.Attribute(h, "subject"),
				CorrelationID: message.Attribute(h, "correlationid"), Stream: stream, Sequence: md.Sequence.Stream,
				AcceptedAt: md.Timestamp, Node: node,
			})
		case bus.StreamTracking:
			var te Event
			if err := json.Unmarshal(m.Data(), &te); err != nil || te.MessageID == "" || te.Event == "" {
				ix.log.Warn("malformed tracking event skipped", "seq", md.Sequence.Stream, "err", err)
				continue
			}
			if te.Time.IsZero() {
				te.Time = md.Timestamp
			}
			events = append(events, store.Event{MessageID: te.MessageID, Event: te.Event, Time: te.Time, Node: te.Node, Detail: te.Detail, Stream: stream, Sequence: md.Sequence.Stream})
		case StreamRuns:
			if op := m.Headers().Get("KV-Operation"); op != "" {
				continue // a delete or purge of a record: the index keeps the row until retention
			}
			var rr runRecord
			if err := json.Unmarshal(m.Data(), &rr); err != nil || rr.ID == "" {
				ix.log.Warn("malformed run record skipped", "seq", md.Sequence.Stream, "err", err)
				continue
			}
			runs = append(runs, store.Run{ID: rr.ID, Flow: rr.Flow, Status: rr.Status, Started: rr.Started, Ended: rr.Ended,
				Key: rr.Key, CorrelationID: rr.CorrelationID, TriggerMessageID: rr.Trigger.MessageID, TriggerType: rr.Trigger.Type,
				Error: rr.Error, Node: rr.Node, Stream: stream, Sequence: md.Sequence.Stream})
		}
	}
	// A store failure is retried with backoff rather than skipped: the entries stay
	// unacknowledged, and the index must not get holes.
	for attempt := 0; ; attempt++ {
		// The write itself is not cancelled by Stop: a batch that has been read is
		// finished, so a clean shutdown leaves nothing for the next start to redo.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		pos.Seq = max(last, ix.Position(stream))
		start := time.Now()
		err := ix.store.Index(wctx, pos, store.Batch{Messages: msgs, Events: events, Runs: latestRuns(runs)})
		cancel()
		if err == nil {
			ix.metrics.txSeconds.WithLabelValues(stream).Observe(time.Since(start).Seconds())
			ix.metrics.txEntries.WithLabelValues(stream).Observe(float64(len(batch)))
			break
		}
		if ctx.Err() != nil {
			// Stopping: the entries stay unacknowledged and are indexed after the restart.
			return
		}
		ix.metrics.indexErrors.Inc()
		ix.log.Error("tracking index write failed; retrying", "stream", stream, "entries", len(batch), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)):
		}
	}
	ix.position(stream).Store(last)
	ix.metrics.indexed.WithLabelValues(stream).Add(float64(len(batch)))
}

// entryReader reads index entries from header blocks, one after another. It keeps the last
// type, source and node it read: a stream's messages come from a few producers of a few
// types through a few nodes, so the strings of the entry before serve the next one, and a
// correlation id that repeats the id takes the id's string. That leaves one string to make
// per message instead of five.
type entryReader struct {
	typ, source, node attr
}

// attr is an attribute's header value as it was read, and the string it gave.
type attr struct{ raw, value string }

// get returns the string value gives: the one kept when value is the same as before.
func (a *attr) get(value []byte, decode func([]byte) string) string {
	if string(value) != a.raw {
		a.raw, a.value = string(value), decode(value)
	}
	return a.value
}

// read returns the index entry of the MESSAGES entry seq, stored at stored, from its header
// block.
func (r *entryReader) read(stream string, seq uint64, stored time.Time, header []byte) store.Message {
	m := store.Message{Stream: stream, Sequence: seq, AcceptedAt: stored}
	var idRaw []byte
	// The first header of each name counts, as with nats.go's Header.Get.
	message.EachNATSHeader(header, func(name, value []byte) {
		if attrName, ok := message.AttributeHeader(name); ok {
			switch string(attrName) {
			case "id":
				if m.ID == "" {
					m.ID, idRaw = message.AttributeValue(value), value
				}
			case "type":
				if m.Type == "" {
					m.Type = r.typ.get(value, message.AttributeValue)
				}
			case "source":
				if m.Source == "" {
					m.Source = r.source.get(value, message.AttributeValue)
				}
			case "subject":
				if m.Subject == "" {
					m.Subject = message.AttributeValue(value)
				}
			case "correlationid":
				if m.CorrelationID == "" {
					if idRaw != nil && string(value) == string(idRaw) {
						m.CorrelationID = m.ID
					} else {
						m.CorrelationID = message.AttributeValue(value)
					}
				}
			}
			return
		}
		if string(name) == message.HeaderNode && m.Node == "" {
			m.Node = r.node.get(value, func(v []byte) string { return string(v) })
		}
	})
	return m
}

// PublishOnce sends one tracking event to the TRACKING stream with a de-duplication id made
// of the message and the event: sent again (a step run again after a crash), it is kept
// once.
func PublishOnce(ctx context.Context, js jetstream.JetStream, ev Event) error {
	return publishEvent(ctx, js, ev, jetstream.WithMsgID(ev.MessageID+"/"+ev.Event))
}

// Publish sends one tracking event to the TRACKING stream.
func Publish(ctx context.Context, js jetstream.JetStream, ev Event) error {
	return publishEvent(ctx, js, ev)
}

func publishEvent(ctx context.Context, js jetstream.JetStream, ev Event, opts ...jetstream.PublishOpt) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, bus.SubjectTracking+ev.Event, data, opts...)
	return err
}

// Pruner is a store that can forget entries older than the bus's retention.
type Pruner interface {
	Prune(ctx context.Context, cutoff time.Time) (int64, error)
}

// PruneEvery removes, every interval until ctx ends, the index entries older than retention:
// the bus has let go of those messages and run records, and the index follows it.
func PruneEvery(ctx context.Context, p Pruner, retention, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := p.Prune(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("pruning the tracking index failed; trying again later", "err", err)
		case n > 0:
			log.Info("tracking index pruned", "rows", n, "older_than", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
