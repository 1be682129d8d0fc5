package platform

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestSystemStatusAPI switches a system into maintenance through the API, sees deliveries
// for it parked and counted, switches it back and sees them delivered; bad switches are
// refused and the changes are in the system's history with who made them.
func TestSystemStatusAPI(t *testing.T) {
	erp, erpURL := startBrokenERP(t)
	erp.fixed.Store(true)
	p := runPlatform(t, func(o *Options) {
		if err := os.WriteFile(filepath.Join(o.ConfigDir, "flows.yaml"), []byte(errorsFlows(erpURL)), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	admin := "http://" + p.AdminAddr()
	list := do(t, "GET", admin+"/v1/systems", "", "")
	if list.status != 200 || !strings.Contains(list.raw, `"name":"erp","system":"erp","status":"online"`) {
		t.Fatalf("list: %d %s", list.status, list.raw)
	}
	for _, bad := range []struct{ path, body, problem string }{
		{"/v1/systems/erp/status", `{"status":"asleep","reason":"x"}`, "bad-body"},
		{"/v1/systems/erp/status", `{"status":"offline"}`, "reason-required"},
		{"/v1/systems/erp/status", `{"status":"offline","reason":"x","until":"yesterday"}`, "bad-body"},
		{"/v1/systems/erp/status", `{"status":"offline","reason":"x","color":"red"}`, "bad-body"},
		{"/v1/systems/nope/status", `{"status":"offline","reason":"x"}`, "system-not-found"},
	} {
		a := do(t, "PUT", admin+bad.path, "application/json", bad.body)
		if a.body["type"] != "urn:causeway:problem:"+bad.problem {
			t.Errorf("%s %s: %d %s", bad.path, bad.body, a.status, a.raw)
		}
	}
	a := do(t, "PUT", admin+"/v1/systems/erp/status", "application/json", `{"status":"maintenance","until":"1h","reason":"ERP upgrade"}`, HeaderActor, "ops-anna")
	if a.status != 200 || a.body["status"] != "maintenance" || a.body["cause"] != "manual" || !strings.HasPrefix(a.body["actor"].(string), "ops-anna (") {
		t.Fatalf("switch: %d %s", a.status, a.raw)
	}
	until, _ := time.Parse(time.RFC3339Nano, a.body["until"].(string))
	if d := time.Until(until); d < 59*time.Minute || d > time.Hour {
		t.Errorf("until %s", until)
	}
	ingest := "http://" + p.HTTPAddr() + "/v1/messages"
	for _, id := range []string{"P-1", "P-2", "P-3"} {
		if a := do(t, "POST", ingest, "application/cloudevents+json", order(id)); a.status != 202 {
			t.Fatalf("post: %d %s", a.status, a.raw)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := do(t, "GET", admin+"/v1/systems/erp", "", "")
		if a.body["parked"] == float64(3) {
			if oldest, err := time.Parse(time.RFC3339Nano, a.body["oldestParked"].(string)); err != nil || time.Since(oldest) > time.Minute {
				t.Errorf("oldest parked %v", a.body["oldestParked"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("parked: %s", a.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := erp.calls.Load(); n != 0 {
		t.Errorf("%d calls to a system in maintenance", n)
	}
	if a := do(t, "PUT", admin+"/v1/systems/erp/status", "application/json", `{"status":"auto"}`, HeaderActor, "ops-anna"); a.status != 200 || a.body["status"] != "online" {
		t.Fatalf("auto: %d %s", a.status, a.raw)
	}
	for len(erp.shippedIDs()) < 3 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("shipped %v after the switch ended", erp.shippedIDs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// (The order of release is the flow tests'; this flow runs three at once.)
	got := erp.shippedIDs()
	sort.Strings(got)
	if strings.Join(got, ",") != "P-1,P-2,P-3" {
		t.Errorf("released %v", got)
	}
	show := do(t, "GET", admin+"/v1/systems/erp", "", "")
	hist, _ := show.body["history"].([]any)
	if show.body["parked"] != float64(0) || len(hist) < 3 {
		t.Fatalf("show: %s", show.raw)
	}
	// Newest first: the switch's end, then the change into maintenance and its switch.
	var actions []string
	for _, h := range hist {
		r := h.(map[string]any)
		actions = append(actions, r["action"].(string)+":"+strings.Fields(r["actor"].(string))[0])
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "system.status:ops-anna") || !strings.Contains(got, "system.switch:ops-anna") {
		t.Errorf("history %s", got)
	}
}
