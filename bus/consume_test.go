package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/message"
	"github.com/prometheus/client_golang/prometheus"
)

// collector gathers what a header consumer delivers.
type collector struct {
	mu   sync.Mutex
	seqs []uint64
	ids  []string
}

func (c *collector) handle(seq uint64, stored time.Time, header []byte) {
	id := headerValue(header, "ce-id")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seqs = append(c.seqs, seq)
	c.ids = append(c.ids, string(id))
}

// waitFor waits until the last sequence delivered is last.
func (c *collector) waitFor(t *testing.T, last uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		n, top := len(c.seqs), uint64(0)
		if n > 0 {
			top = c.seqs[n-1]
		}
		c.mu.Unlock()
		if top >= last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered up to %d (%d messages), want up to %d", top, n, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkContiguous checks that from..to were each delivered, in order, where a sequence may
// come again only right after a recreation (never out of order otherwise).
func (c *collector) checkContiguous(t *testing.T, from, to uint64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	next := from
	for i, s := range c.seqs {
		switch {
		case s == next:
			next++
		case s < next: // delivered again after a recreation
		default:
			t.Fatalf("delivery %d is sequence %d, want %d (a gap)", i, s, next)
		}
		if c.ids[i] == "" {
			t.Fatalf("delivery %d (sequence %d) has no ce-id header", i, s)
		}
	}
	if next != to+1 {
		t.Fatalf("delivered up to %d, want %d", next-1, to)
	}
}

// publishN publishes n new messages with ids prefix-0 … in batches of up to 500.
func publishN(ctx context.Context, t *testing.T, b *Bus, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i += 500 {
		if err := b.PublishAll(ctx, newEvents(fmt.Sprint(prefix, i), min(500, n-i)), "n1"); err != nil {
			t.Fatal(err)
		}
	}
}

// consume starts a header consumer of MESSAGES from its start into h, stopped when the test
// ends.
func consume(ctx context.Context, t *testing.T, b *Bus, h HeaderHandler) *HeaderConsumer {
	t.Helper()
	hc, err := b.ConsumeHeaders(ctx, StreamMessages, SubjectMessages+">", 0, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hc.Stop)
	return hc
}

// TestHeaderConsumerReadsEveryMessageInOrder reads more than one pull's worth of messages,
// from the start and from a position, and only the subjects asked for.
func TestHeaderConsumerReadsEveryMessageInOrder(t *testing.T) {
	b := runInterval(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 2*pullBatch + 500
	publishN(ctx, t, b, "m", n)
	for _, after := range []uint64{0, 1234} {
		var c collector
		hc, err := b.ConsumeHeaders(ctx, StreamMessages, SubjectMessages+">", after, c.handle)
		if err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, n)
		hc.Stop()
		c.checkContiguous(t, after+1, n)
	}
}

// TestHeaderConsumerRecreatedWhenDeleted deletes the server's consumer under a running
// header consumer: it is recreated from where it was, and nothing published before or after
// is missed.
func TestHeaderConsumerRecreatedWhenDeleted(t *testing.T) {
	b := runInterval(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publishN(ctx, t, b, "before", 300)
	var c collector
	hc := consume(ctx, t, b, c.handle)
	c.waitFor(t, 300)
	hc.mu.Lock()
	name := hc.consumer
	hc.mu.Unlock()
	if err := b.js.DeleteConsumer(ctx, StreamMessages, name); err != nil {
		t.Fatal(err)
	}
	publishN(ctx, t, b, "after", 300)
	c.waitFor(t, 600)
	c.checkContiguous(t, 1, 600)
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.consumer == name || b.headerRecreations.Load() < 1 {
		t.Errorf("still on consumer %s, which was deleted", name)
	}
}

// TestHeaderConsumerPullsAgainAfterExpiry lets pulls expire (shortened to half a second)
// while nothing is published: the consumer keeps asking, and reads what comes later.
func TestHeaderConsumerPullsAgainAfterExpiry(t *testing.T) {
	b := runInterval(t, false)
	b.pullTimes = &[2]time.Duration{500 * time.Millisecond, 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c collector
	hc := consume(ctx, t, b, c.handle)
	hc.mu.Lock()
	name := hc.consumer
	hc.mu.Unlock()
	time.Sleep(2 * time.Second) // several expiries
	publishN(ctx, t, b, "late", 10)
	c.waitFor(t, 10)
	c.checkContiguous(t, 1, 10)
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.consumer != name {
		t.Errorf("consumer recreated (%s, then %s) while the server was answering", name, hc.consumer)
	}
}

// TestHeaderConsumerNeedsTheEmbeddedServer: without one, callers are told to read another way.
func TestHeaderConsumerNeedsTheEmbeddedServer(t *testing.T) {
	if _, err := (&Bus{}).ConsumeHeaders(context.Background(), StreamMessages, ">", 0, nil); !errors.Is(err, ErrNoHeaderConsumer) {
		t.Fatalf("got %v, want ErrNoHeaderConsumer", err)
	}
}

func TestAckMetadata(t *testing.T) {
	for _, tc := range []struct {
		reply          string
		consumer       string
		sseq, dseq, ts uint64
		ok             bool
	}{
		{reply: "$JS.ACK.MESSAGES.c1.1.42.7.1763971200000000001.9", consumer: "c1", sseq: 42, dseq: 7, ts: 1763971200000000001, ok: true},
		{reply: "$JS.ACK.hub.ACCHASH.MESSAGES.c1.1.42.7.1763971200000000001.9.token", consumer: "c1", sseq: 42, dseq: 7, ts: 1763971200000000001, ok: true},
		{reply: "$JS.ACK.MESSAGES.c1.1.x.7.1.9"},
		{reply: "$JS.ACK.MESSAGES.c1.1.42"},
		{reply: "_INBOX.a.b.c.d.e.f.g.h"},
		{reply: ""},
		{reply: "$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l.m.n"},
	} {
		consumer, sseq, dseq, at, ok := ackMetadata([]byte(tc.reply))
		if ok != tc.ok || ok && (string(consumer) != tc.consumer || sseq != tc.sseq || dseq != tc.dseq || at.UnixNano() != int64(tc.ts)) {
			t.Errorf("%q: got %q %d %d %v %v", tc.reply, consumer, sseq, dseq, at.UnixNano(), ok)
		}
	}
	if v := headerValue([]byte("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 12\r\n\r\n"), "Nats-Pending-Messages"); !bytes.Equal(v, []byte("12")) {
		t.Errorf("Nats-Pending-Messages = %q, want 12", v)
	}
}

// TestHeaderConsumerWithASlowHandler: a handler slower than the server (as the index is
// while it writes a batch) holds back pulls but never the connection: everything arrives,
// in order, on the same consumer, without the server dropping the connection.
func TestHeaderConsumerWithASlowHandler(t *testing.T) {
	b := runInterval(t, false)
	b.pullTimes = &[2]time.Duration{500 * time.Millisecond, 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 3 * pullBatch
	publishN(ctx, t, b, "s", n)
	var (
		c        collector
		hc       *HeaderConsumer
		ready    = make(chan struct{})
		maxQueue int
	)
	hc = consume(ctx, t, b, func(seq uint64, stored time.Time, header []byte) {
		<-ready
		if seq%500 == 0 {
			time.Sleep(400 * time.Millisecond) // longer than a pull's heartbeat, several times
		}
		// The queue as the slow handler leaves it: pulls must stop while it is full.
		hc.mu.Lock()
		maxQueue = max(maxQueue, len(hc.queue))
		hc.mu.Unlock()
		c.handle(seq, stored, header)
	})
	close(ready)
	hc.mu.Lock()
	name, conn := hc.consumer, hc.c
	hc.mu.Unlock()
	c.waitFor(t, n)
	c.checkContiguous(t, 1, n)
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.consumer != name || hc.c != conn || b.headerRecreations.Load() != 0 || b.headerReconnects.Load() != 0 {
		t.Errorf("consumer or connection replaced while the handler was slow")
	}
	if maxQueue > pullBatch+pullBatch/2 {
		t.Errorf("up to %d messages queued while the handler was slow, over the bound of %d", maxQueue, pullBatch+pullBatch/2)
	}
	t.Logf("up to %d messages queued while the handler was slow", maxQueue)
}

// TestHeaderConsumerReconnects ends the consumer's connection under it: it connects again,
// recreates its consumer from where it was, and misses nothing.
func TestHeaderConsumerReconnects(t *testing.T) {
	b := runInterval(t, false)
	b.pullTimes = &[2]time.Duration{time.Second, 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publishN(ctx, t, b, "before", 200)
	var c collector
	hc := consume(ctx, t, b, c.handle)
	c.waitFor(t, 200)
	old := hc.conn()
	old.Close()
	publishN(ctx, t, b, "after", 200)
	c.waitFor(t, 400)
	c.checkContiguous(t, 1, 400)
	if hc.conn() == old {
		t.Error("still on the closed connection")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(b))
	if got := testutil.Series(t, reg, "causeway_bus_lean_recoveries_total", "connection", "header-consumer", "event", "reconnect").GetCounter().GetValue(); got != 1 {
		t.Errorf("header consumer reconnects = %v, want 1", got)
	}
	if got := testutil.Series(t, reg, "causeway_bus_lean_recoveries_total", "connection", "header-consumer", "event", "recreate").GetCounter().GetValue(); got < 1 {
		t.Errorf("header consumer recreations = %v, want at least 1", got)
	}
}

// bigEvents returns n events with ids prefix-0 … whose data is size bytes.
func bigEvents(prefix string, n, size int) []*message.Event {
	evs := newEvents(prefix, n)
	data := append(append([]byte(`"`), bytes.Repeat([]byte("x"), size-2)...), '"')
	for _, ev := range evs {
		ev.Data = data
	}
	return evs
}

// readAll reads MESSAGES from its start through a header consumer until it has sequences
// 1..n, checks they came in order, and returns whether the consumer ended up asking for
// headers only and how many of its pulls ended on their byte limit.
func readAll(ctx context.Context, t *testing.T, b *Bus, n uint64) (headersOnly bool, cut int) {
	t.Helper()
	var c collector
	hc := consume(ctx, t, b, c.handle)
	c.waitFor(t, n)
	c.checkContiguous(t, 1, n)
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.headersOnly, hc.cut
}

// TestHeaderConsumerPullsAreBoundedInBytes reads messages several of which fill a pull's
// byte limit: every pull ends on that limit, and the consumer asks again until it has
// read them all, with their payloads (never headers only).
func TestHeaderConsumerPullsAreBoundedInBytes(t *testing.T) {
	b := runBusWith(t, Options{DataDir: t.TempDir(), Sync: Sync{Interval: time.Second}, MaxMessageBytes: 64 << 10})
	b.pullBytes = 1 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 120 // 6 MB: about 20 to a pull
	for i := 0; i < n; i += 10 {
		if err := b.PublishAll(ctx, bigEvents(fmt.Sprint("big", i), 10, 50<<10), "n1"); err != nil {
			t.Fatal(err)
		}
	}
	headersOnly, cut := readAll(ctx, t, b, n)
	if headersOnly {
		t.Error("the consumer reads headers only; want whole messages within the byte limit")
	}
	if cut < n/25 {
		t.Errorf("%d pulls ended on their byte limit; want at least %d", cut, n/25)
	}
	if r := b.headerRecreations.Load(); r != 0 {
		t.Errorf("%d recreations; want none (pulls ending on their byte limit are normal)", r)
	}
}

// TestHeaderConsumerReadsAMessageLargerThanAPull stores a message under a larger limit,
// then reads the stream with a bus whose pulls are smaller than it: the consumer turns to
// headers only and reads on, instead of waiting for a message no pull can carry.
func TestHeaderConsumerReadsAMessageLargerThanAPull(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := Open(ctx, Options{DataDir: dir, Sync: Sync{Interval: time.Second}, NodeName: "test", MaxMessageBytes: 2 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range [][]*message.Event{newEvents("before", 5), bigEvents("huge", 1, 1536<<10), newEvents("after", 5)} {
		if err := first.PublishAll(ctx, ev, "n1"); err != nil {
			first.Close()
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	first.Close()

	b := runBusWith(t, Options{DataDir: dir, Sync: Sync{Interval: time.Second}, MaxMessageBytes: 64 << 10})
	b.pullBytes = 1 << 20
	if headersOnly, _ := readAll(ctx, t, b, 11); !headersOnly {
		t.Error("the consumer still reads whole messages; want headers only after the message larger than a pull")
	}
}

// TestHeaderConsumerReadsHeadersOnlyForLargeMessages: where the largest message the server
// takes would not fit a pull four times, the consumer asks for headers only from the start.
func TestHeaderConsumerReadsHeadersOnlyForLargeMessages(t *testing.T) {
	b := runBusWith(t, Options{DataDir: t.TempDir(), Sync: Sync{Interval: time.Second}, MaxMessageBytes: 8 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.PublishAll(ctx, bigEvents("large", 3, 3<<20), "n1"); err != nil {
		t.Fatal(err)
	}
	if headersOnly, _ := readAll(ctx, t, b, 3); !headersOnly {
		t.Error("the consumer reads whole messages of up to 8 MiB through pulls of 16 MiB; want headers only")
	}
}
