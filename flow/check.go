package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	emailconn "github.com/causeway/causeway/connector/email"
	fileconn "github.com/causeway/causeway/connector/file"
	"github.com/causeway/causeway/system"
)

// ErrNoSystem is a check of a system that is not defined.
var ErrNoSystem = errors.New("no such system")

// SystemCheck is the outcome of trying a system's connections.
type SystemCheck struct {
	System string           `json:"system"`
	OK     bool             `json:"ok"`
	Checks []ConnectorCheck `json:"checks"`
}

// ConnectorCheck is the outcome of trying one connector of a system.
type ConnectorCheck struct {
	Connector  string `json:"connector"`
	OK         bool   `json:"ok"`
	Detail     string `json:"detail,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"durationMs"`
}

// CheckSystem tries every connection a system has (HTTP, SQL) and reports what works.
func (e *Engine) CheckSystem(ctx context.Context, name string) (*SystemCheck, error) {
	sys, ok := e.systems[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSystem, name)
	}
	out := &SystemCheck{System: name, OK: true, Checks: []ConnectorCheck{}}
	try := func(connector string, check func(context.Context, string, *system.Spec) (string, error)) {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		start := time.Now()
		detail, err := check(cctx, name, sys)
		c := ConnectorCheck{Connector: connector, OK: err == nil, Detail: detail, DurationMS: time.Since(start).Milliseconds()}
		if err != nil {
			c.Error = err.Error()
			out.OK = false
		}
		out.Checks = append(out.Checks, c)
	}
	if sys.HTTP != nil {
		try("http", e.calls.Check)
	}
	if sys.SQL != nil {
		try("sql", e.sql.Check)
	}
	if sys.AMQP != nil {
		try("amqp", e.amqp.Check)
	}
	if sys.NATS != nil {
		try("nats", e.nats.Check)
	}
	if sys.MQTT != nil {
		try("mqtt", e.mqtt.Check)
	}
	if sys.Files != nil {
		try("files", fileconn.Check)
	}
	if sys.SMTP != nil {
		try("smtp", emailconn.Check)
	}
	if len(out.Checks) == 0 {
		out.OK = false
		out.Checks = append(out.Checks, ConnectorCheck{Connector: "none", Error: "the system declares no connection (http, sql, amqp, nats, mqtt, files or smtp) to check"})
	}
	return out, nil
}
