// Package connector carries out a system's named operations through the connector its
// definition chooses (HTTP, SQL, AMQP, NATS, MQTT, Kafka, files local or over SFTP, email), and checks a system's
// connections. One Set serves a node: flows' call steps and schedule sources share its
// connection pools.
package connector

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	amqpconn "github.com/causeway/causeway/connector/amqp"
	emailconn "github.com/causeway/causeway/connector/email"
	fileconn "github.com/causeway/causeway/connector/file"
	httpconn "github.com/causeway/causeway/connector/http"
	kafkaconn "github.com/causeway/causeway/connector/kafka"
	mqttconn "github.com/causeway/causeway/connector/mqtt"
	natsconn "github.com/causeway/causeway/connector/nats"
	sftpconn "github.com/causeway/causeway/connector/sftp"
	sqlconn "github.com/causeway/causeway/connector/sql"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/telemetry"
)

// Set holds a node's connector clients and their connections.
type Set struct {
	http  *httpconn.Client
	sql   *sqlconn.Client
	amqp  *amqpconn.Client
	nats  *natsconn.Client
	mqtt  *mqttconn.Client
	kafka *kafkaconn.Client
	sftp  *sftpconn.Client

	// metrics count the calls of the connectors that do not count their own (HTTP and
	// SQL do, in the same families).
	metrics *telemetry.CallMetrics
}

// Options configure a Set.
type Options struct {
	// Node goes into default client ids.
	Node string
	// Registerer receives the connectors' metrics; nil registers none.
	Registerer prometheus.Registerer
	// HTTP replaces the HTTP client (tests give one with their own transport).
	HTTP *httpconn.Client
}

// New makes a Set; Close releases its connections.
func New(opts Options) *Set {
	s := &Set{http: opts.HTTP, sql: sqlconn.New(opts.Registerer), amqp: amqpconn.New(), nats: natsconn.New(), mqtt: mqttconn.New(opts.Node), kafka: kafkaconn.New(), sftp: sftpconn.New()}
	if s.http == nil {
		s.http = httpconn.New(opts.Registerer)
	}
	s.metrics = telemetry.NewCallMetrics(opts.Registerer)
	return s
}

// observe counts one call of a connector that does not count its own.
func (s *Set) observe(conn, system, op string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "permanent"
		if Transient(err) {
			outcome = "transient"
		}
	}
	s.metrics.Observe(conn, system, op, outcome, time.Since(start))
}

// Close releases every connection.
func (s *Set) Close() {
	s.sql.Close()
	s.amqp.Close()
	s.nats.Close()
	s.mqtt.Close()
	s.kafka.Close()
	s.sftp.Close()
}

// CallInfo is what a call carries besides its parameters.
type CallInfo struct {
	// IdempotencyKey is sent to HTTP systems as Idempotency-Key.
	IdempotencyKey string
	// Traceparent continues the caller's trace.
	Traceparent string
	// Forward are headers passed on from a gateway's client (X-Forwarded-*, and those its
	// policy lets through); the system's and the operation's own headers win over them.
	Forward http.Header
	// Raw asks an HTTP operation for its JSON answer as it came (Outcome.Raw), for a
	// caller that passes it on without looking into it; the outcome's headers are then
	// Content-Type and Retry-After only.
	Raw bool
	// NoHeaders says the caller reads no header of the answer: an HTTP operation's
	// outcome then carries Content-Type and Retry-After only, as with Raw, and copying
	// every header of every answer is spared.
	NoHeaders bool
}

