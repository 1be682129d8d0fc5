package tracking

import (
	"context"
	"testing"
	"time"

	"github.com/causeway/causeway/store"
)

// TestGatherHoldsUpToItsLimit fills a gather to its limit: the next put waits until the
// writer takes the entries, the signals say when there is something and when a
// transaction's worth is there, and closing releases a put that waits.
func TestGatherHoldsUpToItsLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := newGather(ctx, 4, 2)
	put := func(seq uint64) bool { return g.put(entry{msg: store.Message{Sequence: seq}}) }
	select {
	case <-g.ready:
		t.Fatal("ready before anything was put")
	default:
	}
	put(1)
	<-g.ready
	put(2)
	<-g.full
	put(3)
	put(4)
	done := make(chan bool)
	go func() { done <- put(5) }()
	select {
	case <-done:
		t.Fatal("a put over the limit did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	if got := g.take(nil); len(got) != 4 || got[0].msg.Sequence != 1 || got[3].msg.Sequence != 4 {
		t.Fatalf("took %v, want entries 1 to 4", got)
	}
	if !<-done {
		t.Fatal("the waiting put was dropped after the take")
	}
	if got := g.take(nil); len(got) != 1 || got[0].msg.Sequence != 5 {
		t.Fatalf("took %v, want entry 5", got)
	}
	for seq := uint64(6); seq <= 9; seq++ {
		put(seq)
	}
	go func() { done <- put(10) }()
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("a put released by closing reported the entry kept")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing did not release the waiting put")
	}
	if put(11) {
		t.Fatal("a put after closing reported the entry kept")
	}
}

// TestBusyIndexLingersLonger checks the writer's linger: a few entries are written after
// lingerTime, as many as arrive at a busy rate wait until busyLinger for more, and a
// transaction's worth is written at once. Timers never fire early, so the lower bounds
// hold on any machine; each upper bound is checked on the fastest of three tries, which a
// stall of the machine in one of them does not break.
func TestBusyIndexLingersLonger(t *testing.T) {
	ctx := context.Background()
	fastest := func(n, fullAt int) time.Duration {
		best := time.Hour
		for range 3 {
			g := newGather(ctx, busyBatch, fullAt)
			for seq := range n {
				g.put(entry{msg: store.Message{Sequence: uint64(seq + 1)}})
			}
			start := time.Now()
			linger(ctx, g)
			best = min(best, time.Since(start))
			if got := len(g.take(nil)); got != n {
				t.Fatalf("took %d entries, want %d", got, n)
			}
		}
		return best
	}
	if d := fastest(10, busyBatch); d < lingerTime || d >= busyLinger {
		t.Errorf("10 entries lingered %v, want at least %v and less than %v", d, lingerTime, busyLinger)
	}
	if d := fastest(busyAt, busyBatch); d < busyLinger {
		t.Errorf("%d entries lingered %v, want at least %v", busyAt, d, busyLinger)
	}
	if d := fastest(busyAt, busyAt); d >= lingerTime {
		t.Errorf("a full transaction lingered %v, want it written before %v", d, lingerTime)
	}
}
