// Package waitctx gives waits of one length a shared context.
//
// Ingestion waits up to its acknowledgement timeout for every request's messages: with
// context.WithTimeout that is a context, a runtime timer set and stopped, and a channel
// made for every request, about 3% of a node's CPU with single messages, for a timeout
// that almost never fires. A Timeout hands every wait that starts within one tick the same
// context, whose deadline is the end of the longest of them: one context, one timer and one
// channel per tick instead of per request. A wait ends no earlier than its length and at
// most one tick later.
package waitctx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Timeout gives the contexts of waits of length d.
type Timeout struct {
	d, tick time.Duration
	cur     atomic.Pointer[shared]
	mu      sync.Mutex
}

// New returns a Timeout for waits of d whose contexts end up to tick late: tick is the
// precision given up for sharing. A tick of 0 is a hundredth of d.
func New(d, tick time.Duration) *Timeout {
	if tick <= 0 {
		tick = d / 100
	}
	return &Timeout{d: d, tick: max(tick, time.Millisecond)}
}

// Context returns a context that ends no earlier than now + d and at most a tick after,
// without values and with no parent: for waits that nothing else cancels. now is the
// time the wait starts (the caller has read the clock already).
func (t *Timeout) Context(now time.Time) context.Context {
	want := now.Add(t.d)
	if s := t.cur.Load(); t.covers(s, want) {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.cur.Load(); t.covers(s, want) {
		return s
	}
	s := &shared{deadline: want.Add(t.tick), done: make(chan struct{})}
	// The timer runs out by the monotonic clock, as the deadline is compared by it.
	time.AfterFunc(s.deadline.Sub(now), s.expire)
	t.cur.Store(s)
	return s
}

// covers reports whether s ends no earlier than want and at most a tick after it.
func (t *Timeout) covers(s *shared, want time.Time) bool {
	return s != nil && !s.deadline.Before(want) && s.deadline.Sub(want) <= t.tick
}

// shared is the context of the waits that started within one tick.
type shared struct {
	deadline time.Time
	done     chan struct{}
	expired  atomic.Bool
}

func (s *shared) expire() {
	s.expired.Store(true)
	close(s.done)
}

// Deadline is when the context ends.
func (s *shared) Deadline() (time.Time, bool) { return s.deadline, true }

// Done is closed when the context ends.
func (s *shared) Done() <-chan struct{} { return s.done }

// Err is context.DeadlineExceeded once the context ended, nil before.
func (s *shared) Err() error {
	if s.expired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// Value is nil: the context carries no values.
func (s *shared) Value(any) any { return nil }
