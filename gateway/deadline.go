package gateway

import (
	"context"
	"sync"
	"time"
)

// withDeadline is context.WithDeadline without a timer until something waits: every
// gateway request gets its route's deadline, and on the usual path nothing waits on Done
// (the backend client reads the deadline and the request's time is checked with Err), so
// the timer and channel of a standard deadline context would be made for nothing. A parent
// that can be cancelled (the standard server's request context) gets the standard context.
func withDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	if parent.Done() != nil {
		return context.WithDeadline(parent, d)
	}
	c := newDeadline(parent, d)
	return c, c.cancel
}

// newDeadline is withDeadline for a parent that is never cancelled, without the closure:
// the caller calls cancel.
func newDeadline(parent context.Context, d time.Time) *deadlineCtx {
	return &deadlineCtx{parent: parent, deadline: d}
}

// cancel ends the context, unless it has ended already.
func (c *deadlineCtx) cancel() { c.end(context.Canceled) }

// deadlineCtx is a context that ends at its deadline or when cancelled.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu    sync.Mutex
	err   error
	done  chan struct{}
	timer *time.Timer
	// after are the functions to run when the context ends (AfterFunc).
	after map[*func()]struct{}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Value(key any) any { return c.parent.Value(key) }

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// time.Until reads the monotonic clock only (the deadline carries a monotonic reading),
	// half of what time.Now costs: Err is asked on every request.
	if c.err == nil && time.Until(c.deadline) <= 0 {
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err
}

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startLocked()
	return c.done
}

// startLocked makes the channel and starts the timer, once something waits.
func (c *deadlineCtx) startLocked() {
	if c.done == nil {
		c.done = make(chan struct{})
		switch {
		case c.err != nil:
			close(c.done)
		case !time.Now().Before(c.deadline):
			c.endLocked(context.DeadlineExceeded)
		default:
			c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.end(context.DeadlineExceeded) })
		}
	}
}

// AfterFunc runs f in a goroutine of its own once the context ends, as context.AfterFunc
// does. A context derived from this one uses it to follow it: without it, the context
// package would start a goroutine for every derived context (every jq evaluation's
// time limit, for one) to wait on Done.
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startLocked()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	key := &f
	if c.after == nil {
		c.after = map[*func()]struct{}{}
	}
	c.after[key] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.after[key]; ok {
			delete(c.after, key)
			return true
		}
		return false
	}
}

// end ends the context with err, unless it has ended already.
func (c *deadlineCtx) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(err)
}

func (c *deadlineCtx) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.done != nil {
		close(c.done)
	}
	for f := range c.after {
		go (*f)()
	}
	c.after = nil
}
