package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterOrReuse registers c with reg, or, when a collector of the same description is
// registered already (two connectors sharing the causeway_connector_* families), returns
// that one, so that both report into the same series.
func RegisterOrReuse(reg prometheus.Registerer, c prometheus.Collector) prometheus.Collector {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector
		}
		panic(err) // a metric whose description clashes is a programming error
	}
	return c
}
