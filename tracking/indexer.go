// Package tracking keeps the tracking index: it consumes the bus's streams through durable
// consumers and writes what it reads into the store. Because the index is derived from the
// streams, a crash between accepting a message and indexing it loses nothing: the consumer
// resumes where its last acknowledgement left it, and re-indexing an entry is harmless.
package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/store"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerName is the durable consumer the indexer uses on each stream.
const ConsumerName = "causeway-tracking-index"

// maxBatch bounds how many entries go into one store transaction.
const maxBatch = 1000

// lingerTime is how long a batch waits to fill once its first entry has arrived.
const lingerTime = 20 * time.Millisecond

// Store is what the indexer writes to.
type Store interface {
	Index(ctx context.Context, msgs []store.Message, events []store.Event) error
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

	cancel context.CancelFunc
	wg     sync.WaitGroup
	ccs    []jetstream.ConsumeContext
}

// NewIndexer returns an indexer; Start begins consuming.
func NewIndexer(js jetstream.JetStream, st Store, log *slog.Logger, m *Metrics) *Indexer {
	if log == nil {
		log = slog.Default()
	}
	return &Indexer{js: js, store: st, log: log.With("component", "tracking-index"), metrics: m}
}

// Start creates the durable consumers (idempotently) and begins indexing in the background.
func (ix *Indexer) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.Background())
	ix.cancel = cancel
	for _, stream := range []string{bus.StreamMessages, bus.StreamTracking} {
		cons, err := ix.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:       ConsumerName,
			Description:   "Causeway: indexes the stream into the tracking store",
			AckPolicy:     jetstream.AckAllPolicy,
			AckWait:       time.Minute,
			MaxAckPending: 20 * maxBatch,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			ix.Stop()
			return fmt.Errorf("tracking: consumer on %s: %w", stream, err)
		}
		ch := make(chan jetstream.Msg, maxBatch)
		// The handler waits for room in the batch channel, which pushes back on the
		// consumer instead of buffering without bound; it gives up once stopped.
		cc, err := cons.Consume(func(m jetstream.Msg) {
			select {
			case ch <- m:
			case <-runCtx.Done():
			}
		},
			jetstream.PullMaxMessages(maxBatch),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrNoHeartbeat) {
					ix.log.Warn("consume", "stream", stream, "err", err)
				}
			}))
		if err != nil {
			ix.Stop()
			return fmt.Errorf("tracking: consume %s: %w", stream, err)
		}
		ix.ccs = append(ix.ccs, cc)
		ix.wg.Add(1)
		go ix.run(runCtx, stream, ch)
	}
	return nil
}

// Stop stops consuming and waits for the batch in progress to be written.
func (ix *Indexer) Stop() {
	for _, cc := range ix.ccs {
		cc.Stop()
	}
	if ix.cancel != nil {
		ix.cancel()
	}
	ix.wg.Wait()
}

// run takes whatever has arrived (at least one entry, at most maxBatch), writes it in one
// transaction and acknowledges the last entry, which with AckAll acknowledges the batch.
func (ix *Indexer) run(ctx context.Context, stream string, ch <-chan jetstream.Msg) {
	defer ix.wg.Done()
	batch := make([]jetstream.Msg, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-ch:
			batch = append(batch, m)
		}
		// Linger briefly for more entries: under load one transaction then carries hundreds
		// of entries instead of a few, which is what keeps the index's cost per message low.
		// The linger bounds how long after its 202 a message may not yet be found.
		linger := time.NewTimer(lingerTime)
	fill:
		for len(batch) < maxBatch {
			select {
			case m := <-ch:
				batch = append(batch, m)
			case <-linger.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		linger.Stop()
		ix.index(ctx, stream, batch)
	}
}

func (ix *Indexer) index(ctx context.Context, stream string, batch []jetstream.Msg) {
	var msgs []store.Message
	var events []store.Event
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			ix.log.Error("entry without metadata", "stream", stream, "err", err)
			continue
		}
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
		}
	}
	// A store failure is retried with backoff rather than skipped: the entries stay
	// unacknowledged, and the index must not get holes.
	for attempt := 0; ; attempt++ {
		// The write itself is not cancelled by Stop: a batch that has been read is
		// finished, so a clean shutdown leaves nothing for the next start to redo.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := ix.store.Index(wctx, msgs, events)
		cancel()
		if err == nil {
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
	if err := batch[len(batch)-1].Ack(); err != nil {
		ix.log.Warn("ack of indexed batch failed; it will be indexed again", "stream", stream, "err", err)
	}
	ix.metrics.indexed.WithLabelValues(stream).Add(float64(len(batch)))
}

// Publish sends one tracking event to the TRACKING stream.
func Publish(ctx context.Context, js jetstream.JetStream, ev Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, bus.SubjectTracking+ev.Event, data)
	return err
}