// Call carries out operation op of system name with the parameters with, and returns its
// result. Errors say whether trying again may help (see each connector's Error).
func (s *Set) Call(ctx context.Context, name string, sys *system.Spec, opName string, with map[string]any, info CallInfo) (any, error) {
	out, err := s.Answer(ctx, name, sys, opName, with, info)
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// Outcome is a call's answer: the HTTP status and headers of an HTTP operation (200 and
// none for the other kinds), and the body.
type Outcome struct {
	Status  int
	Headers http.Header
	Body    any
	// Raw is an HTTP operation's JSON answer as it came, instead of Body, when the call
	// asked for it (CallInfo.Raw).
	Raw []byte
}

// Answer carries out an operation as Call does, and returns the whole answer.
func (s *Set) Answer(ctx context.Context, name string, sys *system.Spec, opName string, with map[string]any, info CallInfo) (*Outcome, error) {
	res, err := s.call(ctx, name, sys, opName, with, info)
	if err != nil {
		return nil, err
	}
	if r, ok := res.(*httpconn.Result); ok {
		return &Outcome{Status: r.Status, Headers: r.Headers, Body: r.Body, Raw: r.Raw}, nil
	}
	return &Outcome{Status: http.StatusOK, Body: res}, nil
}

// call carries out an operation; an HTTP operation's answer is its whole *httpconn.Result.
func (s *Set) call(ctx context.Context, name string, sys *system.Spec, opName string, with map[string]any, info CallInfo) (any, error) {
	op, ok := sys.Operation(opName)
	if !ok {
		return nil, fmt.Errorf("system %q has no operation %q", name, opName)
	}
	if op.SQL != nil {
		return s.sql.Do(ctx, name, sys, opName, with) // counts its own calls
	}
	if op.HTTP != nil {
		res, err := s.http.Do(ctx, name, sys, opName, HTTPCall(op.HTTP, with, info)) // counts its own calls
		if err != nil {
			return nil, err
		}
		return res, nil
	}
	start := time.Now()
	var (
		kind string
		res  any
		err  error
	)
	switch {
	case op.AMQP != nil:
		kind = "amqp"
		res, err = s.amqp.Do(ctx, name, sys, opName, with)
	case op.NATS != nil:
		kind = "nats"
		res, err = s.nats.Do(ctx, name, sys, opName, with)
	case op.MQTT != nil:
		kind = "mqtt"
		res, err = s.mqtt.Do(ctx, name, sys, opName, with)
	case op.Kafka != nil:
		kind = "kafka"
		res, err = s.kafka.Do(ctx, name, sys, opName, with)
	case op.File != nil && sys.SFTP != nil:
		kind = "sftp"
		res, err = s.sftp.Do(ctx, name, sys, opName, with)
	case op.File != nil:
		kind = "file"
		res, err = fileconn.Do(ctx, name, sys, opName, with)
	case op.Email != nil:
		kind = "email"
		res, err = emailconn.Do(ctx, name, sys, opName, with)
	default:
		return nil, fmt.Errorf("operation %s.%s has no connector", name, opName)
	}
	s.observe(kind, name, opName, start, err)
	return res, err
}

// HTTPCall shapes a call's with into an HTTP call: the path's {placeholders} by name,
// query, headers and body; any other key goes into the query string.
func HTTPCall(op *system.HTTPOperation, with map[string]any, info CallInfo) httpconn.Call {
	// The maps are made only when something goes in them: this runs for every call.
	call := httpconn.Call{IdempotencyKey: info.IdempotencyKey, Traceparent: info.Traceparent, Forward: info.Forward, Raw: info.Raw, NoHeaders: info.NoHeaders}
	for k, v := range with {
		switch {
		case k == "body":
			call.Body = v
		case k == "query":
			q, _ := v.(map[string]any)
			if call.Query == nil {
				call.Query = make(map[string]any, len(q))
			}
			maps.Copy(call.Query, q)
		case k == "headers":
			h, _ := v.(map[string]any)
			if call.Headers == nil {
				call.Headers = make(map[string]string, len(h))
			}
			for hk, hv := range h {
				call.Headers[hk] = expr.ToString(hv)
			}
		case inPath(op.Path, k):
			if call.Params == nil {
				call.Params = make(map[string]any, 2)
			}
			call.Params[k] = v
		default:
			if call.Query == nil {
				call.Query = map[string]any{}
			}
			call.Query[k] = v
		}
	}
	return call
}

// inPath reports whether path has the placeholder {name}.
func inPath(path, name string) bool {
	for i := 0; i < len(path); {
		j := strings.Index(path[i:], name)
		if j < 0 {
			return false
		}
		j += i
		if end := j + len(name); j > 0 && path[j-1] == '{' && end < len(path) && path[end] == '}' {
			return true
		}
		i = j + 1
	}
	return false
}

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

// ErrNoConnection is a system that declares nothing to check.
var ErrNoConnection = errors.New("the system declares no connection (http, sql, amqp, nats, mqtt, kafka, files, sftp or smtp) to check")

// Check tries every connection a system declares and reports what works.
func (s *Set) Check(ctx context.Context, name string, sys *system.Spec) *SystemCheck {
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
		try("http", s.http.Check)
	}
	if sys.SQL != nil {
		try("sql", s.sql.Check)
	}
	if sys.AMQP != nil {
		try("amqp", s.amqp.Check)
	}
	if sys.NATS != nil {
		try("nats", s.nats.Check)
	}
	if sys.MQTT != nil {
		try("mqtt", s.mqtt.Check)
	}
	if sys.Kafka != nil {
		try("kafka", s.kafka.Check)
	}
	if sys.Files != nil {
		try("files", fileconn.Check)
	}
	if sys.SFTP != nil {
		try("sftp", s.sftp.Check)
	}
	if sys.SMTP != nil {
		try("smtp", emailconn.Check)
	}
	if len(out.Checks) == 0 {
		out.OK = false
		out.Checks = append(out.Checks, ConnectorCheck{Connector: "none", Error: ErrNoConnection.Error()})
	}
	return out
}

