package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/store"
	"github.com/prometheus/client_golang/prometheus"
)

func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: dir, Sync: bus.Sync{Interval: time.Second}, NodeName: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func publish(t *testing.T, b *bus.Bus, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ev := &message.Event{ID: id, Source: "s", Type: "order.created", Data: json.RawMessage(`{}`)}
		ev.FillDefaults(time.Now())
		if _, err := b.Publish(context.Background(), ev, "t"); err != nil {
			t.Fatal(err)
		}
	}
}

// readers are the two ways the indexer reads MESSAGES: the bus's header consumer (on the
// embedded server) and nats.go (on an external one).
var readers = []struct {
	name string
	lean bool
}{{"header consumer", true}, {"nats.go", false}}

// openStore opens a tracking database in a temporary directory, closed when the test ends.
func openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newIndexer returns an indexer writing to st, reading MESSAGES as lean says, with its
// metrics registered with reg when reg is not nil.
func newIndexer(b *bus.Bus, st Store, lean bool, reg *prometheus.Registry) *Indexer {
	var r prometheus.Registerer // nil, not a nil *Registry, when there is none
	if reg != nil {
		r = reg
	}
	ix := NewIndexer(b.JetStream(), st, nil, NewMetrics(r))
	if lean {
		ix.ReadWith(b)
	}
	return ix
}

// waitIndexed polls the store until every id is there.
func waitIndexed(t *testing.T, st *store.SQLite, ids ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for {
			_, _, err := st.Message(context.Background(), id)
			if err == nil {
				break
			}
			if !errors.Is(err, store.ErrNotFound) || time.Now().After(deadline) {
				t.Fatalf("%s not indexed: %v", id, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestResumesAfterItsPosition stops the indexer, publishes more, and starts a new one: it
// indexes only what came after the stored position, and the position follows.
func TestResumesAfterItsPosition(t *testing.T) {
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) { testResumesAfterItsPosition(t, r.lean) })
	}
}

func testResumesAfterItsPosition(t *testing.T, lean bool) {
	b := openBus(t, t.TempDir())
	st := openStore(t)
	ix := newIndexer(b, st, lean, nil)
	if err := ix.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "a1", "a2", "a3")
	waitIndexed(t, st, "a1", "a2", "a3")
	ix.Stop()
	if pos, _ := st.Position(context.Background(), bus.StreamMessages); pos.Seq != 3 || pos.Epoch == "" {
		t.Fatalf("position %+v after three messages, want seq 3 with an epoch", pos)
	}

	publish(t, b, "b1", "b2")
	ix2 := newIndexer(b, st, lean, nil)
	if err := ix2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer ix2.Stop()
	waitIndexed(t, st, "b1", "b2")
	if n, _ := st.Count(context.Background()); n != 5 {
		t.Fatalf("index holds %d messages, want 5", n)
	}
	if got := ix2.Position(bus.StreamMessages); got != 5 {
		t.Fatalf("indexer position %d, want 5", got)
	}
}

// TestStreamRecreatedBehindTheIndex deletes the MESSAGES stream under an index that has read
// it: the new stream's sequences start again at 1, and the indexer must index it from its
// start, both when the new stream is still below the stored position and when it has
// already grown past it (where sequence numbers alone cannot tell).
func TestStreamRecreatedBehindTheIndex(t *testing.T) {
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) { testStreamRecreatedBehindTheIndex(t, r.lean) })
	}
}

func testStreamRecreatedBehindTheIndex(t *testing.T, lean bool) {
	data := t.TempDir()
	b := openBus(t, data)
	st := openStore(t)
	ix := newIndexer(b, st, lean, nil)
	if err := ix.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var old []string
	for i := range 10 {
		old = append(old, fmt.Sprintf("old-%d", i))
	}
	publish(t, b, old...)
	waitIndexed(t, st, old...)
	ix.Stop()

	for _, n := range []int{2, 25} {
		if err := b.JetStream().DeleteStream(context.Background(), bus.StreamMessages); err != nil {
			t.Fatal(err)
		}
		b.Close()
		b = openBus(t, data)             // creates the streams again
		time.Sleep(2 * time.Millisecond) // a creation time of its own
		var ids []string
		for i := range n {
			ids = append(ids, fmt.Sprintf("new%d-%d", n, i))
		}
		publish(t, b, ids...)
		ix := newIndexer(b, st, lean, nil)
		if err := ix.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitIndexed(t, st, ids...)
		ix.Stop()
	}
}

// TestPublishOnceKeepsARepeatOnce sends the same event for the same message twice (a step
// run again after a crash) and another event for it once: the stream keeps two.
func TestPublishOnceKeepsARepeatOnce(t *testing.T) {
	b := openBus(t, t.TempDir())
	ctx := context.Background()
	ev := Event{MessageID: "m-1", Event: "gateway.request", Time: time.Now().UTC(), Node: "t", Detail: "API a, GET /x; run r"}
	for range 2 {
		if err := PublishOnce(ctx, b.JetStream(), ev); err != nil {
			t.Fatal(err)
		}
	}
	other := ev
	other.Event = "delivered"
	if err := PublishOnce(ctx, b.JetStream(), other); err != nil {
		t.Fatal(err)
	}
	s, err := b.JetStream().Stream(ctx, bus.StreamTracking)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("TRACKING holds %d events, want 2", info.State.Msgs)
	}
}

