package status_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/bus"
	httpconn "github.com/causeway/causeway/connector/http"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/system/status"
)

func runBus(t *testing.T) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Sync: bus.Sync{Interval: time.Second}, NodeName: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// changes collects the changes a registry records.
type changes struct {
	mu  sync.Mutex
	all []status.Change
}

func (c *changes) add(ch status.Change) { c.mu.Lock(); c.all = append(c.all, ch); c.mu.Unlock() }

func startRegistry(t *testing.T, b *bus.Bus, systems map[string]*system.Spec, probe func(context.Context, string, *system.Spec) error, node string) (*status.Registry, *changes, *prometheus.Registry) {
	t.Helper()
	c := &changes{}
	reg := prometheus.NewRegistry()
	if probe == nil {
		probe = func(context.Context, string, *system.Spec) error { return nil }
	}
	r, err := status.Open(context.Background(), status.Options{Bus: b, Systems: systems, Probe: probe, OnChange: c.add,
		Node: node, Registerer: reg, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r, c, reg
}

func waitStatus(t *testing.T, r *status.Registry, name, want string, limit time.Duration) status.Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s, _ := r.Get(name)
		if s.Status == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s (%s: %s), want %s", name, s.Status, s.Cause, s.Reason, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var transient = &httpconn.Error{System: "erp", Operation: "ship", Status: 503, Transient: true, Err: errors.New("HTTP 503")}

func TestSwitchHoldsUntilItEnds(t *testing.T) {
	b := runBus(t)
	systems := map[string]*system.Spec{"erp": {}}
	r, ch, reg := startRegistry(t, b, systems, nil, "n1")
	// A second node on the same bus sees what the first records.
	r2, ch2, _ := startRegistry(t, b, systems, nil, "n2")
	if s, _ := r.Get("erp"); s.Status != status.Online {
		t.Fatalf("starts %s", s.Status)
	}
	// Long enough for the checks during the switch to run before it ends, on a busy
	// machine too (CI runs several test binaries at once on two cores: 2 s was not).
	until := time.Now().Add(5 * time.Second).UTC()
	if err := r.SetSwitch(context.Background(), "erp", status.Switch{Status: status.Maintenance, Reason: "ERP upgrade", Actor: "ops-anna", Until: until}); err != nil {
		t.Fatal(err)
	}
	s := waitStatus(t, r, "erp", status.Maintenance, time.Second)
	if s.Cause != status.CauseManual || s.Reason != "ERP upgrade" || s.Actor != "ops-anna" || !s.Until.Equal(until) || s.Available() {
		t.Errorf("switched: %+v", s)
	}
	// The gauge is set before Get shows the status.
	if v := testutil.Series(t, reg, "causeway_system_status", "system", "erp", "status", status.Maintenance).GetGauge().GetValue(); v != 1 {
		t.Errorf("gauge %v", v)
	}
	waitStatus(t, r2, "erp", status.Maintenance, 4*time.Second)
	s = waitStatus(t, r, "erp", status.Online, 8*time.Second)
	if s.Reason != "manual ended" {
		t.Errorf("after the switch: %+v", s)
	}
	waitStatus(t, r2, "erp", status.Online, 2*time.Second)
	if _, ok := r2.Switch("erp"); ok {
		t.Error("the ended switch is still there")
	}
	// Each change is recorded once, by one node or the other. A node records a change
	// after it shows, so the record of the switch's end may come a moment later.
	var all []status.Change
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ch.mu.Lock()
		ch2.mu.Lock()
		all = append(append([]status.Change(nil), ch.all...), ch2.all...)
		ch2.mu.Unlock()
		ch.mu.Unlock()
		if len(all) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(all) != 2 || all[0].To.Status == all[1].To.Status {
		t.Errorf("changes %+v", all)
	}
	if err := r.SetSwitch(context.Background(), "nope", status.Switch{Status: status.Offline}); !errors.Is(err, status.ErrNoSystem) {
		t.Errorf("unknown system: %v", err)
	}
}

func TestMaintenanceWindowOpensAndCloses(t *testing.T) {
	b := runBus(t)
	now := time.Now().UTC()
	spec := &system.Spec{Health: &system.Health{Maintenance: []*system.Window{{From: now.Add(300 * time.Millisecond), Until: now.Add(900 * time.Millisecond), Reason: "patching"}}}}
	r, _, _ := startRegistry(t, b, map[string]*system.Spec{"erp": spec}, nil, "n1")
	s := waitStatus(t, r, "erp", status.Maintenance, 2*time.Second)
	if s.Cause != status.CauseWindow || s.Reason != "patching" {
		t.Errorf("in the window: %+v", s)
	}
	if time.Now().Before(now.Add(300 * time.Millisecond)) {
		t.Error("maintenance before the window opened")
	}
	s = waitStatus(t, r, "erp", status.Online, 2*time.Second)
	if s.Reason != "window ended" {
		t.Errorf("after the window: %+v", s)
	}
}

func TestBreakerOpensHalfOpensAndCloses(t *testing.T) {
	b := runBus(t)
	spec := &system.Spec{Health: &system.Health{Breaker: &system.Breaker{ConsecutiveFailures: 3, OpenFor: 500 * time.Millisecond, Window: time.Minute, MinCalls: 20}}}
	r, _, _ := startRegistry(t, b, map[string]*system.Spec{"erp": spec}, nil, "n1")
	r.Observe("erp", transient)
	r.Observe("erp", transient)
	r.Observe("erp", nil) // a success resets the count
	r.Observe("erp", transient)
	r.Observe("erp", transient)
	time.Sleep(200 * time.Millisecond)
	if s, _ := r.Get("erp"); s.Status != status.Online {
		t.Fatalf("opened before 3 failures in a row: %+v", s)
	}
	// A permanent failure is an answer: it does not count.
	r.Observe("erp", &httpconn.Error{Status: 404, Err: errors.New("HTTP 404")})
	r.Observe("erp", transient)
	r.Observe("erp", transient)
	r.Observe("erp", transient)
	s := waitStatus(t, r, "erp", status.Offline, time.Second)
	if s.Cause != status.CauseBreaker || s.Until.IsZero() {
		t.Errorf("open: %+v", s)
	}
	s = waitStatus(t, r, "erp", status.Degraded, 2*time.Second)
	if s.Cause != status.CauseBreaker || !s.Available() {
		t.Errorf("half-open: %+v", s)
	}
	r.Observe("erp", transient) // the trial fails: open again
	waitStatus(t, r, "erp", status.Offline, time.Second)
	waitStatus(t, r, "erp", status.Degraded, 2*time.Second)
	r.Observe("erp", nil) // the trial succeeds: closed
	s = waitStatus(t, r, "erp", status.Online, time.Second)
	if s.Reason != "recovered" {
		t.Errorf("closed: %+v", s)
	}
}

func TestBreakerFailureRate(t *testing.T) {
	b := runBus(t)
	spec := &system.Spec{Health: &system.Health{Breaker: &system.Breaker{FailureRate: 0.5, MinCalls: 10, Window: time.Minute, OpenFor: time.Minute}}}
	r, _, _ := startRegistry(t, b, map[string]*system.Spec{"erp": spec}, nil, "n1")
	for i := range 10 {
		if i%2 == 0 {
			r.Observe("erp", transient)
		} else {
			r.Observe("erp", nil)
		}
	}
	s := waitStatus(t, r, "erp", status.Offline, time.Second)
	if s.Cause != status.CauseBreaker {
		t.Errorf("%+v", s)
	}
}

func TestProbeTakesASystemOfflineAndBack(t *testing.T) {
	b := runBus(t)
	var down atomic.Bool
	var probes atomic.Int64
	probe := func(context.Context, string, *system.Spec) error {
		probes.Add(1)
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}
	spec := &system.Spec{Health: &system.Health{Probe: &system.Probe{Interval: time.Second, Timeout: time.Second, FailureThreshold: 2, SuccessThreshold: 2}}}
	// The probe's interval is at least a second; the test waits through a few.
	r, _, _ := startRegistry(t, b, map[string]*system.Spec{"erp": spec}, probe, "n1")
	down.Store(true)
	s := waitStatus(t, r, "erp", status.Degraded, 3*time.Second)
	if s.Cause != status.CauseProbe || s.Reason != "health probe failed: connection refused" {
		t.Errorf("one failure: %+v", s)
	}
	s = waitStatus(t, r, "erp", status.Offline, 3*time.Second)
	if s.Cause != status.CauseProbe {
		t.Errorf("two failures: %+v", s)
	}
	down.Store(false)
	n := probes.Load()
	waitStatus(t, r, "erp", status.Online, 4*time.Second)
	if probes.Load()-n < 2 {
		t.Errorf("back online after %d successful probes, want 2", probes.Load()-n)
	}
}
