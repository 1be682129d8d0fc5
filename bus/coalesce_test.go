package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/natswire"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/message"
	"github.com/prometheus/client_golang/prometheus"
)

// TestCoalescedSinglesStoreEveryMessageOnce publishes single messages from concurrent
// callers until the coalescer has gathered some into fast batches, then resends them all
// the same way: every call succeeds, the stream holds each message once, and the metrics
// count the coalesced batches.
func TestCoalescedSinglesStoreEveryMessageOnce(t *testing.T) {
	b := runInterval(t, false)
	q := b.lean.coalesce
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const callers, each = 32, 20
	var sent [][]*message.Event
	publish := func(evs [][]*message.Event) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, callers*each)
		for _, mine := range evs {
			wg.Go(func() {
				for _, ev := range mine {
					errs <- b.PublishAll(ctx, []*message.Event{ev}, "n1")
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Whether two callers meet in the queue is up to the scheduler; a few rounds make it
	// all but certain.
	for round := 0; q.batches.Load() == 0; round++ {
		if ctx.Err() != nil {
			t.Fatal("no coalesced batch formed")
		}
		var evs [][]*message.Event
		for c := range callers {
			evs = append(evs, newEvents(fmt.Sprintf("r%d-c%d", round, c), each))
		}
		publish(evs)
		sent = append(sent, evs...)
	}
	want := uint64(len(sent) * each)
	if n := streamCount(t, b, StreamMessages); n != want {
		t.Fatalf("stream holds %d messages, want %d", n, want)
	}
	publish(sent[:callers]) // a resend: acknowledged again, stored once
	if n := streamCount(t, b, StreamMessages); n != want {
		t.Fatalf("after the resend the stream holds %d messages, want %d", n, want)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(b))
	batches := testutil.Series(t, reg, "causeway_bus_coalesced_batches_total").GetCounter().GetValue()
	msgs := testutil.Series(t, reg, "causeway_bus_coalesced_messages_total").GetCounter().GetValue()
	if batches < 1 || msgs < 2*batches {
		t.Errorf("metrics: %v coalesced batches of %v messages, want at least one of two or more", batches, msgs)
	}
	if _, fallbacks := fastCounts(t, b); fallbacks != 0 {
		t.Errorf("%d fallbacks, want none", fallbacks)
	}
	q.mu.Lock()
	queued := len(q.queue)
	q.mu.Unlock()
	b.lean.mu.Lock()
	left := len(b.lean.singles)
	b.lean.mu.Unlock()
	if queued != 0 || left != 0 || len(b.lean.slots) != 0 {
		t.Errorf("%d queued, %d publishes and %d slots still held after every call returned", queued, left, len(b.lean.slots))
	}
}

// idle is a coalescer on b's lean publisher whose loop does not run: the test takes and
// sends its batches.
func idle(b *Bus) *coalescer { return newCoalescer(b.lean) }

// queueAll queues evs on q from one caller each and returns their results once q has
// them all.
func queueAll(t *testing.T, q *coalescer, evs []*message.Event) []chan error {
	t.Helper()
	results := make([]chan error, len(evs))
	for i, ev := range evs {
		results[i] = make(chan error, 1)
		header := ev.AppendNATSHeader(nil, "n1")
		go func() { results[i] <- q.publish(context.Background(), ev, header) }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			q.mu.Lock()
			n := len(q.queue)
			q.mu.Unlock()
			if n == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d never reached the queue", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return results
}

func result(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("a caller was never answered")
		return nil
	}
}

// TestCoalescedBatchFallsBackOneByOne puts a message too large for the connection between
// two good ones in one coalesced batch: the batch is not taken whole, each message is
// published again alone, and only the large message's caller gets an error.
func TestCoalescedBatchFallsBackOneByOne(t *testing.T) {
	b := runInterval(t, false)
	q := idle(b)
	evs := newEvents("m", 3)
	evs[1].Data = json.RawMessage(`"` + strings.Repeat("x", b.opts.MaxMessageBytes+headerOverhead) + `"`)
	results := queueAll(t, q, evs)
	if !q.take() || len(q.msgs) != 3 {
		t.Fatalf("took %d messages, want 3", len(q.msgs))
	}
	q.send()
	for i, ch := range results {
		err := result(t, ch)
		switch {
		case i == 1 && !errors.Is(err, natswire.ErrMaxPayload):
			t.Errorf("large message: got %v, want %v", err, natswire.ErrMaxPayload)
		case i != 1 && err != nil:
			t.Errorf("message %d: %v", i, err)
		}
	}
	if _, fallbacks := fastCounts(t, b); fallbacks != 1 {
		t.Errorf("%d fallbacks, want 1", fallbacks)
	}
	if n := streamCount(t, b, StreamMessages); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

// TestCoalescedBatchOwnsItsCopies: once taken, a batch no longer reads its callers'
// buffers (a caller that gives up reuses them), so what is stored is what was published
// even when the buffers change before the batch is sent.
func TestCoalescedBatchOwnsItsCopies(t *testing.T) {
	b := runInterval(t, false)
	q := idle(b)
	evs := newEvents("own", 2)
	for i, ev := range evs {
		ev.Data = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
	}
	results := queueAll(t, q, evs)
	q.mu.Lock()
	headers := [][]byte{q.queue[0].header, q.queue[1].header}
	q.mu.Unlock()
	if !q.take() {
		t.Fatal("nothing taken")
	}
	for i, ev := range evs {
		clear(headers[i])
		copy(ev.Data, `{"n":9}`)
	}
	q.send()
	for _, ch := range results {
		if err := result(t, ch); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.js.Stream(context.Background(), StreamMessages)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		stored, err := st.GetMsg(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		got, err := message.FromNATS(stored.Header, stored.Data)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"n":%d}`, i); got.ID != fmt.Sprintf("own-%d", i) || string(got.Data) != want {
			t.Errorf("message %d stored as %s %s, want own-%d %s", i, got.ID, got.Data, i, want)
		}
	}
}

// TestCoalescerGivenUpAndClosed: a caller whose context ends while its message is queued
// takes it out of the queue (nothing of it is published); messages still queued when the
// publisher closes fail, and so does a publish after that.
func TestCoalescerGivenUpAndClosed(t *testing.T) {
	b := runInterval(t, false)
	q := idle(b)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ev := newEvents("gone", 1)[0]
	if err := q.publish(ctx, ev, ev.AppendNATSHeader(nil, "n1")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if q.take() {
		t.Fatal("a message given up was still queued")
	}
	results := queueAll(t, q, newEvents("late", 2))
	q.close()
	for _, ch := range results {
		if err := result(t, ch); !errors.Is(err, errCoalescerClosed) {
			t.Errorf("queued at close: got %v, want %v", err, errCoalescerClosed)
		}
	}
	ev = newEvents("after", 1)[0]
	if err := q.publish(context.Background(), ev, ev.AppendNATSHeader(nil, "n1")); !errors.Is(err, errCoalescerClosed) {
		t.Errorf("after close: got %v, want %v", err, errCoalescerClosed)
	}
	if n := streamCount(t, b, StreamMessages); n != 0 {
		t.Errorf("stream holds %d messages, want none", n)
	}
}

// BenchmarkSinglePublish publishes single messages on the lean connection, with and
// without coalescing, from one caller (where the coalescer only adds a hand-over) and from
// 64 (where it gathers batches). cpu-ns/op is the process's CPU time (user and system) per
// message: coalescing is meant to lower it, which is what lets a node that also serves
// HTTP take more messages, even where one bus alone, with a core to spare, takes them a
// little slower (one coalesced batch is in flight at a time).
func BenchmarkSinglePublish(b *testing.B) {
	for _, mode := range []struct {
		name       string
		noCoalesce bool
	}{{"alone", true}, {"coalesced", false}} {
		for _, callers := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", mode.name, callers), func(b *testing.B) {
				bus, err := Open(context.Background(), Options{DataDir: b.TempDir(), Sync: Sync{Interval: time.Second}, NodeName: "bench", noCoalesce: mode.noCoalesce}, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				defer bus.Close()
				evs := newEvents("b", b.N)
				ctx := context.Background()
				var next atomic.Int64
				before := cpuTime(b)
				b.ResetTimer()
				var wg sync.WaitGroup
				for range callers {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							if err := bus.PublishAll(ctx, evs[i:i+1], "n1"); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
