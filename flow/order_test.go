package flow_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/flow"
)

// TestKeyedRunsKeepOrderPerKey sends interleaved messages for 50 keys to a keyed flow whose
// target answers after a random delay, and checks that each key's calls arrive in publish
// order, that keys ran in parallel, and that a poison message for one key stops neither
// that key's later messages nor the other keys.
func TestKeyedRunsKeepOrderPerKey(t *testing.T) {
	const keys, perKey = 50, 8
	var mu sync.Mutex
	arrived := map[string][]int{}
	var inFlight, maxInFlight atomic.Int32
	erp := startERP(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		// /orders/<key>-<seq>/ship
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		key, seqText, _ := strings.Cut(parts[1], "-")
		parts = []string{"orders", key, seqText}
		seq, _ := strconv.Atoi(parts[2])
		mu.Lock()
		arrived[parts[1]] = append(arrived[parts[1]], seq)
		mu.Unlock()
		time.Sleep(time.Duration(1+rand.IntN(8)) * time.Millisecond)
		if parts[1] == "k7" && seq == 2 {
			http.Error(w, "poison", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	f := startEngine(t, erp.URL, `apiVersion: causeway/v1
kind: Flow
metadata: {name: ordered}
spec:
  trigger:
    message: {types: [order.paid]}
  key: .data.orderId | split("-")[0]
  concurrency: 16
  steps:
    - id: record
      call: erp.ship
      with: {orderId: "${{ .data.orderId }}"}
`)
	start := time.Now()
	var ids []string
	for seq := range perKey {
		for k := range keys {
			ids = append(ids, f.send(t, "order.paid", fmt.Sprintf(`{"orderId":"k%d-%d","total":1}`, k, seq)))
		}
	}
	failed := 0
	for _, id := range ids {
		run := f.waitRun(t, "ordered", id, flow.StatusSucceeded, flow.StatusFailed)
		if run.Status == flow.StatusFailed {
			failed++
		}
	}
	elapsed := time.Since(start)
	if failed != 1 {
		t.Errorf("%d runs failed, want exactly the poison one", failed)
	}
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		got := arrived[fmt.Sprintf("k%d", k)]
		if len(got) != perKey {
			t.Errorf("key k%d: %d calls, want %d", k, len(got), perKey)
			continue
		}
		for i, seq := range got {
			if seq != i {
				t.Errorf("key k%d: calls arrived in order %v, want 0..%d", k, got, perKey-1)
				break
			}
		}
	}
	if maxInFlight.Load() < 4 {
		t.Errorf("at most %d calls were in flight at once: keys did not run in parallel", maxInFlight.Load())
	}
	t.Logf("%d runs for %d keys in %s, up to %d calls at once", len(ids), keys, elapsed, maxInFlight.Load())
}
