package flow

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
)

// keyedBacklog is how many messages per key slot a keyed flow may hold undelivered to a run
// (waiting behind the busy key they belong to).
const keyedBacklog = 64

// keyQueues runs a keyed flow's messages one at a time per key, in the order the bus
// delivered them, while different keys run concurrently (up to the flow's concurrency).
type keyQueues struct {
	mu     sync.Mutex
	queues map[string][]jetstream.Msg // the waiting messages of each key being worked on
}

// dispatchKeyed hands a delivered message to its key's worker, starting one if the key is
// idle. It is called from the consumer's single delivery goroutine, in stream order, which
// is what makes the per-key order the publish order.
func (e *Engine) dispatchKeyed(f *loadedFlow, m jetstream.Msg) {
	key := e.keyOf(f, m)
	q := f.keys
	q.mu.Lock()
	if waiting, busy := q.queues[key]; busy {
		q.queues[key] = append(waiting, m)
		q.mu.Unlock()
		return
	}
	q.queues[key] = nil
	q.mu.Unlock()
	// A slot per active key: waiting for one holds back further deliveries, as for a flow
	// without a key.
	select {
	case f.sem <- struct{}{}:
	case <-e.ctx.Done():
		return
	}
	e.wg.Add(1)
	go func() {
		defer func() { <-f.sem; e.wg.Done() }()
		for next := m; next != nil; {
			e.handle(f, next)
			q.mu.Lock()
			if waiting := q.queues[key]; len(waiting) > 0 && e.ctx.Err() == nil {
				next, q.queues[key] = waiting[0], waiting[1:]
			} else {
				// Stopping leaves the waiting messages unacknowledged: the bus delivers
				// them again, in order, after the restart.
				delete(q.queues, key)
				next = nil
			}
			q.mu.Unlock()
		}
	}()
}

// keyOf evaluates the flow's key expression for a delivered message. A message whose key
// cannot be worked out shares the empty key: still in order, never lost.
func (e *Engine) keyOf(f *loadedFlow, m jetstream.Msg) string {
	ev, err := message.FromNATS(m.Headers(), m.Data())
	if err != nil {
		return ""
	}
	data, err := decodeData(ev)
	if err != nil {
		return ""
	}
	v, err := f.spec.compiled.key.Eval(e.ctx, expr.Input{Message: envelopeOf(ev), Data: data}.Doc())
	if err != nil {
		e.log.Warn("key expression failed; the message takes the empty key", "flow", f.name, "message", ev.ID, "err", err)
		return ""
	}
	return expr.ToString(v)
}

// keepQueuedAlive renews the deliveries of the messages waiting behind a busy key, every
// third of the ack wait, so that the bus does not deliver them again while they wait their
// turn.
func (e *Engine) keepQueuedAlive(f *loadedFlow, halt <-chan struct{}) {
	defer e.helpers.Done()
	t := time.NewTicker(e.opts.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-halt:
			return
		case <-t.C:
		}
		f.keys.mu.Lock()
		var waiting []jetstream.Msg
		for _, q := range f.keys.queues {
			waiting = append(waiting, q...)
		}
		f.keys.mu.Unlock()
		for _, m := range waiting {
			_ = m.InProgress()
		}
	}
}
