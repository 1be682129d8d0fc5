package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Group commit.
//
// With fsync before every acknowledgement, the stream's store writes and fsyncs one message
// at a time, so a stream takes only as many messages per second as the disk does fsyncs,
// however many producers publish at once. The group committer gathers the messages that
// concurrent callers publish into JetStream atomic batches: the server stores a whole batch
// and fsyncs once before it acknowledges the commit, so one fsync covers every message in
// the batch. Durability is unchanged: no caller hears "stored" before its message is on
// disk. A batch is all-or-nothing, and the server refuses a whole batch that holds a message
// id it has already stored; the committer then publishes that batch's messages one by one,
// each de-duplicated on its own, so a resent message is acknowledged as before.

// Atomic batch headers, as the server reads them.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// Group commit limits. maxGroupMessages is the server's own limit on an atomic batch, and
// maxGroupBytes keeps the server's staging of one batch small. maxGroupsInFlight is one:
// the next batch forms while one is being committed. Measured on a two-core machine with a
// virtual disk, two or four batches side by side were slower, for singles and batches
// alike: each batch costs the server a staging store of its own (files created, written,
// synced and removed), so two half-size batches cost nearly twice one full one.
const (
	maxGroupMessages  = 1000
	maxGroupBytes     = 8 << 20
	maxGroupsInFlight = 1
	groupAckTimeout   = 30 * time.Second
)

// errClosed is what a publish gets once the bus is closing.
var errClosed = errors.New("bus: closed")

// call is one PublishAll: the caller waits until each of its messages is settled.
type call struct {
	left atomic.Int32
	mu   sync.Mutex
	err  error
	done chan struct{}
}

func (c *call) settle(err error) {
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	if c.left.Add(-1) == 0 {
		close(c.done)
	}
}

// wait returns c's first error once every message is settled, or, when ctx ends first,
// calls giveUp (when set) and returns an error saying so. The error is read without the
// lock: every settle's write happens before the close of done that wait sees.
func (c *call) wait(ctx context.Context, giveUp func()) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		if giveUp != nil {
			giveUp()
		}
		return fmt.Errorf("bus: publish not acknowledged: %w", ctx.Err())
	}
}

// entry is one message waiting to be committed.
type entry struct {
	msg  *nats.Msg
	id   string
	size int
	call *call
}

// groupCommitter publishes queued messages to one stream as atomic batches.
type groupCommitter struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	stream string
	slots  chan struct{} // one per queued or in-flight message: back-pressure
	wake   chan struct{}

	mu       sync.Mutex
	queue    []entry
	closing  bool
	stopped  chan struct{}
	inflight atomic.Int32 // batches being committed

	// Counters for the metrics: batches committed, the messages in them, and batches the
	// server refused that were then published one message at a time.
	batches, messages, fallbacks atomic.Int64
}

