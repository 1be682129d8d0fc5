package testutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Series returns the one series of the metric family name in g whose labels include each
// name and value pair of labels ("stream", "MESSAGES", …): the test fails when none or
// several match.
func Series(t testing.TB, g prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	found := matching(t, g, name, labels)
	if len(found) != 1 {
		t.Fatalf("%d series of %s with labels %q, want one", len(found), name, labels)
	}
	return found[0]
}

// Sum adds up the counters of the metric family name in g whose labels include each name
// and value pair of labels: 0 when none match.
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	total := 0.0
	for _, m := range matching(t, g, name, labels) {
		total += m.GetCounter().GetValue()
	}
	return total
}

// matching gathers g and returns the series of family name that carry every pair of labels.
func matching(t testing.TB, g prometheus.Gatherer, name string, labels []string) []*dto.Metric {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("labels %q: want name and value pairs", labels)
	}
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found []*dto.Metric
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue series
				}
			}
			found = append(found, m)
		}
	}
	return found
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}
