package status

import (
	"context"
	"sync"
	"time"

	"github.com/causeway/causeway/system"
)

// The health probe: every node runs each declared probe on its interval and writes a
// status only when its verdict changes it.

// probeState is one system's probe results on this node.
type probeState struct {
	mu                  sync.Mutex
	failures, successes int
	offline             bool
	// lastErr is the error the verdict was reached on: kept while the verdict holds, so
	// that a probe failing with ever-changing words does not rewrite the status.
	lastErr string
}

// probeLoop runs a system's probe every interval.
func (r *Registry) probeLoop(ctx context.Context, name string, spec *system.Spec, p *probeState) {
	policy := spec.Health.Probe
	t := time.NewTicker(policy.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, policy.Timeout)
		err := r.opts.Probe(pctx, name, spec)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if p.observe(err, policy) {
			r.nudge()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// observe takes in a probe's outcome and reports whether the probe's verdict changed.
func (p *probeState) observe(err error, policy *system.Probe) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.verdict()
	if err != nil {
		p.failures++
		p.successes = 0
		if p.failures == 1 || (!p.offline && p.failures >= policy.FailureThreshold) {
			p.lastErr = err.Error()
		}
		if p.failures >= policy.FailureThreshold {
			p.offline = true
		}
	} else {
		p.successes++
		p.failures = 0
		if p.offline && p.successes >= policy.SuccessThreshold {
			p.offline = false
		}
	}
	return p.verdict() != before
}

// verdict is the probe's status; the caller holds mu.
func (p *probeState) verdict() string {
	switch {
	case p.offline:
		return Offline
	case p.failures > 0:
		return Degraded
	}
	return Online
}

// state is the status the probe asks for; false when it finds the system well.
func (p *probeState) state(name string) (Status, bool) {
	if p == nil {
		return Status{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.verdict() {
	case Offline:
		return Status{Status: Offline, Cause: CauseProbe, Reason: "health probe failing: " + p.lastErr}, true
	case Degraded:
		return Status{Status: Degraded, Cause: CauseProbe, Reason: "health probe failed: " + p.lastErr}, true
	}
	return Status{}, false
}
