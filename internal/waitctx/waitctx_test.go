package waitctx

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestWaitsWithinATickShareOneContext(t *testing.T) {
	to := New(time.Hour, time.Second)
	start := time.Now()
	a := to.Context(start)
	b := to.Context(start.Add(500 * time.Millisecond))
	if a != b {
		t.Fatal("two waits half a tick apart got different contexts")
	}
	c := to.Context(start.Add(1500 * time.Millisecond))
	if c == a {
		t.Fatal("a wait a tick and a half later got the old context, which would end before it should")
	}
	for _, w := range []struct {
		ctx   context.Context
		start time.Time
	}{{a, start}, {b, start.Add(500 * time.Millisecond)}, {c, start.Add(1500 * time.Millisecond)}} {
		d, ok := w.ctx.Deadline()
		if !ok || d.Before(w.start.Add(time.Hour)) || d.After(w.start.Add(time.Hour+time.Second)) {
			t.Errorf("deadline %v for a wait of an hour from %v: not within [d, d + tick]", d, w.start)
		}
		if w.ctx.Err() != nil || w.ctx.Value("k") != nil {
			t.Errorf("a live context: Err %v, Value %v", w.ctx.Err(), w.ctx.Value("k"))
		}
	}
}

func TestContextEndsNoEarlierThanItsWait(t *testing.T) {
	const wait = 50 * time.Millisecond
	to := New(wait, 10*time.Millisecond)
	start := time.Now()
	ctx := to.Context(start)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the context did not end")
	}
	if took := time.Since(start); took < wait {
		t.Errorf("ended after %v, before its wait of %v", took, wait)
	}
	if ctx.Err() != context.DeadlineExceeded {
		t.Errorf("Err %v after the end", ctx.Err())
	}
	// A wait that starts after the end gets a new, live context.
	if next := to.Context(time.Now()); next == ctx || next.Err() != nil {
		t.Error("a new wait got the ended context")
	}
}

func TestConcurrentWaits(t *testing.T) {
	to := New(time.Minute, 0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				now := time.Now()
				d, _ := to.Context(now).Deadline()
				if d.Before(now.Add(time.Minute)) {
					t.Errorf("deadline %v before the wait's end %v", d, now.Add(time.Minute))
					return
				}
			}
		}()
	}
	wg.Wait()
}
