package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/message"
)

// Coalescing single publishes.
//
// Without group commit (the sync interval), a message published alone is its own
// JetStream publish: the server builds and sends an acknowledgement for it, and the lean
// connection reads that answer and routes it to the caller. When many producers each send
// one message at a time (the common case for an HTTP ingestion endpoint), that work is
// done once per message. The coalescer gathers the single messages of concurrent callers
// into one fast batch (fast.go), which the server stores message by message exactly as
// single publishes, de-duplicating each by its id, and answers once.
//
// One batch is in flight at a time: the next gathers while the server stores the current
// one. A caller hears "stored" only once the server has said so for its message: when the
// batch's single answer counts every message of the batch, or, when the batch is not taken
// whole (or its answer does not come), when the message's own acknowledgement arrives after
// it has been published again alone. De-duplication makes the repeat safe: a message the
// batch stored is acknowledged as a duplicate. A message that is alone in the queue is
// published alone straight away, so a lone producer waits for no one.

// maxCoalesce bounds the messages of one coalesced batch. It stays under fastFlow, so the
// server never stops a coalesced batch to ask for flow control.
const maxCoalesce = 256

// coalesceAckWait is how long the coalescer waits for a batch's answer before publishing
// its messages again one by one. The server answers in milliseconds; this only bounds a
// server that has stopped answering.
const coalesceAckWait = 10 * time.Second

// coalesceYields is how many times the coalescer lets the other goroutines run before it
// takes each batch. On two cores, the callers whose requests are already being handled
// then reach the queue: the mean batch with 64 HTTP producers grew from about 2 to about
// 21 messages, without a timer (docs/performance.md). With nothing else to run, a yield
// costs a lone producer next to nothing.
const coalesceYields = 2

// errCoalescerClosed is what a caller hears whose message was still queued when the bus
// closed; nothing of it was published.
var errCoalescerClosed = errors.New("bus: closed before the message was published")

// coalesced is one caller's message waiting in the coalescer's queue. header and ev.Data
// belong to the caller until the coalescer takes the message and copies them.
type coalesced struct {
	ev     *message.Event
	header []byte
	call   *call
}

// coalescer gathers single publishes into fast batches on a lean publisher.
type coalescer struct {
	p *leanPublisher

	mu     sync.Mutex
	queue  []coalesced
	closed bool
	wake   chan struct{}

	// The batch being sent, owned by the loop: copies of its messages' headers and data
	// (a caller that gives up returns its buffers), the messages pointing into buf, and
	// their callers.
	buf   []byte
	msgs  []outMsg
	taken []coalesced

	// Counters for the metrics and tests: batches of more than one message sent, and the
	// messages in them.
	batches, messages atomic.Int64
}

func newCoalescer(p *leanPublisher) *coalescer {
	return &coalescer{p: p, wake: make(chan struct{}, 1)}
}

// publish queues ev, whose header block is rendered in header, and waits until the stream
// has stored it, or ctx ends.
func (q *coalescer) publish(ctx context.Context, ev *message.Event, header []byte) error {
	// A caller that has given up publishes nothing, as on the other paths: otherwise
	// whether it hears an error would depend on how fast the acknowledgement came back.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bus: publish %s: %w", ev.ID, err)
	}
	c := &call{done: make(chan struct{})}
	c.left.Store(1)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return fmt.Errorf("bus: publish %s: %w", ev.ID, errCoalescerClosed)
	}
	q.queue = append(q.queue, coalesced{ev: ev, header: header, call: c})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return c.wait(ctx, func() {
		// A message not taken yet leaves the queue, so that the caller's buffers are its
		// own again; one already taken was copied, and is published whatever happens here.
		q.mu.Lock()
		if i := slices.IndexFunc(q.queue, func(e coalesced) bool { return e.call == c }); i >= 0 {
			q.queue = slices.Delete(q.queue, i, i+1)
		}
		q.mu.Unlock()
	})
}

// loop sends what the callers queue until the publisher closes, then fails what is left.
func (q *coalescer) loop() {
	defer q.p.wg.Done()
	defer q.close()
	for {
		select {
		case <-q.p.closing:
			return
		case <-q.wake:
		}
		for {
			// Let the callers whose requests are being handled reach the queue.
			for range coalesceYields {
				runtime.Gosched()
			}
			if !q.take() {
				break
			}
			q.send()
		}
	}
}

// take moves up to maxCoalesce queued messages into the batch, copying their headers and
// data, and reports whether there were any.
func (q *coalescer) take() bool {
	q.buf = q.buf[:0]
	q.msgs = q.msgs[:0]
	clear(q.taken)
	q.taken = q.taken[:0]
	q.mu.Lock()
	n := min(len(q.queue), maxCoalesce)
	for _, e := range q.queue[:n] {
		q.buf = append(q.buf, e.header...)
		q.buf = append(q.buf, e.ev.Data...)
		q.taken = append(q.taken, e)
		q.msgs = append(q.msgs, outMsg{id: e.ev.ID, subject: Subject(e.ev.Type)})
	}
	rest := copy(q.queue, q.queue[n:])
	clear(q.queue[rest:])
	q.queue = q.queue[:rest]
	q.mu.Unlock()
	// The messages point into buf only now that it has stopped growing.
	off := 0
	for i, e := range q.taken {
		h, d := len(e.header), len(e.ev.Data)
		q.msgs[i].header = q.buf[off : off+h : off+h]
		q.msgs[i].data = q.buf[off+h : off+h+d : off+h+d]
		off += h + d
	}
	return n > 0
}

// send publishes the taken messages and settles their callers' calls: a batch of more
// than one as a fast batch, and otherwise, or when the fast batch is not taken whole, each
// message alone. A message published alone settles its call when its acknowledgement
// comes to the connection's read goroutine; send does not wait for it.
func (q *coalescer) send() {
	if len(q.msgs) > 1 {
		q.batches.Add(1)
		q.messages.Add(int64(len(q.msgs)))
		ctx, cancel := context.WithTimeout(q.p.stop, coalesceAckWait)
		err := q.p.fastBatch(ctx, q.msgs)
		cancel()
		if err == nil {
			for _, e := range q.taken {
				e.call.settle(nil)
			}
			return
		}
		q.p.fastFallbacks.Add(1)
		q.p.log.Debug("coalesced batch not taken whole; publishing its messages one by one", "messages", len(q.msgs), "err", err)
	}
	for i, m := range q.msgs {
		// The connection copies the message as it publishes it, so buf may be reused.
		q.p.publishOne(q.p.stop, m, q.taken[i].call)
	}
}

// close fails the messages still queued: none of them has been published.
func (q *coalescer) close() {
	q.mu.Lock()
	q.closed = true
	left := q.queue
	q.queue = nil
	q.mu.Unlock()
	for _, e := range left {
		e.call.settle(fmt.Errorf("bus: publish %s: %w", e.ev.ID, errCoalescerClosed))
	}
}
