package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/natswire"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// singlePublishers are the ways the bus publishes single messages without group commit.
var singlePublishers = []struct {
	name                   string
	natsGoOnly, noCoalesce bool
}{{"lean", false, false}, {"lean without coalescing", false, true}, {"nats.go", true, false}}

// TestSinglePublishesStoreEveryMessageOnce sends single messages from concurrent callers,
// each twice, on every publisher: every call succeeds, the stream holds each message once,
// and what it holds reads back as the event that was published (the lean publisher's
// header block is the one nats.go would have written).
func TestSinglePublishesStoreEveryMessageOnce(t *testing.T) {
	for _, pub := range singlePublishers {
		t.Run(pub.name, func(t *testing.T) {
			b := runBusWith(t, Options{DataDir: t.TempDir(), Sync: Sync{Interval: time.Second}, natsGoOnly: pub.natsGoOnly, noCoalesce: pub.noCoalesce})
			if b.lean != nil && (b.lean.coalesce == nil) != pub.noCoalesce {
				t.Fatalf("coalescing on = %v, want %v", b.lean.coalesce != nil, !pub.noCoalesce)
			}
			const callers, each = 16, 50
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 2*callers*each)
			for c := range callers {
				wg.Go(func() {
					for _, ev := range newEvents(fmt.Sprint("c", c), each) {
						errs <- b.PublishAll(ctx, []*message.Event{ev}, "n1")
						errs <- b.PublishAll(ctx, []*message.Event{ev}, "n1") // a resend: acknowledged again
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
			if n := streamCount(t, b, StreamMessages); n != callers*each {
				t.Fatalf("stream holds %d messages, want %d", n, callers*each)
			}
			st, err := b.js.Stream(ctx, StreamMessages)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := st.GetLastMsgForSubject(ctx, Subject("order.created"))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := message.FromNATS(stored.Header, stored.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(ev.ID, "c") || ev.Type != "order.created" || ev.Source != "test" || string(ev.Data) != `{"n":1}` ||
				stored.Header.Get(message.HeaderNode) != "n1" || stored.Header.Get(message.HeaderMsgID) != ev.ID {
				t.Errorf("stored message reads back as %+v with headers %v", ev, stored.Header)
			}
			if b.lean != nil {
				b.lean.mu.Lock()
				left := len(b.lean.singles)
				b.lean.mu.Unlock()
				if left != 0 || len(b.lean.slots) != 0 {
					t.Errorf("%d publishes and %d slots still held after every call returned", left, len(b.lean.slots))
				}
			}
		})
	}
}

// TestLeanPublishGivenUp: a caller whose context has ended gets an error and publishes
// nothing, and what it was waiting for is let go (no slot held for ever).
func TestLeanPublishGivenUp(t *testing.T) {
	b := runInterval(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.PublishAll(ctx, newEvents("gone", 1), "n1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// Nothing of it was published, on either lean path.
	alone := runBusWith(t, Options{DataDir: t.TempDir(), Sync: Sync{Interval: time.Second}, noCoalesce: true})
	if err := alone.PublishAll(ctx, newEvents("gone", 1), "n1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("without coalescing: got %v, want context.Canceled", err)
	}
	if err := b.PublishAll(context.Background(), newEvents("later", 1), "n1"); err != nil {
		t.Fatal(err)
	}
	if n := streamCount(t, b, StreamMessages); n != 1 {
		t.Errorf("stream holds %d messages, want only the later one", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(b.lean.slots) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots still held", len(b.lean.slots))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLeanPublishAfterClose: once the bus is closed, a publish fails at once.
func TestLeanPublishAfterClose(t *testing.T) {
	b := runInterval(t, false)
	b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.PublishAll(ctx, newEvents("late", 1), "n1"); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want an immediate error", err)
	}
}

// TestAckVerdict reads the server's answers to a single publish.
func TestAckVerdict(t *testing.T) {
	for _, tc := range []struct {
		name, header, data string
		want               string // "" for success, else part of the error
	}{
		{name: "stored", data: `{"stream":"MESSAGES","seq":12}`},
		{name: "duplicate", data: `{"stream":"MESSAGES","seq":12,"duplicate":true}`},
		{name: "with a domain", data: `{"stream":"MESSAGES","domain":"hub","seq":12}`},
		{name: "another stream", data: `{"stream":"OTHER","seq":1}`, want: `stored by stream "OTHER"`},
		{name: "another stream, decoded", data: `{"domain":"x","stream":"OTHER","seq":1}`, want: `stored by stream "OTHER"`},
		{name: "refused", data: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 2"},"stream":"MESSAGES","seq":0}`, want: "wrong last sequence"},
		{name: "unreadable", data: `{"stream":`, want: "unreadable acknowledgement"},
		{name: "no stream", header: "NATS/1.0 503\r\n\r\n", want: "no response from stream"},
		{name: "other status", header: "NATS/1.0 408 Request Timeout\r\n\r\n", want: "answered 408"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ackVerdict(&natswire.Msg{Header: []byte(tc.header), Data: []byte(tc.data)}, StreamMessages, "m-1")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "m-1")):
				t.Fatalf("got %v, want an error naming m-1 with %q", err, tc.want)
			}
			if tc.name == "refused" {
				var apiErr *jetstream.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10071 {
					t.Errorf("got %v, want the server's API error", err)
				}
			}
		})
	}
}

// TestLeanPublisherReconnects ends the lean connection under load: callers waiting on it
// get an error (and may resend), nats.go carries messages until a new connection is up,
// and every message resent until it succeeds is stored once.
func TestLeanPublisherReconnects(t *testing.T) {
	b := runInterval(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	const callers, each = 8, 100
	for c := range callers {
		wg.Go(func() {
			for _, ev := range newEvents(fmt.Sprint("r", c), each) {
				for ctx.Err() == nil && b.PublishAll(ctx, []*message.Event{ev}, "n1") != nil {
					time.Sleep(time.Millisecond) // a producer resending after an error
				}
			}
		})
	}
	old := b.lean.c.Load()
	old.Close()
	wg.Wait()
	if err := b.PublishAll(ctx, newEvents("later", 5), "n1"); err != nil {
		t.Fatal(err)
	}
	if n := streamCount(t, b, StreamMessages); n != callers*each+5 {
		t.Fatalf("stream holds %d messages, want %d", n, callers*each+5)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.lean.c.Load() == old || !b.lean.up() {
		if time.Now().After(deadline) {
			t.Fatal("the lean publisher did not reconnect")
		}
		time.Sleep(5 * time.Millisecond)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(b))
	if got := testutil.Series(t, reg, "causeway_bus_lean_recoveries_total", "connection", "publisher", "event", "reconnect").GetCounter().GetValue(); got != 1 {
		t.Errorf("publisher reconnects = %v, want 1", got)
	}
}

// TestLeanPublisherAbandonsWaitingPublishes ends the lean connection while a publish and a
// fast batch wait for their answers on it: both are failed at once (nothing waits on the
// connection itself), and the publish's slot is freed.
func TestLeanPublisherAbandonsWaitingPublishes(t *testing.T) {
	b := runInterval(t, false)
	p := b.lean
	conn := p.c.Load()
	single := &call{done: make(chan struct{})}
	single.left.Store(1)
	p.slots <- struct{}{}
	batch := &fastCall{n: 2, done: make(chan error, 1), conn: conn}
	p.mu.Lock()
	p.next++
	p.singles[p.next] = pending{call: single, id: "m-waiting", conn: conn}
	p.batches["batch-waiting"] = batch
	p.mu.Unlock()
	conn.Close()
	select {
	case <-single.done:
		if single.err == nil || !strings.Contains(single.err.Error(), "m-waiting") || !strings.Contains(single.err.Error(), "connection ended") {
			t.Errorf("waiting publish: %v", single.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting publish was not failed when its connection ended")
	}
	select {
	case err := <-batch.done:
		if err == nil || !strings.Contains(err.Error(), "connection ended") {
			t.Errorf("waiting fast batch: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting fast batch was not failed when its connection ended")
	}
	p.mu.Lock()
	left, slots := len(p.singles), len(p.slots)
	p.mu.Unlock()
	if left != 0 || slots != 0 {
		t.Errorf("%d publishes still registered, %d slots held", left, slots)
	}
}
