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
