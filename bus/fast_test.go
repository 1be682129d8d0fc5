package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// TestFastBatchIsUsedWithoutGroupCommit checks the automatic choice: fast batches where
// the server syncs on an interval (on the lean connection on the embedded server), atomic
// batches (group commit) where it fsyncs always.
func TestFastBatchIsUsedWithoutGroupCommit(t *testing.T) {
	if b := runBus(t, t.TempDir(), Sync{Interval: time.Second}); b.lean == nil || b.fast != nil {
		t.Error("sync interval: the lean publisher is off, want on")
	}
	if b := runBusWith(t, Options{DataDir: t.TempDir(), Sync: Sync{Interval: time.Second}, natsGoOnly: true}); b.fast == nil || b.lean != nil {
		t.Error("sync interval through nats.go: fast batches are off, want on")
	}
	if b := runBus(t, t.TempDir(), Sync{Always: true}); b.fast != nil || b.lean != nil {
		t.Error("sync always: fast batches are on beside group commit, want off")
	}
}

// publishers are the two ways the bus publishes without group commit; the fast batch
// tests run on both.
var publishers = []struct {
	name       string
	natsGoOnly bool
}{{"lean", false}, {"nats.go", true}}

// runInterval starts a bus syncing on an interval that publishes the way pub says.
func runInterval(t *testing.T, natsGoOnly bool) *Bus {
	return runBusWith(t, Options{DataDir: t.TempDir(), Sync: Sync{Interval: time.Second}, natsGoOnly: natsGoOnly})
}

func fastCounts(t *testing.T, b *Bus) (batches, fallbacks int64) {
	t.Helper()
	batches, fallbacks, ok := b.fastCounts()
	if !ok {
		t.Fatal("the bus sends no fast batches")
	}
	return batches, fallbacks
}

// TestFastBatchStoresEveryMessageOnce publishes batches from concurrent callers, then
// resends them in the ways a producer retrying after a timeout would: whole, with new
// messages after stored ones, and with new messages before stored ones. The stream must
// hold every message once, and each call must succeed.
func TestFastBatchStoresEveryMessageOnce(t *testing.T) {
	for _, pub := range publishers {
		t.Run(pub.name, func(t *testing.T) { testFastBatchStoresEveryMessageOnce(t, runInterval(t, pub.natsGoOnly)) })
	}
}

