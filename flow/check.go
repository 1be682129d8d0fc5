package flow

import (
	"context"
	"errors"
	"fmt"

	"github.com/causeway/causeway/connector"
)

// ErrNoSystem is a check of a system that is not defined.
var ErrNoSystem = errors.New("no such system")

// CheckSystem tries every connection a system has and reports what works.
func (e *Engine) CheckSystem(ctx context.Context, name string) (*connector.SystemCheck, error) {
	sys, ok := e.systems[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSystem, name)
	}
	return e.conns.Check(ctx, name, sys), nil
}
