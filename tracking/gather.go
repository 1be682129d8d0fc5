package tracking

import (
	"context"
	"sync"
)

// gather hands the entries a consumer reads to the goroutine that writes them, a whole
// transaction at a time: the consumer appends each entry to a slice, and the writer takes
// the slice. A channel would cost a send and a receive per entry, and the writer's wake-up
// per entry while it waits for a transaction to fill; and while the writer writes one
// transaction, the next one gathers here, up to limit entries, so an index that has fallen
// behind catches up in transactions of that size.
type gather struct {
	limit int
	// ready holds a signal once entries are waiting; full once limit entries (or the
	// writer's transaction size) are. Both have room for one signal, and a stale one only
	// makes one transaction smaller.
	ready, full chan struct{}
	// fullAt is the count at which full is signalled: the transaction size the writer asks
	// for before it lingers no longer.
	fullAt int

	mu      sync.Mutex
	room    sync.Cond // signalled when the writer takes the entries, or on close
	entries []entry
	spare   []entry // the slice the writer gave back, for the next entries
	closed  bool
}

// newGather returns a gather that holds up to limit entries and signals full at fullAt;
// it closes when ctx ends, which releases a consumer waiting for room.
func newGather(ctx context.Context, limit, fullAt int) *gather {
	g := &gather{limit: limit, fullAt: min(fullAt, limit), ready: make(chan struct{}, 1), full: make(chan struct{}, 1)}
	g.room.L = &g.mu
	context.AfterFunc(ctx, g.close)
	return g
}

// put adds e, waiting while limit entries wait already. It reports false, and drops e, once
// the gather is closed: what it drops was not indexed, and is read again after a restart.
func (g *gather) put(e entry) bool {
	g.mu.Lock()
	for len(g.entries) >= g.limit && !g.closed {
		g.room.Wait()
	}
	if g.closed {
		g.mu.Unlock()
		return false
	}
	if g.entries == nil {
		g.entries, g.spare = g.spare[:0], nil
	}
	g.entries = append(g.entries, e)
	n := len(g.entries)
	g.mu.Unlock()
	if n == 1 {
		signal(g.ready)
	}
	if n == g.fullAt {
		signal(g.full)
	}
	return true
}

// take returns the waiting entries and lets the consumer go on. done, when not nil, is the
// slice of the previous take, whose entries have been written: it is reused for the next
// entries, unless it grew beyond what a transaction at the usual rate holds (the garbage
// collector would scan a large slice on every cycle).
func (g *gather) take(done []entry) []entry {
	if cap(done) > 2*g.fullAt {
		done = nil
	}
	clear(done[:cap(done)])
	g.mu.Lock()
	out := g.entries
	g.entries = nil
	if g.spare == nil {
		g.spare = done
	}
	g.room.Broadcast()
	g.mu.Unlock()
	return out
}

// len returns how many entries wait.
func (g *gather) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.entries)
}

func (g *gather) close() {
	g.mu.Lock()
	g.closed = true
	g.room.Broadcast()
	g.mu.Unlock()
}

// signal sends on a channel with room for one signal, unless one is waiting already.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