// TestMessageEntry reads an index entry from a header block as nats.go's Header.Get would:
// the first value of a name counts, values are percent-decoded, other headers are ignored.
func TestMessageEntry(t *testing.T) {
	at := time.Unix(1763971200, 5)
	block := "NATS/1.0\r\nce-id: m-1\r\nce-type: order.created\r\nce-source: %20shop%25\r\nce-id: m-2\r\n" +
		"ce-subject: A-1\r\nce-correlationid: c-9\r\nCauseway-Node: n1\r\nNats-Msg-Size: 7\r\nce-kind: original\r\n\r\n"
	got := new(entryReader).read(bus.StreamMessages, 42, at, []byte(block))
	want := store.Message{ID: "m-1", Type: "order.created", Source: " shop%", Subject: "A-1", CorrelationID: "c-9",
		Stream: bus.StreamMessages, Sequence: 42, AcceptedAt: at, Node: "n1"}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// TestEntryReaderReadsEachBlockOnItsOwn reads blocks one after another with one reader, as
// the header consumer hands them over: what it keeps from the block before never stands in
// for a value that differs, and a correlation id that repeats the id reads as the id.
func TestEntryReaderReadsEachBlockOnItsOwn(t *testing.T) {
	at := time.Unix(1763971200, 5)
	block := func(id, typ, source, corr, node string) []byte {
		b := "NATS/1.0\r\nce-id: " + id + "\r\nce-type: " + typ + "\r\nce-source: " + source + "\r\n"
		if corr != "" {
			b += "ce-correlationid: " + corr + "\r\n"
		}
		return []byte(b + "Causeway-Node: " + node + "\r\n\r\n")
	}
	var r entryReader
	for i, c := range []struct {
		block []byte
		want  store.Message
	}{
		{block("a", "order.created", "shop", "a", "n1"), store.Message{ID: "a", Type: "order.created", Source: "shop", CorrelationID: "a", Node: "n1"}},
		{block("b", "order.created", "shop", "x", "n1"), store.Message{ID: "b", Type: "order.created", Source: "shop", CorrelationID: "x", Node: "n1"}},
		{block("c", "order.shipped", "erp%20eu", "c", "n2"), store.Message{ID: "c", Type: "order.shipped", Source: "erp eu", CorrelationID: "c", Node: "n2"}},
		{block("d", "order.created", "shop", "", "n1"), store.Message{ID: "d", Type: "order.created", Source: "shop", Node: "n1"}},
		{block("e", "order.shipped", "erp%20eu", "d", "n2"), store.Message{ID: "e", Type: "order.shipped", Source: "erp eu", CorrelationID: "d", Node: "n2"}},
	} {
		want := c.want
		want.Stream, want.Sequence, want.AcceptedAt = bus.StreamMessages, uint64(i+1), at
		if got := r.read(bus.StreamMessages, uint64(i+1), at, c.block); got != want {
			t.Errorf("block %d: got %+v\nwant %+v", i+1, got, want)
		}
	}
}

// BenchmarkMessageEntry reads index entries from the header blocks of accepted messages as
// the header consumer hands them to one reader: messages of one type and source from one
// node, each with its own id and a correlation id equal to it.
func BenchmarkMessageEntry(b *testing.B) {
	var blocks [][]byte
	for i := range 64 {
		ev := &message.Event{SpecVersion: "1.0", ID: fmt.Sprintf("c%d-%d-0", i, i*7), Source: "bench", Type: "order.created"}
		ev.FillDefaults(time.Unix(1763971200, int64(i)))
		blocks = append(blocks, ev.AppendNATSHeader(nil, "node-a"))
	}
	at := time.Unix(1763971200, 0)
	b.ReportAllocs()
	var r entryReader
	var m store.Message
	for i := 0; b.Loop(); i++ {
		m = r.read(bus.StreamMessages, uint64(i), at, blocks[i%len(blocks)])
	}
	_ = m
}

// slowStore is a store that takes delay longer over every batch of MESSAGES, as a large
// index on a slow disk does; it records each batch's size and closes began when the first
// write begins.
type slowStore struct {
	*store.SQLite
	delay time.Duration
	sizes []int
	began chan struct{}
	once  sync.Once
}

func newSlowStore(sq *store.SQLite, delay time.Duration) *slowStore {
	return &slowStore{SQLite: sq, delay: delay, began: make(chan struct{})}
}

func (s *slowStore) Index(ctx context.Context, pos store.Position, b store.Batch) error {
	if pos.Stream == bus.StreamMessages {
		s.once.Do(func() { close(s.began) })
		s.sizes = append(s.sizes, len(b.Messages))
		time.Sleep(s.delay)
	}
	return s.SQLite.Index(ctx, pos, b)
}

// publishBatches publishes a message for each id, 500 to a PublishAll.
func publishBatches(t *testing.T, b *bus.Bus, ids []string) {
	t.Helper()
	for start := 0; start < len(ids); start += 500 {
		events := make([]*message.Event, 0, 500)
		for _, id := range ids[start:min(start+500, len(ids))] {
			ev := &message.Event{ID: id, Source: "s", Type: "order.created", Data: json.RawMessage(`{}`)}
			ev.FillDefaults(time.Now())
			events = append(events, ev)
		}
		if err := b.PublishAll(context.Background(), events, "t"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBacklogIsIndexedInLargeTransactions starts the indexer behind a backlog of messages,
// on a store slower than reading: read through the header consumer, what gathers while one
// transaction is written goes into the next, so it catches up in transactions larger than
// maxBatch (each changes fewer pages per message); read through nats.go, whose entries
// carry their bodies, transactions stay within maxBatch. Either way every message is
// indexed once.
func TestBacklogIsIndexedInLargeTransactions(t *testing.T) {
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			b := openBus(t, t.TempDir())
			const n = 12000
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("%08x-%d", rand.Uint32(), i)
			}
			publishBatches(t, b, ids)
			sq := openStore(t)
			st := newSlowStore(sq, 50*time.Millisecond)
			reg := prometheus.NewRegistry()
			ix := newIndexer(b, st, r.lean, reg)
			if err := ix.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Minute)
			for ix.Position(bus.StreamMessages) < n {
				if time.Now().After(deadline) {
					t.Fatalf("indexed up to %d of %d", ix.Position(bus.StreamMessages), n)
				}
				time.Sleep(5 * time.Millisecond)
			}
			ix.Stop()
			if got, _ := sq.Count(context.Background()); got != int64(n) {
				t.Fatalf("index holds %d messages, want %d", got, n)
			}
			waitIndexed(t, sq, ids[0], ids[n/2], ids[n-1])
			largest := slices.Max(st.sizes)
			if r.lean && largest <= maxBatch {
				t.Fatalf("largest transaction %d entries (of %v), want more than %d", largest, st.sizes, maxBatch)
			}
			if largest > maxCatchUp || (!r.lean && largest > maxBatch) {
				t.Fatalf("largest transaction %d entries, over the bound", largest)
			}
			t.Logf("%d transactions, the largest %d entries", len(st.sizes), largest)
			// The transactions show in the metrics: one observation each, n entries in all.
			h := testutil.Series(t, reg, "causeway_tracking_index_transaction_entries", "stream", bus.StreamMessages).GetHistogram()
			if h.GetSampleCount() != uint64(len(st.sizes)) || h.GetSampleSum() != n {
				t.Fatalf("transaction entries histogram: %d observations summing to %v, want %d summing to %d", h.GetSampleCount(), h.GetSampleSum(), len(st.sizes), n)
			}
			if d := testutil.Series(t, reg, "causeway_tracking_index_transaction_seconds", "stream", bus.StreamMessages).GetHistogram(); d.GetSampleCount() != uint64(len(st.sizes)) || d.GetSampleSum() < 0.05*float64(len(st.sizes)) {
				t.Fatalf("transaction seconds histogram: %d observations summing to %v s, want %d of at least 50 ms each", d.GetSampleCount(), d.GetSampleSum(), len(st.sizes))
			}
		})
	}
}

