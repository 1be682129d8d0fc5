package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/causeway/causeway/internal/natswire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Fast batches.
//
// Without group commit (the sync interval), each message of a batch a producer sends is
// its own JetStream publish, and the server answers each with an acknowledgement that the
// bus connection then reads, decodes and hands to the waiting caller: for a batch of 100,
// 100 answers. A JetStream fast batch (NATS 2.14+) sends the same messages, each stored as
// it arrives and de-duplicated on its own exactly as a single publish, and the server
// answers once, when the last one is stored, with how many it took, plus an occasional
// flow-control message. The answer covers the whole batch only in the server's "gap: fail"
// mode, which is the one used here: a message the server did not store ends the batch.
//
// Anything but a clean answer for every message (an error, a count short of the batch)
// makes the caller publish the whole batch again one message at a time. De-duplication
// makes that safe: what was stored is acknowledged as a duplicate, and what was not is
// stored now. A batch resent whole is fine as a fast batch: the server skips each stored
// message wherever it stands in the batch.

// fastFlow is the flow-control interval asked of the server: a flow-control message every
// so many messages. A batch's messages are all sent at once (they are one caller's, already
// in memory), so flow-control messages are only noise here; the server caps the interval
// anyway (500, shared by the batches in flight).
const fastFlow = 500

// Reply subject operations of a fast batch, as the server reads them.
const (
	fastOpStart  = "0"
	fastOpAppend = "1"
	fastOpCommit = "2"
)

// fastReplyBase starts the reply subjects of the fast batch id under prefix.
func fastReplyBase(prefix, id string) string {
	return prefix + id + "." + strconv.Itoa(fastFlow) + ".fail."
}

// fastReply is the reply subject of message i (from 0) of a fast batch of n: its sequence
// (from 1) and its operation, as the server reads them.
func fastReply(base string, i, n int) string {
	op := fastOpAppend
	switch {
	case i == n-1:
		op = fastOpCommit
	case i == 0:
		op = fastOpStart
	}
	return base + strconv.Itoa(i+1) + "." + op + ".$FI"
}

// fastBatcher publishes the messages of one PublishAll as a fast batch and routes the
// server's answers, which arrive on one wildcard subscription, to the waiting caller.
type fastBatcher struct {
	nc     *nats.Conn
	stream string
	prefix string // the reply subjects' prefix, ending in a dot
	sub    *nats.Subscription

	mu    sync.Mutex
	calls map[string]*fastCall

	// Counters for the metrics and tests: batches published, and batches that were then
	// published again one message at a time.
	batches, fallbacks atomic.Int64
}

// fastCall is one batch waiting for its answer.
type fastCall struct {
	n    int
	once sync.Once
	done chan error
	// conn is the lean publisher's connection the batch went out on; nil on nats.go's.
	conn *natswire.Conn
}

func (c *fastCall) finish(err error) {
	c.once.Do(func() { c.done <- err })
}

func newFastBatcher(nc *nats.Conn, stream string) (*fastBatcher, error) {
	f := &fastBatcher{nc: nc, stream: stream, prefix: nc.NewRespInbox() + ".", calls: map[string]*fastCall{}}
	sub, err := nc.Subscribe(f.prefix+">", f.answer)
	if err != nil {
		return nil, fmt.Errorf("bus: fast batch replies: %w", err)
	}
	// The answers are few and small; the default pending limits would only matter if
	// the subscription fell far behind, and then dropping answers would turn into
	// fallbacks, not losses.
	f.sub = sub
	return f, nil
}

// publish sends msgs as one fast batch and waits for the server's answer. A nil error
// means the server stored every message (or had it already).
func (f *fastBatcher) publish(ctx context.Context, msgs []*nats.Msg) error {
	id := nuid.Next()
	c := &fastCall{n: len(msgs), done: make(chan error, 1)}
	f.mu.Lock()
	f.calls[id] = c
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.calls, id)
		f.mu.Unlock()
	}()
	f.batches.Add(1)
	base := fastReplyBase(f.prefix, id)
	for i, m := range msgs {
		out := *m
		out.Reply = fastReply(base, i, len(msgs))
		if err := f.nc.PublishMsg(&out); err != nil {
			return fmt.Errorf("bus: fast batch: %w", err)
		}
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("bus: fast batch not acknowledged: %w", ctx.Err())
	}
}

// fastAnswer holds what the server sends on a fast batch's reply subjects: flow-control
// acknowledgements, gaps and errors ("type" set), and the final PubAck.
type fastAnswer struct {
	Type      string              `json:"type"`
	Stream    string              `json:"stream"`
	Count     int                 `json:"count"`
	Duplicate bool                `json:"duplicate"`
	Error     *jetstream.APIError `json:"error"`
}

// answer routes one message from the server to the batch it is about.
func (f *fastBatcher) answer(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, f.prefix)
	if !ok {
		return
	}
	id, _, _ := strings.Cut(rest, ".")
	f.mu.Lock()
	c := f.calls[id]
	f.mu.Unlock()
	if c == nil {
		return // a batch that has been answered or given up
	}
	if final, err := fastVerdict(m.Data, f.stream, c.n); final {
		c.finish(err)
	}
}

// fastVerdict reads one answer of the server to a fast batch of n messages to stream:
// final is false for the flow-control acknowledgements that change nothing, and err is
// nil for the answer that says every message was stored (or already was).
func fastVerdict(data []byte, stream string, n int) (final bool, err error) {
	// Flow-control acknowledgements need no decoding.
	if bytes.HasPrefix(data, []byte(`{"type":"ack"`)) {
		return false, nil
	}
	var a fastAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return true, fmt.Errorf("bus: fast batch: unreadable answer %q", data)
	}
	switch {
	case a.Error != nil:
		return true, fmt.Errorf("bus: fast batch: %w", a.Error)
	case a.Type == "ack":
		return false, nil
	case a.Type != "":
		return true, fmt.Errorf("bus: fast batch: server reported %s: %s", a.Type, data)
	case a.Stream != stream:
		return true, fmt.Errorf("bus: fast batch: stored in stream %q, not %q", a.Stream, stream)
	case a.Count != n || a.Duplicate:
		// The server answers a batch it ended at its first message (a refusal) as it
		// would a single publish; the count is then short.
		return true, fmt.Errorf("bus: fast batch: the server took %d of %d messages", a.Count, n)
	}
	return true, nil
}

func (f *fastBatcher) close() {
	if f.sub != nil {
		_ = f.sub.Unsubscribe()
	}
}
