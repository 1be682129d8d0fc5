package status

import (
	"fmt"
	"sync"
	"time"

	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/system"
)

// The circuit breaker.
//
// Each node counts the outcomes of its own calls; when they cross the policy's threshold,
// the node records the system offline (cause breaker) until now + openFor. That record is
// the breaker's state for every node: while it holds, no node calls; when it runs out, the
// first node to notice records the system degraded (half-open) and calls go through again
// as trials. A trial's success, on any node, closes the breaker (online); a failure opens it
// again. Only transient failures count: a system that answers "no" is up.

// breaker is one system's call outcomes on this node.
type breaker struct {
	policy system.Breaker

	mu          sync.Mutex
	consecutive int
	recent      window // within policy.Window, for the rate rule only
	tripped     string // why the breaker should open, until recorded
	lastErr     string // the last transient failure
	succeeded   bool   // a call succeeded while half-open
}

type outcome struct {
	at     time.Time
	failed bool
}

func newBreaker(p system.Breaker) *breaker { return &breaker{policy: p} }

// Observe takes in a call's outcome for a system's breaker. It never blocks on the bus: a
// change it causes is recorded by the registry's loop, which it nudges.
func (r *Registry) Observe(name string, err error) {
	// breakers is written by Open only, before any call: it is read without the lock.
	b := r.breakers[name]
	if b == nil {
		return
	}
	cur, _ := r.Get(name)
	if b.observe(connector.Transient(err), err, cur, time.Now) {
		r.nudge()
	}
}

// observe records an outcome and reports whether the status may have to change. now is
// read only by the rate rule, which keeps outcomes by their time: without it, a call costs
// no clock read.
func (b *breaker) observe(failed bool, err error, cur Status, now func() time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	halfOpen := cur.Cause == CauseBreaker && cur.Status == Degraded
	if b.policy.FailureRate > 0 {
		// Only the rate rule looks back; without it nothing is kept per call.
		now := now()
		b.recent.prune(now, b.policy.Window)
		b.recent.push(outcome{at: now, failed: failed})
	}
	if !failed {
		b.consecutive = 0
		if halfOpen {
			b.succeeded = true
			return true
		}
	} else {
		b.consecutive++
		if err != nil {
			b.lastErr = err.Error()
		}
	}
	switch {
	case halfOpen && failed:
		b.tripped = "a trial call failed: " + b.lastErr
	case failed && b.policy.ConsecutiveFailures > 0 && b.consecutive >= b.policy.ConsecutiveFailures:
		b.tripped = fmt.Sprintf("%d transient call failures in a row, the last: %s", b.consecutive, b.lastErr)
	case b.policy.FailureRate > 0 && b.recent.n >= b.policy.MinCalls:
		n, total := b.recent.failed, b.recent.n
		if rate := float64(n) / float64(total); n > 0 && rate >= b.policy.FailureRate {
			b.tripped = fmt.Sprintf("%d of %d calls in %s failed transiently, the last: %s", n, total, b.policy.Window, b.lastErr)
		}
	}
	return b.tripped != ""
}

// maxRecent bounds the outcomes the rate rule looks at: the latest ones count.
const maxRecent = 10000

// window is the rate rule's recent outcomes, oldest first, in a ring that grows up to
// maxRecent, with the count of failures kept as outcomes come and go: every call costs the
// same however many calls the window holds (a slice shifted on each call, and counted
// again, cost a thousand times more under load).
type window struct {
	ring    []outcome
	head, n int
	failed  int
}

// push adds the latest outcome, dropping the oldest when the window is full.
func (w *window) push(o outcome) {
	if w.n == len(w.ring) {
		if len(w.ring) < maxRecent {
			w.grow()
		} else {
			w.pop()
		}
	}
	w.ring[(w.head+w.n)%len(w.ring)] = o
	w.n++
	if o.failed {
		w.failed++
	}
}

// grow doubles the ring, up to maxRecent, keeping the order.
func (w *window) grow() {
	ring := make([]outcome, min(max(2*len(w.ring), 64), maxRecent))
	for i := range w.n {
		ring[i] = w.ring[(w.head+i)%len(w.ring)]
	}
	w.ring, w.head = ring, 0
}

// pop drops the oldest outcome.
func (w *window) pop() {
	if w.ring[w.head].failed {
		w.failed--
	}
	w.head = (w.head + 1) % len(w.ring)
	w.n--
}

// prune drops the outcomes older than span before now.
func (w *window) prune(now time.Time, span time.Duration) {
	for w.n > 0 && now.Sub(w.ring[w.head].at) > span {
		w.pop()
	}
}

// reset forgets every outcome.
func (w *window) reset() { w.head, w.n, w.failed = 0, 0, 0 }

// state is the status the breaker asks for, given the recorded one; false when it asks
// nothing.
func (b *breaker) state(cur Status, now time.Time) (Status, bool) {
	if b == nil {
		return Status{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tripped != "" {
		reason := b.tripped
		b.tripped, b.succeeded, b.consecutive = "", false, 0
		b.recent.reset()
		return Status{Status: Offline, Cause: CauseBreaker, Reason: "breaker open: " + reason, Until: now.Add(b.policy.OpenFor)}, true
	}
	if cur.Cause != CauseBreaker {
		b.succeeded = false
		return Status{}, false
	}
	switch cur.Status {
	case Offline:
		if now.Before(cur.Until) {
			return cur, true
		}
		return Status{Status: Degraded, Cause: CauseBreaker, Reason: "breaker half-open: trial calls after " + b.policy.OpenFor.String()}, true
	case Degraded:
		if b.succeeded {
			b.succeeded = false
			return Status{}, false // closed: the rest decides (online)
		}
		return cur, true
	}
	return Status{}, false
}
