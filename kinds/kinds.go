// Package kinds assembles the registry of every resource kind. It is the one place where the
// binary, the generators of the JSON Schema and the reference, and the tests get the full
// set, so adding a kind means adding one line here.
package kinds

import (
	"fmt"

	"github.com/causeway/causeway/alert"
	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/source"
	"github.com/causeway/causeway/system"
)

// registrations lists the packages that define kinds.
var registrations = []func(*config.Registry) error{
	catalog.Register,
	system.Register,
	flow.Register,
	flow.RegisterTests,
	source.Register,
	alert.Register,
	gateway.Register,
	gateway.RegisterConsumer,
}

// Default returns a new registry with every kind registered. A kind that fails to register
// is a programming error in that kind's spec struct, found by this package's tests, so
// Default panics on it rather than making every caller handle an error that cannot happen
// in a tested build.
func Default() *config.Registry {
	r := config.NewRegistry()
	for _, register := range registrations {
		if err := register(r); err != nil {
			panic(fmt.Sprintf("kinds: %v", err))
		}
	}
	return r
}
