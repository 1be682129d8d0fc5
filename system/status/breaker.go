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
	recent      []outcome // within policy.Window, for the rate rule
	tripped     string    // why the breaker should open, until recorded
	lastErr     string    // the last transient failure
	succeeded   bool      // a call succeeded while half-open
}

type outcome struct {
	at     time.Time
	failed bool
}

func newBreaker(p system.Breaker) *breaker { return &breaker{policy: p} }

// Observe takes in a call's outcome for a system's breaker. It never blocks on the bus: a
// change it causes is recorded by the registry's loop, which it nudges.
func (r *Registry) Observe(name string, err error) {
	r.mu.RLock()
	b := r.breakers[name]
	cur := r.current[name]
	r.mu.RUnlock()
	if b == nil {
		return
	}
	if b.observe(connector.Transient(err), err, cur, time.Now()) {
		r.nudge()
	}
}

// observe records an outcome and reports whether the status may have to change.
func (b *breaker) observe(failed bool, err error, cur Status, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	halfOpen := cur.Cause == CauseBreaker && cur.Status == Degraded
	b.recent = append(b.prune(now), outcome{at: now, failed: failed})
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
	case b.policy.FailureRate > 0 && len(b.recent) >= b.policy.MinCalls:
		n := 0
		for _, o := range b.recent {
			if o.failed {
				n++
			}
		}
		if rate := float64(n) / float64(len(b.recent)); n > 0 && rate >= b.policy.FailureRate {
			b.tripped = fmt.Sprintf("%d of %d calls in %s failed transiently, the last: %s", n, len(b.recent), b.policy.Window, b.lastErr)
		}
	}
	return b.tripped != ""
}

// prune drops outcomes older than the window; the caller holds mu.
func (b *breaker) prune(now time.Time) []outcome {
	cut := 0
	for cut < len(b.recent) && now.Sub(b.recent[cut].at) > b.policy.Window {
		cut++
	}
	if cut > 0 {
		b.recent = append(b.recent[:0], b.recent[cut:]...)
	}
	if len(b.recent) > 10000 {
		b.recent = b.recent[len(b.recent)-10000:]
	}
	return b.recent
}

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
		b.tripped, b.succeeded, b.consecutive, b.recent = "", false, 0, b.recent[:0]
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
