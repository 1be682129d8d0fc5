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
	c := &deadlineCtx{parent: parent, deadline: d}
	return c, func() { c.end(context.Canceled) }
}

// deadlineCtx is a context that ends at its deadline or when cancelled.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu    sync.Mutex
	err   error
	done  chan struct{}
	timer *time.Timer
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Value(key any) any { return c.parent.Value(key) }

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err
}

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	return c.done
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
}
