package testutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSeriesAndSum read a counter family with two series: by their labels one at a time,
// and added up.
func TestSeriesAndSum(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calls_total", Help: "Calls."}, []string{"system", "outcome"})
	reg.MustRegister(calls)
	calls.WithLabelValues("erp", "ok").Add(3)
	calls.WithLabelValues("crm", "ok").Add(4)
	calls.WithLabelValues("crm", "failed").Add(1)
	if got := Series(t, reg, "calls_total", "system", "crm", "outcome", "failed").GetCounter().GetValue(); got != 1 {
		t.Errorf("crm failed = %v, want 1", got)
	}
	if got := Series(t, reg, "calls_total", "outcome", "ok", "system", "erp").GetCounter().GetValue(); got != 3 {
		t.Errorf("erp ok = %v, want 3", got)
	}
	if got := Sum(t, reg, "calls_total", "outcome", "ok"); got != 7 {
		t.Errorf("ok in all = %v, want 7", got)
	}
	if got := Sum(t, reg, "calls_total", "system", "billing"); got != 0 {
		t.Errorf("billing = %v, want 0", got)
	}
}
