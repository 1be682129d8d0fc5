package telemetry

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCallMetrics checks that two connectors' call metrics on one registry report into the
// same families, from many goroutines, and that only outcomes that happened have series.
func TestCallMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	httpCalls, sqlCalls := NewCallMetrics(reg), NewCallMetrics(reg)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				httpCalls.Observe("http", "erp", "getOrder", "ok", 3*time.Millisecond)
				sqlCalls.Observe("sql", "db", "save", "transient", time.Millisecond)
			}
		})
	}
	wg.Wait()
	httpCalls.Observe("http", "erp", "getOrder", "permanent", time.Millisecond)
	wantCalls(t, reg, map[string]float64{
		"causeway_connector_calls_total{connector=http,operation=getOrder,outcome=ok,system=erp}":        800,
		"causeway_connector_calls_total{connector=http,operation=getOrder,outcome=permanent,system=erp}": 1,
		"causeway_connector_calls_total{connector=sql,operation=save,outcome=transient,system=db}":       800,
		"causeway_connector_call_duration_seconds{connector=http,operation=getOrder,system=erp}":         801,
		"causeway_connector_call_duration_seconds{connector=sql,operation=save,system=db}":               800,
	})
}

// wantCalls checks that reg holds exactly the series want (by name and labels) with those
// counts.
func wantCalls(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, f := range got {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			if h := m.GetHistogram(); h != nil {
				series[key] = float64(h.GetSampleCount())
			} else {
				series[key] = m.GetCounter().GetValue()
			}
		}
	}
	if len(series) != len(want) {
		t.Errorf("series %v, want %v", series, want)
	}
	for k, v := range want {
		if series[k] != v {
			t.Errorf("%s = %v, want %v", k, series[k], v)
		}
	}
}

// TestCall checks that an operation's Call counts into the same series as Observe, from
// many goroutines, and that a Call never used makes no series.
func TestCall(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewCallMetrics(reg)
	call := m.Call("http", "erp", "getOrder")
	m.Call("http", "erp", "unused")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				call.Observe("ok", time.Millisecond)
				m.Observe("http", "erp", "getOrder", "ok", time.Millisecond)
			}
			call.Observe("transient", time.Millisecond)
		})
	}
	wg.Wait()
	wantCalls(t, reg, map[string]float64{
		"causeway_connector_calls_total{connector=http,operation=getOrder,outcome=ok,system=erp}":        1600,
		"causeway_connector_calls_total{connector=http,operation=getOrder,outcome=transient,system=erp}": 8,
		"causeway_connector_call_duration_seconds{connector=http,operation=getOrder,system=erp}":         1608,
	})
}
