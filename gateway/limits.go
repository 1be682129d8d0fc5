package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/telemetry"
	"github.com/nats-io/nats.go/jetstream"
)

// Rate limits and quotas are shared by every node through a key-value bucket on the bus. A
// round trip to the bucket for every request would cost more than the rest of the request,
// so a node takes tokens from the shared state in leases and spends them locally without a
// lock: a bucket of 10 requests per minute leases one token at a time (so two nodes together
// admit exactly 10), a bucket of a million per second leases thousands. A node can admit at
// most one lease beyond the shared limit, and tokens a node leased but did not spend are
// given back when it stops.

// LimitsBucket is the key-value bucket of rate limits and quotas.
const LimitsBucket = "CW_LIMITS"

// limitStore is where the shared state lives; nil keeps it in the node.
type limitStore = jetstream.KeyValue

// counter is one bucket or quota of one caller on this node.
type counter struct {
	key   string
	avail atomic.Int64 // leased tokens not yet spent

	// state mirrors the shared value as this node last saw it, for the headers. It is
	// written under mu and read on the lock-free path, so it is atomic too.
	state atomic.Int64

	mu    sync.Mutex // held while leasing
	rev   uint64
	until time.Time // when the window of a quota ends, or the bucket is full again
}

// take spends one leased token without a lock; false means a lease is needed.
func (c *counter) take() bool {
	for {
		v := c.avail.Load()
		if v <= 0 {
			return false
		}
		if c.avail.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// decision is what a limit says of a request.
type decision struct {
	ok         bool
	limit      int64
	remaining  int64
	reset      time.Duration // until the bucket is full again, or the quota's window ends
	retryAfter time.Duration
}

// limiter keeps the counters of rate limits and quotas.
type limiter struct {
	kv  limitStore
	now func() time.Time

	counters sync.Map // key → *counter
	// keys caches the bucket keys of Consumers, a set the definitions bound: hashing the
	// caller's name for every request costs more than the rest of the limit.
	keys telemetry.Series[keyOf, string]
}

// keyOf names a Consumer's bucket before it is hashed.
type keyOf struct{ kind, scope, consumer string }

// key is the bucket key of a caller: cached for a Consumer, computed for anyone else (a
// token's subject, a client address), whose number has no bound.
func (l *limiter) key(kind, scope string, c *caller) string {
	if c.consumer == nil {
		return bucketKey(kind, scope, c.name)
	}
	return l.keys.Get(keyOf{kind, scope, c.consumer.name}, func() string { return bucketKey(kind, scope, c.name) })
}

// bucketKey names a caller's bucket in the store; the caller's name is hashed so that any
// value (a client address, a token's subject) makes a valid key.
func bucketKey(kind, scope, caller string) string {
	sum := sha256.Sum256([]byte(caller))
	return kind + "." + scope + "." + hex.EncodeToString(sum[:12])
}

func (l *limiter) counter(key string) *counter {
	if c, ok := l.counters.Load(key); ok {
		return c.(*counter)
	}
	c, _ := l.counters.LoadOrStore(key, &counter{key: key})
	return c.(*counter)
}

// rate checks a token bucket (as the generic cell rate algorithm: the shared value is the
// theoretical arrival time, in Unix nanoseconds, of the next request).
func (l *limiter) rate(ctx context.Context, key string, r *RateLimit) (decision, error) {
	c := l.counter(key)
	burst := int64(r.burst())
	d := decision{limit: int64(r.Requests)}
	if c.take() {
		d.ok, d.remaining = true, c.avail.Load()
		d.reset = time.Duration(max(c.state.Load()-l.now().UnixNano(), 0))
		return d, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.take() {
		d.ok, d.remaining = true, c.avail.Load()
		return d, nil
	}
	interval := int64(r.Per) / int64(r.Requests)
	lease := max(burst/16, 1)
	var granted int64
	err := l.update(ctx, c, func(tat int64, now int64) (int64, bool) {
		// f runs again when another node got there first: nothing of a lost try counts.
		granted = 0
		tat = max(tat, now)
		room := (now + burst*interval - tat) / interval
		if room < 1 {
			d.retryAfter = time.Duration(tat + interval - now - burst*interval)
			d.reset = time.Duration(tat - now)
			return 0, false
		}
		granted = min(room, lease)
		tat += granted * interval
		d.remaining = (now + burst*interval - tat) / interval
		d.reset = time.Duration(tat - now)
		return tat, true
	})
	if err != nil || granted == 0 {
		return d, err
	}
	c.avail.Add(granted - 1)
	d.ok = true
	d.remaining += granted - 1
	return d, nil
}

// quota checks a calendar quota (the shared value counts the requests of the window).
func (l *limiter) quota(ctx context.Context, key string, q *Quota) (decision, error) {
	now := l.now().UTC()
	start, end := window(now, q.Per)
	key += "." + start.Format("20060102")
	c := l.counter(key)
	d := decision{limit: q.Requests, reset: end.Sub(now)}
	if c.take() {
		d.ok, d.remaining = true, max(q.Requests-c.state.Load(), 0)+c.avail.Load()
		return d, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.take() {
		d.ok, d.remaining = true, max(q.Requests-c.state.Load(), 0)+c.avail.Load()
		return d, nil
	}
	lease := max(q.Requests/1000, 1)
	var granted int64
	err := l.update(ctx, c, func(used int64, _ int64) (int64, bool) {
		granted = 0
		if used >= q.Requests {
			d.retryAfter = end.Sub(now)
			return 0, false
		}
		granted = min(q.Requests-used, lease)
		d.remaining = q.Requests - used - granted
		return used + granted, true
	})
	if err != nil || granted == 0 {
		return d, err
	}
	c.avail.Add(granted - 1)
	d.ok = true
	d.remaining += granted - 1
	return d, nil
}

// usage is how much of a quota a caller has used in the current window.
func (l *limiter) usage(ctx context.Context, key string, q *Quota) (used int64, resets time.Time, err error) {
	now := l.now().UTC()
	start, end := window(now, q.Per)
	key += "." + start.Format("20060102")
	if l.kv == nil {
		c := l.counter(key)
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.state.Load() - c.avail.Load(), end, nil
	}
	e, err := l.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, end, nil
	case err != nil:
		return 0, end, err
	}
	v, _ := decode(e.Value())
	// Tokens this node leased but has not spent are not used yet.
	if c, ok := l.counters.Load(key); ok {
		v -= c.(*counter).avail.Load()
	}
	return max(v, 0), end, nil
}

// window is the calendar period holding t.
func window(t time.Time, per string) (start, end time.Time) {
	if per == "month" {
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 0, 1)
}

// update applies f to the shared value of c with compare-and-set, trying again when another
// node got there first. Without a store the value lives in c alone.
func (l *limiter) update(ctx context.Context, c *counter, f func(v, now int64) (int64, bool)) error {
	for attempt := 0; attempt < 50; attempt++ {
		now := l.now().UnixNano()
		if l.kv == nil {
			if next, ok := f(c.state.Load(), now); ok {
				c.state.Store(next)
			}
			return nil
		}
		var (
			cur int64
			rev uint64
		)
		e, err := l.kv.Get(ctx, c.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			cur, _ = decode(e.Value())
			rev = e.Revision()
		}
		next, ok := f(cur, now)
		c.state.Store(cur)
		c.rev = rev
		if !ok {
			return nil
		}
		if rev == 0 {
			_, err = l.kv.Create(ctx, c.key, encode(next))
		} else {
			_, err = l.kv.Update(ctx, c.key, encode(next), rev)
		}
		if err == nil {
			c.state.Store(next)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return err
		}
	}
	return fmt.Errorf("limit %s: too much contention", c.key)
}

// isWrongSequence reports a compare-and-set lost to another writer.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// release gives back the leased tokens this node did not spend, so a quota counts what was
// used. Rate buckets are not given back: they refill on their own.
func (l *limiter) release(ctx context.Context) {
	if l.kv == nil {
		return
	}
	l.counters.Range(func(k, v any) bool {
		c := v.(*counter)
		if len(c.key) < 2 || c.key[:2] != "q." {
			return true
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		n := c.avail.Swap(0)
		if n > 0 {
			_ = l.update(ctx, c, func(used, _ int64) (int64, bool) { return max(used-n, 0), true })
		}
		return true
	})
}

func encode(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decode(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}
