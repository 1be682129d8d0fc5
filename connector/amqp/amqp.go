// Package amqpconn is the AMQP 0.9.1 connector (RabbitMQ): it publishes a call's body to an
// exchange with a routing key, persistent and mandatory, and succeeds only when the broker
// has confirmed the message (publisher confirms). A broker that is down, a closed
// connection or a missing confirmation is a transient failure; a message the broker cannot
// route, or an exchange that does not exist, a permanent one.
package amqpconn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/system"
)

// Error is a failed publish.
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

// Client publishes to brokers, one connection and one confirming channel per system.
type Client struct {
	mu    sync.Mutex
	conns map[string]*conn
}

// conn is a system's connection with its confirming channel. Publishes on it take turns,
// so that a return and a confirmation belong to the publish that waits for them.
type conn struct {
	mu      sync.Mutex
	c       *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
	closed  chan *amqp.Error
}

// New returns a client.
func New() *Client { return &Client{conns: map[string]*conn{}} }

// Close closes every connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, k := range c.conns {
		_ = k.c.Close()
		delete(c.conns, name)
	}
}

// open returns the system's connection, dialing (again) when there is none or it closed.
func (c *Client) open(name string, cfg *system.AMQP) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.conns[name]; ok && !k.c.IsClosed() && !k.ch.IsClosed() {
		return k, nil
	}
	ac, err := amqp.DialConfig(cfg.URL.Reveal(), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second), Heartbeat: 10 * time.Second})
	if err != nil {
		// The URL holds a password: say what failed without quoting it.
		return nil, fmt.Errorf("connecting to the broker: %s", redact(err))
	}
	ch, err := ac.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		_ = ac.Close()
		return nil, fmt.Errorf("opening a confirming channel: %w", err)
	}
	k := &conn{c: ac, ch: ch, returns: ch.NotifyReturn(make(chan amqp.Return, 1)), closed: ch.NotifyClose(make(chan *amqp.Error, 1))}
	c.conns[name] = k
	return k, nil
}

// redact keeps a dial error's kind and drops what may quote the URL.
func redact(err error) string {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	var oe interface{ Timeout() bool }
	if errors.As(err, &oe) && oe.Timeout() {
		return "timed out"
	}
	return "the broker cannot be reached"
}

// Do publishes the call's body (the with key body, or all of with) to the operation's
// exchange and waits for the broker's confirmation.
func (c *Client) Do(ctx context.Context, sysName string, sys *system.Spec, opName string, with map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.AMQP == nil || sys.AMQP == nil {
		return nil, fail(false, errors.New("no such AMQP operation"))
	}
	body := any(with)
	if b, ok := with["body"]; ok {
		body = b
	}
	data, err := expr.MarshalJSON(body)
	if err != nil {
		return nil, fail(false, err)
	}
	key := ""
	if op.AMQP.RoutingKey != "" {
		t, err := expr.ParseTemplate(op.AMQP.RoutingKey)
		if err != nil {
			return nil, fail(false, err)
		}
		v, err := t.Eval(ctx, map[string]any{"params": with})
		if err != nil {
			return nil, fail(false, fmt.Errorf("routing key: %w", err))
		}
		key = expr.ToString(v)
	}
	k, err := c.open(sysName, sys.AMQP)
	if err != nil {
		return nil, fail(true, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	msg := amqp.Publishing{ContentType: op.AMQP.ContentType, DeliveryMode: amqp.Persistent, Timestamp: time.Now(), Body: data}
	if id, ok := with["messageId"].(string); ok {
		msg.MessageId = id
	}
	conf, err := k.ch.PublishWithDeferredConfirmWithContext(ctx, op.AMQP.Exchange, key, true, false, msg)
	if err != nil {
		return nil, fail(true, fmt.Errorf("publish: %w", err))
	}
	acked, werr := conf.WaitContext(ctx)
	select {
	case ce := <-k.closed:
		if ce != nil && ce.Code == amqp.NotFound {
			return nil, fail(false, fmt.Errorf("the broker refused the publish: %s", ce.Reason))
		}
		return nil, fail(true, fmt.Errorf("the broker closed the channel: %v", ce))
	default:
	}
	if werr != nil {
		return nil, fail(true, fmt.Errorf("no confirmation from the broker: %w", werr))
	}
	if !acked {
		return nil, fail(true, errors.New("the broker did not take the message (nack)"))
	}
	// The broker returns a mandatory message it cannot route before it confirms it.
	select {
	case r := <-k.returns:
		return nil, fail(false, fmt.Errorf("the broker could not route the message (%s): no queue is bound to %q on %q", r.ReplyText, r.RoutingKey, r.Exchange))
	default:
	}
	return map[string]any{"exchange": op.AMQP.Exchange, "routingKey": key, "confirmed": true}, nil
}

// Check dials the broker and opens a confirming channel.
func (c *Client) Check(ctx context.Context, name string, sys *system.Spec) (string, error) {
	if sys.AMQP == nil {
		return "", errors.New("the system has no amqp settings")
	}
	k, err := c.open(name, sys.AMQP)
	if err != nil {
		return "", err
	}
	props := k.c.Properties
	return fmt.Sprintf("connected to %v %v, channel in confirm mode", props["product"], props["version"]), nil
}