// TestStopReleasesAConsumerWaitingForRoom stops the indexer while it writes a transaction
// and the consumer, behind a backlog larger than the gather holds, waits for room: Stop
// returns once the transaction in progress is written, and a new indexer resumes from its
// position and indexes everything. (That closing the gather wakes a waiting consumer on
// its own is TestGatherHoldsUpToItsLimit's: here the writer may also take once more.)
func TestStopReleasesAConsumerWaitingForRoom(t *testing.T) {
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			b := openBus(t, t.TempDir())
			n := 3 * maxBatch
			if r.lean {
				n = maxCatchUp + 10*maxBatch
			}
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("w-%d", i)
			}
			publishBatches(t, b, ids)
			sq := openStore(t)
			st := newSlowStore(sq, 300*time.Millisecond)
			ix := newIndexer(b, st, r.lean, nil)
			if err := ix.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			<-st.began
			// Let the consumer fill the gather and wait for room: the transaction in progress
			// takes 300 ms.
			time.Sleep(200 * time.Millisecond)
			stopped := make(chan struct{})
			go func() { ix.Stop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				t.Fatal("Stop did not return")
			}
			if got := ix.Position(bus.StreamMessages); got == 0 || got >= uint64(n) {
				t.Fatalf("position %d after stopping in the first transaction, want some but not all of %d", got, n)
			}

			ix2 := newIndexer(b, sq, r.lean, nil)
			if err := ix2.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer ix2.Stop()
			waitIndexed(t, sq, "w-0", fmt.Sprintf("w-%d", n-1))
			if got, _ := sq.Count(context.Background()); got != int64(n) {
				t.Fatalf("index holds %d messages, want %d", got, n)
			}
		})
	}
}