func newGroupCommitter(js jetstream.JetStream, nc *nats.Conn, stream string) *groupCommitter {
	g := &groupCommitter{
		js: js, nc: nc, stream: stream,
		slots:   make(chan struct{}, maxPending),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	go g.loop()
	return g
}

// publish queues msgs and waits until every one is stored, ctx ends, or the committer
// closes. It returns the first error; on error some messages may have been stored, which
// is why every message carries its de-duplication id.
func (g *groupCommitter) publish(ctx context.Context, msgs []*nats.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	c := &call{done: make(chan struct{})}
	c.left.Store(int32(len(msgs)))
	stall := time.NewTimer(stallWait)
	defer stall.Stop()
	for i, m := range msgs {
		// A slot per message bounds what is queued and in flight, so a burst waits here
		// (back-pressure) instead of growing the queue without limit.
		select {
		case g.slots <- struct{}{}:
		case <-stall.C:
			g.abandon(c, len(msgs)-i, fmt.Errorf("bus: publish %s: %w", m.Header.Get(jetstream.MsgIDHeader), jetstream.ErrTooManyStalledMsgs))
			return g.wait(ctx, c)
		case <-ctx.Done():
			g.abandon(c, len(msgs)-i, ctx.Err())
			return g.wait(ctx, c)
		}
		g.mu.Lock()
		if g.closing {
			g.mu.Unlock()
			<-g.slots
			g.abandon(c, len(msgs)-i, errClosed)
			return g.wait(ctx, c)
		}
		g.queue = append(g.queue, entry{msg: m, id: m.Header.Get(jetstream.MsgIDHeader), size: len(m.Data) + 256, call: c})
		g.mu.Unlock()
		g.signal()
	}
	return g.wait(ctx, c)
}

// abandon settles the n messages of c that were never queued.
func (g *groupCommitter) abandon(c *call, n int, err error) {
	for range n {
		c.settle(err)
	}
}

func (g *groupCommitter) wait(ctx context.Context, c *call) error {
	return c.wait(ctx, nil)
}

// loop forms batches from the queue. While a batch is being committed, messages wait and
// form the next one: the busier the stream, the larger the batches.
func (g *groupCommitter) loop() {
	defer close(g.stopped)
	for {
		batch, closing := g.take()
		if len(batch) == 0 {
			if closing && g.inflight.Load() == 0 {
				return
			}
			<-g.wake
			continue
		}
		g.inflight.Add(1)
		go func() {
			g.commit(batch)
			for range batch {
				<-g.slots
			}
			g.inflight.Add(-1)
			g.signal()
		}()
	}
}

func (g *groupCommitter) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// take removes the next batch from the queue, if one is due.
func (g *groupCommitter) take() ([]entry, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inflight.Load() >= maxGroupsInFlight {
		return nil, g.closing
	}
	n, bytes := 0, 0
	for n < len(g.queue) && n < maxGroupMessages && (n == 0 || bytes+g.queue[n].size <= maxGroupBytes) {
		bytes += g.queue[n].size
		n++
	}
	batch := make([]entry, n)
	copy(batch, g.queue[:n])
	g.queue = append(g.queue[:0], g.queue[n:]...)
	return batch, g.closing
}

// commit publishes batch as one atomic batch and settles its messages. When the server
// does not commit it, each message is published on its own, which settles duplicates and
// finds the message at fault, if any.
func (g *groupCommitter) commit(batch []entry) {
	g.batches.Add(1)
	g.messages.Add(int64(len(batch)))
	if len(batch) == 1 {
		g.one(batch)
		return
	}
	id := nuid.Next()
	var f jetstream.PubAckFuture
	var err error
	for i, e := range batch {
		e.msg.Header.Set(hdrBatchID, id)
		e.msg.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(batch)-1 {
			// Only the commit is answered; the server checks the sequence, so a lost
			// message fails the whole batch rather than leaving a gap.
			if err = g.nc.PublishMsg(e.msg); err != nil {
				break
			}
			continue
		}
		e.msg.Header.Set(hdrBatchCommit, "1")
		f, err = g.js.PublishMsgAsync(e.msg, jetstream.WithStallWait(stallWait))
	}
	for _, e := range batch {
		e.msg.Header.Del(hdrBatchID)
		e.msg.Header.Del(hdrBatchSeq)
		e.msg.Header.Del(hdrBatchCommit)
	}
	if err == nil {
		timer := time.NewTimer(groupAckTimeout)
		select {
		case <-f.Ok():
			timer.Stop()
			for _, e := range batch {
				e.call.settle(nil)
			}
			return
		case err = <-f.Err():
		case <-timer.C:
			err = errors.New("no acknowledgement")
		}
		timer.Stop()
	}
	g.fallbacks.Add(1)
	g.one(batch)
}

// one publishes each message of batch on its own, pipelined, and settles it.
func (g *groupCommitter) one(batch []entry) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	errs := make([]error, len(batch))
	for i, e := range batch {
		futures[i], errs[i] = g.js.PublishMsgAsync(e.msg, jetstream.WithExpectStream(g.stream), jetstream.WithStallWait(stallWait))
	}
	for i, e := range batch {
		err := errs[i]
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), groupAckTimeout)
			_, err = Wait(ctx, futures[i])
			cancel()
		}
		if err != nil {
			err = fmt.Errorf("bus: publish %s: %w", e.id, err)
		}
		e.call.settle(err)
	}
}

// close stops taking messages, commits what is queued and waits for it.
func (g *groupCommitter) close() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
	g.signal()
	<-g.stopped
}
