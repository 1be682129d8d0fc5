// Package natsconn is the NATS connector, for systems that speak NATS on a server of their
// own: publish (flushed to the server, or stored by a JetStream stream) and request/reply.
// No connection, a timeout or no responder is a transient failure; a JetStream error (no
// stream for the subject, say) a permanent one.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/system"
)

// Error is a failed call.
type Error struct {
	System, Operation string
	Transient         bool
	Err               error
}

// Error says which operation failed, how, and whether it is worth retrying.
func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	return fmt.Sprintf("call %s.%s: %v (%s)", e.System, e.Operation, e.Err, kind)
}

// Unwrap gives the cause.
func (e *Error) Unwrap() error { return e.Err }

// Client keeps one connection per system.
type Client struct {
	mu    sync.Mutex
	conns map[string]*nats.Conn
}

// New returns a client.
func New() *Client { return &Client{conns: map[string]*nats.Conn{}} }

// Close closes every connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, nc := range c.conns {
		nc.Close()
		delete(c.conns, name)
	}
}

func (c *Client) conn(name string, cfg *system.NATS) (*nats.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nc, ok := c.conns[name]; ok && !nc.IsClosed() {
		return nc, nil
	}
	nc, err := nats.Connect(cfg.URL.Reveal(), nats.Name("causeway connector "+name), nats.Timeout(10*time.Second),
		nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false))
	if err != nil {
		// The URL may hold a password: say what failed without quoting it.
		if errors.Is(err, nats.ErrNoServers) {
			return nil, errors.New("no NATS server reachable at the system's url")
		}
		return nil, fmt.Errorf("connecting: %s", errors.Unwrap(err))
	}
	c.conns[name] = nc
	return nc, nil
}

// Do publishes the call's body (with.body, or all of with) to the operation's subject, or
// sends it as a request and returns the reply.
func (c *Client) Do(ctx context.Context, sysName string, sys *system.Spec, opName string, with map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.NATS == nil || sys.NATS == nil {
		return nil, fail(false, errors.New("no such NATS operation"))
	}
	o := op.NATS
	t, err := expr.ParseTemplate(o.Subject)
	if err != nil {
		return nil, fail(false, err)
	}
	sv, err := t.Eval(ctx, map[string]any{"params": with})
	if err != nil {
		return nil, fail(false, fmt.Errorf("subject: %w", err))
	}
	subject := expr.ToString(sv)
	body := any(with)
	if b, ok := with["body"]; ok {
		body = b
	}
	data, err := expr.MarshalJSON(body)
	if err != nil {
		return nil, fail(false, err)
	}
	nc, err := c.conn(sysName, sys.NATS)
	if err != nil {
		return nil, fail(true, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{"Content-Type": {"application/json"}}}
	if id, ok := with["messageId"].(string); ok {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	switch {
	case o.Request:
		reply, err := nc.RequestMsgWithContext(ctx, msg)
		if err != nil {
			// No responder and no answer in time may both pass: the service may be
			// restarting.
			return nil, fail(true, fmt.Errorf("request on %s: %w", subject, err))
		}
		if v, derr := expr.DecodeJSON(reply.Data); derr == nil {
			return v, nil
		}
		return string(reply.Data), nil
	case o.JetStream:
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fail(true, err)
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			var apiErr *jetstream.APIError
			transient := !errors.As(err, &apiErr) && !errors.Is(err, jetstream.ErrNoStreamResponse)
			if errors.Is(err, jetstream.ErrNoStreamResponse) {
				err = fmt.Errorf("no stream takes the subject %s", subject)
			}
			return nil, fail(transient, fmt.Errorf("JetStream publish: %w", err))
		}
		return map[string]any{"stream": ack.Stream, "seq": ack.Sequence, "duplicate": ack.Duplicate}, nil
	default:
		if err := nc.PublishMsg(msg); err != nil {
			return nil, fail(true, err)
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			return nil, fail(true, fmt.Errorf("flush: %w", err))
		}
		return map[string]any{"subject": subject}, nil
	}
}

// Check connects and round-trips to the server.
func (c *Client) Check(ctx context.Context, name string, sys *system.Spec) (string, error) {
	if sys.NATS == nil {
		return "", errors.New("the system has no nats settings")
	}
	nc, err := c.conn(name, sys.NATS)
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		return "", err
	}
	return fmt.Sprintf("connected to NATS %s, round trip %s", nc.ConnectedServerVersion(), time.Since(start).Round(time.Microsecond)), nil
}
