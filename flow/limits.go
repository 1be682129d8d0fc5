package flow

import (
	"context"

	"golang.org/x/time/rate"

	"github.com/causeway/causeway/system"
)

// limits holds each system's delivery.concurrency and delivery.rateLimit on this node: a
// call waits for a slot and a token before it is made, so that a slow or small system is
// not sent more than it takes.
type limits struct {
	slots map[string]chan struct{}
	rates map[string]*rate.Limiter
}

func newLimits(systems map[string]*system.Spec) *limits {
	l := &limits{slots: map[string]chan struct{}{}, rates: map[string]*rate.Limiter{}}
	for name, s := range systems {
		if s.Delivery == nil {
			continue
		}
		if n := s.Delivery.Concurrency; n > 0 {
			l.slots[name] = make(chan struct{}, n)
		}
		if r := s.Delivery.RateLimit; r != nil {
			l.rates[name] = rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))
		}
	}
	return l
}

// acquire waits for a system's slot and token; release gives the slot back.
func (l *limits) acquire(ctx context.Context, name string) (release func(), err error) {
	release = func() {}
	if slots, ok := l.slots[name]; ok {
		select {
		case slots <- struct{}{}:
			release = func() { <-slots }
		case <-ctx.Done():
			return release, &infraError{ctx.Err()}
		}
	}
	if lim, ok := l.rates[name]; ok {
		if err := lim.Wait(ctx); err != nil {
			release()
			return func() {}, &infraError{err}
		}
	}
	return release, nil
}
