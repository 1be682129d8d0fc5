package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/message"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

func newEvents(prefix string, n int) []*message.Event {
	evs := make([]*message.Event, n)
	for i := range evs {
		evs[i] = &message.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Source: "test", Type: "order.created", Data: json.RawMessage(`{"n":1}`)}
		evs[i].FillDefaults(time.Now())
	}
	return evs
}

// TestGroupCommitIsOnByDefaultWithFsyncAlways checks the automatic choice: group commit
// where every write is fsynced, single publishes where the server syncs on an interval.
func TestGroupCommitIsOnByDefaultWithFsyncAlways(t *testing.T) {
	if b := runBus(t, t.TempDir(), Sync{Always: true}); b.group == nil {
		t.Error("sync always: group commit is off, want on")
	}
	if b := runBus(t, t.TempDir(), Sync{Interval: time.Second}); b.group != nil {
		t.Error("sync interval: group commit is on, want off")
	}
}

// TestGroupCommitStoresEveryMessageOnce publishes from many concurrent callers, some of
// them resending ids already stored, and counts the stream: every message once, in fewer
// batches than messages.
func TestGroupCommitStoresEveryMessageOnce(t *testing.T) {
	b := runBus(t, t.TempDir(), Sync{Always: true})
	const callers, perCall = 32, 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*callers)
	for c := range callers {
		wg.Go(func() {
			evs := newEvents(fmt.Sprint("c", c), perCall)
			errs <- b.PublishAll(ctx, evs, "n1")
			// Resend half of them beside new ones: the server refuses such a batch as a
			// whole, and the committer must still settle every message.
			again := append(evs[:perCall/2:perCall/2], newEvents(fmt.Sprint("d", c), perCall/2)...)
			errs <- b.PublishAll(ctx, again, "n1")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := uint64(callers * (perCall + perCall/2))
	if n := streamCount(t, b, StreamMessages); n != want {
		t.Fatalf("stream holds %d messages, want %d", n, want)
	}
	batches, msgs := b.group.batches.Load(), b.group.messages.Load()
	if msgs != int64(callers*2*perCall) {
		t.Errorf("group committer saw %d messages, want %d", msgs, callers*2*perCall)
	}
	if batches >= msgs/2 {
		t.Errorf("%d batches for %d messages: concurrent publishes were not grouped", batches, msgs)
	}
	if b.group.fallbacks.Load() == 0 {
		t.Error("no batch fell back to single publishes, although ids were resent")
	}
	t.Logf("%d messages in %d batches, %d fallbacks", msgs, batches, b.group.fallbacks.Load())

	// The collector reports the same figures.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(b))
	if got := testutil.Series(t, reg, "causeway_bus_group_commit_messages_total").GetCounter().GetValue(); got != float64(msgs) {
		t.Errorf("causeway_bus_group_commit_messages_total = %v, want %d", got, msgs)
	}
}

// TestGroupCommitSettlesEachCallOnItsOwn puts a message the stream cannot take in the same
// batch as good ones from another caller: only its own caller gets the error.
func TestGroupCommitSettlesEachCallOnItsOwn(t *testing.T) {
	b := runBus(t, t.TempDir(), Sync{Always: true})
	good, bad := &call{done: make(chan struct{})}, &call{done: make(chan struct{})}
	good.left.Store(2)
	bad.left.Store(1)
	var batch []entry
	for i, ev := range newEvents("g", 2) {
		batch = append(batch, entry{msg: b.toNATS(ev, "n1"), id: ev.ID, call: good})
		if i == 0 {
			// Larger than the stream's limit on one message.
			huge := newEvents("huge", 1)[0]
			huge.Data = json.RawMessage(`"` + strings.Repeat("x", b.opts.MaxMessageBytes+headerOverhead) + `"`)
			batch = append(batch, entry{msg: b.toNATS(huge, "n1"), id: huge.ID, call: bad})
		}
	}
	before := b.group.fallbacks.Load()
	b.group.commit(batch)
	<-good.done
	<-bad.done
	if good.err != nil {
		t.Errorf("good caller: %v", good.err)
	}
	if bad.err == nil || !strings.Contains(bad.err.Error(), "huge-0") {
		t.Errorf("bad caller: got %v, want an error naming huge-0", bad.err)
	}
	if b.group.fallbacks.Load() != before+1 {
		t.Error("the refused batch was not published one by one")
	}
	if n := streamCount(t, b, StreamMessages); n != 2 {
		t.Errorf("stream holds %d messages, want the 2 good ones", n)
	}
}

// TestGroupCommitAfterClose refuses new messages once the bus is closing, with an error.
func TestGroupCommitAfterClose(t *testing.T) {
	b := runBus(t, t.TempDir(), Sync{Always: true})
	b.group.close()
	err := b.group.publish(context.Background(), []*nats.Msg{b.toNATS(newEvents("late", 1)[0], "")})
	if !errors.Is(err, errClosed) {
		t.Fatalf("publish after close: got %v, want %v", err, errClosed)
	}
}
