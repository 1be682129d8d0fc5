package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
)

// limitsBucket opens the limits bucket on a new embedded bus.
func limitsBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Sync: bus.Sync{Interval: time.Second}, NodeName: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	kv, err := b.JetStream().CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: LimitsBucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// clock is a settable time for the limiter.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

func TestRateLimitSharedByTwoLimiters(t *testing.T) {
	kv := limitsBucket(t)
	var clk clock
	clk.t.Store(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano())
	a := &limiter{kv: kv, now: clk.now}
	b := &limiter{kv: kv, now: clk.now}
	rl := &RateLimit{Requests: 10, Per: time.Minute, By: "consumer"}
	key := bucketKey("r", "api", "app")
	ctx := context.Background()
	allowed := 0
	for i := range 30 {
		l := a
		if i%3 == 0 {
			l = b
		}
		d, err := l.rate(ctx, key, rl)
		if err != nil {
			t.Fatal(err)
		}
		if d.ok {
			allowed++
		} else if d.retryAfter <= 0 || d.retryAfter > 6*time.Second {
			t.Errorf("retry after %s; a token comes every 6s", d.retryAfter)
		}
	}
	if allowed != 10 {
		t.Fatalf("two nodes admitted %d of 30 requests against a bucket of 10", allowed)
	}
	clk.advance(12 * time.Second)
	allowed = 0
	for range 5 {
		if d, _ := a.rate(ctx, key, rl); d.ok {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("12s later (a token every 6s) %d were admitted; want 2", allowed)
	}
}

func TestRateLimitLeasesUnderConcurrency(t *testing.T) {
	kv := limitsBucket(t)
	var clk clock
	clk.t.Store(time.Now().UnixNano())
	nodes := []*limiter{{kv: kv, now: clk.now}, {kv: kv, now: clk.now}}
	// A bucket of 1600 leases 100 tokens at a time: a node admits at most one lease over.
	rl := &RateLimit{Requests: 1600, Per: time.Hour, By: "consumer"}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := nodes[g%2]
			for range 400 {
				if d, err := l.rate(context.Background(), "r.api.x", rl); err == nil && d.ok {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 1600 {
		t.Errorf("8 goroutines on two nodes admitted %d of 3200 against a bucket of 1600", got)
	}
}

func TestQuotaCountsAcrossNodesAndWindows(t *testing.T) {
	kv := limitsBucket(t)
	var clk clock
	clk.t.Store(time.Date(2026, 11, 24, 23, 59, 0, 0, time.UTC).UnixNano())
	a := &limiter{kv: kv, now: clk.now}
	b := &limiter{kv: kv, now: clk.now}
	q := &Quota{Requests: 3, Per: "day"}
	key := bucketKey("q", "api", "app")
	ctx := context.Background()
	var got []bool
	for _, l := range []*limiter{a, b, a, b} {
		d, err := l.quota(ctx, key, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.ok)
		if !d.ok && (d.retryAfter != time.Minute || d.reset != time.Minute) {
			t.Errorf("refused with retry after %s, reset %s; the day ends in a minute", d.retryAfter, d.reset)
		}
	}
	if want := []bool{true, true, true, false}; !equalBools(got, want) {
		t.Fatalf("quota of 3: %v", got)
	}
	if used, _, err := b.usage(ctx, key, q); err != nil || used != 3 {
		t.Errorf("usage %d, %v; want 3", used, err)
	}
	clk.advance(2 * time.Minute)
	if d, _ := a.quota(ctx, key, q); !d.ok {
		t.Errorf("the next day's first request was refused")
	}
}

func TestQuotaGivesBackUnspentLeases(t *testing.T) {
	kv := limitsBucket(t)
	l := &limiter{kv: kv, now: time.Now}
	q := &Quota{Requests: 100000, Per: "month"}
	key := bucketKey("q", "api", "app")
	for range 5 {
		if d, err := l.quota(context.Background(), key, q); err != nil || !d.ok {
			t.Fatal(d, err)
		}
	}
	// The node leased 100 at once; what it shows as used is what it spent.
	if used, _, _ := l.usage(context.Background(), key, q); used != 5 {
		t.Errorf("usage %d while leases are held; want 5", used)
	}
	l.release(context.Background())
	other := &limiter{kv: kv, now: time.Now}
	if used, _, _ := other.usage(context.Background(), key, q); used != 5 {
		t.Errorf("usage %d after the lease was given back; want 5", used)
	}
}

func TestCheckShape(t *testing.T) {
	for _, c := range []struct {
		body      string
		depth, n  int
		wantError bool
	}{
		{`{"a":[1,2,{"b":"x,y[[[["}]}`, 3, 10, false},
		{`{"a":[1,2,{"b":"x"}]}`, 2, 10, true},
		{`[1,2,3,4,5]`, 1, 5, true},
		{`[1,2,3,4]`, 1, 5, false},
		{`"a \" [[[[ string"`, 1, 1, false},
		{`{"k": -12.5e3, "t": true, "n": null}`, 1, 7, false},
	} {
		err := checkShape([]byte(c.body), c.depth, c.n)
		if (err != nil) != c.wantError {
			t.Errorf("%s (depth %d, values %d): %v", c.body, c.depth, c.n, err)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
