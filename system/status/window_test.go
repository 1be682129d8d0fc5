package status

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/system"
)

// TestWindowMatchesRecount checks the ring against the plain reading of the rule: the
// outcomes within the span, at most the latest maxRecent of them, and their failures.
func TestWindowMatchesRecount(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w window
	var all []outcome
	start := time.Unix(1_700_000_000, 0)
	now := start
	span := 50 * time.Millisecond
	for i := range 60000 {
		// Bursts and pauses, so that the window both fills up and empties.
		if i%20000 < 18000 {
			now = now.Add(time.Duration(rng.IntN(4)) * time.Microsecond)
		} else {
			now = now.Add(time.Duration(rng.IntN(40)) * time.Millisecond)
		}
		o := outcome{at: now, failed: rng.IntN(3) == 0}
		w.prune(now, span)
		w.push(o)
		all = append(all, o)
		if i%101 != 0 && i%20000 < 17990 {
			continue // recounting every time would take minutes; bursts' ends are always checked
		}

		var want []outcome
		for _, a := range all {
			if now.Sub(a.at) <= span {
				want = append(want, a)
			}
		}
		if len(want) > maxRecent {
			want = want[len(want)-maxRecent:]
		}
		failed := 0
		for _, a := range want {
			if a.failed {
				failed++
			}
		}
		if w.n != len(want) || w.failed != failed {
			t.Fatalf("after %d outcomes: window holds %d with %d failed, want %d with %d", i+1, w.n, w.failed, len(want), failed)
		}
		if w.n > 0 && w.ring[w.head] != want[0] {
			t.Fatalf("after %d outcomes: oldest %+v, want %+v", i+1, w.ring[w.head], want[0])
		}
		if len(all) > 2*maxRecent {
			all = all[len(all)-maxRecent-1:]
		}
	}
	if len(w.ring) != maxRecent {
		t.Errorf("ring of %d, want it grown to %d", len(w.ring), maxRecent)
	}
	w.reset()
	if w.n != 0 || w.failed != 0 {
		t.Errorf("after reset: %+v", w)
	}
}

// TestBreakerRateOverLatest checks the rate rule over a full window: only the latest
// maxRecent calls count, so failures that scrolled out no longer open the breaker.
func TestBreakerRateOverLatest(t *testing.T) {
	b := newBreaker(system.Breaker{FailureRate: 0.5, MinCalls: 10, Window: time.Hour, OpenFor: time.Minute})
	at := time.Unix(1_700_000_000, 0)
	now := func() time.Time { return at }
	for range maxRecent / 2 {
		b.observe(true, errTest, Status{}, now)
	}
	if b.tripped == "" {
		t.Fatal("half the calls failed and the breaker did not trip")
	}
	b.state(Status{}, at) // records the trip and starts over
	for range maxRecent {
		b.observe(false, nil, Status{}, now)
	}
	for range maxRecent/2 - 1 {
		b.observe(true, errTest, Status{}, now)
	}
	if b.tripped != "" {
		t.Fatalf("tripped with fewer than half of the latest calls failed: %s", b.tripped)
	}
	b.observe(true, errTest, Status{}, now)
	if !strings.Contains(b.tripped, "5000 of 10000 calls") {
		t.Fatalf("tripped = %q, want 5000 of 10000 calls", b.tripped)
	}
}

// TestBreakerWithoutRateKeepsNothing checks that a breaker without the rate rule keeps no
// outcomes: it would only cost memory and time on every call.
func TestBreakerWithoutRateKeepsNothing(t *testing.T) {
	b := newBreaker(system.DefaultBreaker)
	read := 0
	now := func() time.Time { read++; return time.Unix(1_700_000_000, 0) }
	for range 1000 {
		b.observe(false, nil, Status{}, now)
	}
	if read != 0 {
		t.Errorf("read the clock %d times", read)
	}
	if b.recent.n != 0 || len(b.recent.ring) != 0 {
		t.Fatalf("kept %d outcomes in a ring of %d", b.recent.n, len(b.recent.ring))
	}
}

var errTest = testError("connection refused")

type testError string

func (e testError) Error() string { return string(e) }