// RetryAfter is how long a failed call's system asked to be left alone (an HTTP
// Retry-After header), or 0.
func RetryAfter(err error) time.Duration {
	if err == nil {
		return 0
	}
	var ce *httpconn.Error
	if errors.As(err, &ce) {
		return ce.RetryAfter
	}
	return 0
}

// Transient reports whether another attempt of a failed call may succeed: the connector
// said so, or the call ran out of time.
func Transient(err error) bool {
	if err == nil {
		// Said first because it is the usual case: the targets of errors.As below escape,
		// and would cost an allocation each on every successful call.
		return false
	}
	var ce *httpconn.Error
	if errors.As(err, &ce) {
		return ce.Transient
	}
	var se *sqlconn.Error
	if errors.As(err, &se) {
		return se.Transient
	}
	var ae *amqpconn.Error
	if errors.As(err, &ae) {
		return ae.Transient
	}
	var ne *natsconn.Error
	if errors.As(err, &ne) {
		return ne.Transient
	}
	var me *mqttconn.Error
	if errors.As(err, &me) {
		return me.Transient
	}
	var ke *kafkaconn.Error
	if errors.As(err, &ke) {
		return ke.Transient
	}
	var sfe *sftpconn.Error
	if errors.As(err, &sfe) {
		return sfe.Transient
	}
	var fe *fileconn.Error
	if errors.As(err, &fe) {
		return fe.Transient
	}
	var ee *emailconn.Error
	if errors.As(err, &ee) {
		return ee.Transient
	}
	var te TransientError
	if errors.As(err, &te) {
		return te.TransientError()
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// TransientError is an error that says itself whether it is transient: one that did not
// come from a connector, such as a call not made because its system is offline.
type TransientError interface {
	error
	TransientError() bool
}

// PrepareHTTP makes an HTTP operation ready for calls on a hot path, such as the gateway's
// fast lane (httpconn.Prepare); the error says why it cannot be.
func (s *Set) PrepareHTTP(name string, sys *system.Spec, opName string) (*httpconn.Prepared, error) {
	return s.http.Prepare(name, sys, opName)
}
