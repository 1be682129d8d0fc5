package platform

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestScheduleSource ticks every second: each tick calls an HTTP system's operation with
// the previous tick's time, and each element of the list it returns becomes a message; an
// element the schema refuses goes to ERRORS; a tick whose call fails is not recorded, so
// the next tick asks again from the last good one.
func TestScheduleSource(t *testing.T) {
	var mu sync.Mutex
	var sinces []string
	calls := 0
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		sinces = append(sinces, r.URL.Query().Get("since"))
		w.Header().Set("Content-Type", "application/json")
		switch calls {
		case 1:
			_ = json.NewEncoder(w).Encode([]any{
				map[string]any{"order": "T-1", "lines": []any{map[string]any{"sku": "S", "qty": 1}}},
				map[string]any{"order": "T-2", "lines": []any{}}, // the schema refuses it
			})
		case 2:
			w.WriteHeader(http.StatusServiceUnavailable) // this tick fails
		default:
			_ = json.NewEncoder(w).Encode([]any{})
		}
	}))
	defer crm.Close()
	p := runPlatform(t, func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "source.yaml"), []byte(fmt.Sprintf(`apiVersion: causeway/v1
kind: System
metadata: {name: crm}
spec:
  http: {baseURL: "%s"}
  operations:
    changedOrders:
      http: {method: GET, path: /orders}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: crm-orders}
spec:
  system: crm
  schedule:
    cron: "@every 1s"
    call: changedOrders
    with: {since: "${{ .last // \"start\" }}"}
    each: true
  emit:
    type: order.created
    subject: ${{ .item.order }}
    data: {orderId: "${{ .item.order }}", items: "${{ .item.lines }}"}
`, crm.URL)), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	})
	waitErrors(t, p, 1)
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls, want 3", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if sinces[0] != "start" || sinces[1] == "start" || sinces[2] != sinces[1] {
		t.Errorf("since of the calls: %v (want start, then the first tick twice: the second tick failed)", sinces)
	}
	if n := streamMessages(t, p); n != 1 {
		t.Errorf("MESSAGES holds %d, want 1", n)
	}
	id := "schedule:crm-orders:" + sinces[1] + ":0"
	if m := waitMessage(t, p, id)["message"].(map[string]any); m["subject"] != "T-1" {
		t.Errorf("stored %v", m)
	}
	metrics := do(t, "GET", "http://"+p.AdminAddr()+"/metrics", "", "").raw
	for _, want := range []string{
		`causeway_source_events_total{result="accepted",source="crm-orders"} 1`,
		`causeway_source_events_total{result="errors",source="crm-orders"} 1`,
		`causeway_source_events_total{result="failed",source="crm-orders"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
