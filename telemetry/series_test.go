package telemetry

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestSeriesMakesOncePerKey checks that concurrent lookups of the same keys share one value
// per key, made once, and that a lookup of a known key makes nothing.
func TestSeriesMakesOncePerKey(t *testing.T) {
	var s Series[[2]string, *int]
	var made atomic.Int32
	got := make([][]*int, 8)
	var wg sync.WaitGroup
	for g := range got {
		wg.Go(func() {
			for i := range 50 {
				k := [2]string{"route", string(rune('a' + i%10))}
				got[g] = append(got[g], s.Get(k, func() *int { made.Add(1); v := i % 10; return &v }))
			}
		})
	}
	wg.Wait()
	if n := made.Load(); n != 10 {
		t.Fatalf("made %d values for 10 keys", n)
	}
	for g := range got {
		for i, v := range got[g] {
			if v != got[0][i] || *v != i%10 {
				t.Fatalf("goroutine %d, lookup %d: %p (%d), want %p", g, i, v, *v, got[0][i])
			}
		}
	}
	k := [2]string{"route", "a"}
	if n := testing.AllocsPerRun(100, func() { s.Get(k, func() *int { return nil }) }); n != 0 {
		t.Fatalf("a lookup of a known key made %v allocations", n)
	}
}