func testFastBatchStoresEveryMessageOnce(t *testing.T, b *Bus) {
	const callers, perCall = 16, 40
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4*callers)
	for c := range callers {
		wg.Go(func() {
			evs := newEvents(fmt.Sprint("c", c), perCall)
			errs <- b.PublishAll(ctx, evs, "n1")
			// The same batch again: every message a duplicate.
			errs <- b.PublishAll(ctx, evs, "n1")
			// Stored messages first, then new ones: the server skips the duplicates
			// and stores the rest in the same batch.
			tail := append(evs[:perCall/2:perCall/2], newEvents(fmt.Sprint("t", c), perCall/2)...)
			errs <- b.PublishAll(ctx, tail, "n1")
			// New messages first, then stored ones.
			head := append(newEvents(fmt.Sprint("h", c), perCall/2), evs[perCall/2:]...)
			errs <- b.PublishAll(ctx, head, "n1")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, want := streamCount(t, b, StreamMessages), uint64(callers*2*perCall); n != want {
		t.Fatalf("stream holds %d messages, want %d", n, want)
	}
	batches, fallbacks := fastCounts(t, b)
	if batches != 4*callers {
		t.Errorf("%d fast batches, want %d", batches, 4*callers)
	}
	// The server skips stored messages inside a batch, wherever they are: no batch
	// needs publishing again one message at a time.
	if fallbacks != 0 {
		t.Errorf("%d fallbacks, want none", fallbacks)
	}
	t.Logf("%d fast batches, %d fell back to single publishes", batches, fallbacks)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(b))
	if got := testutil.Series(t, reg, "causeway_bus_fast_batches_total").GetCounter().GetValue(); got != float64(batches) {
		t.Errorf("causeway_bus_fast_batches_total = %v, want %d", got, batches)
	}
	if got := testutil.Series(t, reg, "causeway_bus_fast_batch_fallbacks_total").GetCounter().GetValue(); got != float64(fallbacks) {
		t.Errorf("causeway_bus_fast_batch_fallbacks_total = %v, want %d", got, fallbacks)
	}
}

// TestFastBatchEndsAtAMessageTheStreamRefuses has the server refuse the third message of a
// batch (a failed consistency check): the call fails, the stream holds the two before it and
// nothing after it ("gap: fail"), and publishing the batch again stores the rest once.
func TestFastBatchEndsAtAMessageTheStreamRefuses(t *testing.T) {
	for _, pub := range publishers {
		t.Run(pub.name, func(t *testing.T) {
			b := runInterval(t, pub.natsGoOnly)
			evs := newEvents("m", 5)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var err error
			if b.lean != nil {
				msgs := make([]outMsg, len(evs))
				for i, ev := range evs {
					msgs[i] = outMsg{id: ev.ID, subject: Subject(ev.Type), header: ev.AppendNATSHeader(nil, "n1"), data: ev.Data}
				}
				h := msgs[2].header
				msgs[2].header = append(h[:len(h)-2:len(h)-2], jetstream.ExpectedLastSeqHeader+": 999999\r\n\r\n"...)
				err = b.lean.fastBatch(ctx, msgs)
			} else {
				msgs := make([]*nats.Msg, len(evs))
				for i, ev := range evs {
					msgs[i] = b.toNATS(ev, "n1")
				}
				msgs[2].Header.Set(jetstream.ExpectedLastSeqHeader, "999999")
				err = b.fast.publish(ctx, msgs)
			}
			testFastBatchEndsAtARefusal(ctx, t, b, evs, err)
		})
	}
}

func testFastBatchEndsAtARefusal(ctx context.Context, t *testing.T, b *Bus, evs []*message.Event, err error) {
	if err == nil {
		t.Fatal("a batch with a refused message succeeded")
	}
	t.Log(err)
	if n := streamCount(t, b, StreamMessages); n != 2 {
		t.Errorf("stream holds %d messages, want the 2 before the refused one", n)
	}
	if err := b.PublishAll(ctx, evs, "n1"); err != nil {
		t.Fatal(err)
	}
	if n := streamCount(t, b, StreamMessages); n != 5 {
		t.Errorf("stream holds %d messages after the resend, want 5", n)
	}
}

// TestFastBatchWithAMessageTooLarge: the bus connection refuses the third message before
// it is sent; the call fails naming it, the batch is published again one message at a
// time (which stops at the same message, as without fast batches), and the bus goes on.
func TestFastBatchWithAMessageTooLarge(t *testing.T) {
	for _, pub := range publishers {
		t.Run(pub.name, func(t *testing.T) { testFastBatchWithAMessageTooLarge(t, runInterval(t, pub.natsGoOnly)) })
	}
}

func testFastBatchWithAMessageTooLarge(t *testing.T, b *Bus) {
	evs := newEvents("m", 5)
	evs[2].Data = json.RawMessage(`"` + strings.Repeat("x", b.opts.MaxMessageBytes+headerOverhead) + `"`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := b.PublishAll(ctx, evs, "n1")
	if err == nil || !strings.Contains(err.Error(), "m-2") {
		t.Fatalf("got %v, want an error naming m-2", err)
	}
	if _, fallbacks := fastCounts(t, b); fallbacks != 1 {
		t.Errorf("%d fallbacks, want 1", fallbacks)
	}
	before := streamCount(t, b, StreamMessages)
	if err := b.PublishAll(ctx, newEvents("after", 3), "n1"); err != nil {
		t.Fatal(err)
	}
	if n := streamCount(t, b, StreamMessages); n != before+3 {
		t.Errorf("stream holds %d messages, want %d", n, before+3)
	}
}

// TestFastBatchNeedsAServerThatHasThem runs against the machine's NATS server (older than
// 2.14, which brought fast batches): batches are published one message at a time, and the
// stream is not asked for an option the server does not know.
func TestFastBatchNeedsAServerThatHasThem(t *testing.T) {
	url := testutil.UseExternalNATS(t)
	testutil.CleanExternalNATS(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, Options{URL: url, NodeName: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v := b.nc.ConnectedServerVersion()
	if serverAtLeast(v, 2, 14) {
		t.Skipf("the machine's NATS server is %s, which has fast batches", v)
	}
	if b.fast != nil {
		t.Fatalf("fast batches on with NATS %s", v)
	}
	if err := b.PublishAll(ctx, newEvents("ext", 10), "n1"); err != nil {
		t.Fatal(err)
	}
	if n := streamCount(t, b, StreamMessages); n != 10 {
		t.Errorf("stream holds %d messages, want 10", n)
	}
}

// TestWaitStoredChecksTheStream: a publish that some other stream acknowledged is not
// taken as stored in MESSAGES (what the expected-stream header used to check).
func TestWaitStoredChecksTheStream(t *testing.T) {
	b := runBus(t, t.TempDir(), Sync{Interval: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	f, err := b.js.PublishMsgAsync(&nats.Msg{Subject: "other.x", Header: nats.Header{jetstream.MsgIDHeader: []string{"o-1"}}, Data: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waitStored(ctx, f); err == nil || !strings.Contains(err.Error(), `stored by stream "OTHER"`) || !strings.Contains(err.Error(), "o-1") {
		t.Fatalf("got %v, want an error naming the other stream and the message", err)
	}
	f, err = b.PublishAsync(newEvents("m", 1)[0], "n1")
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := waitStored(ctx, f); err != nil || ack.Stream != StreamMessages {
		t.Fatalf("a message to MESSAGES: %v %v", ack, err)
	}
}
