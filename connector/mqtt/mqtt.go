// Package mqttconn is the MQTT connector (MQTT 5): it publishes a call's body to a topic,
// with QoS 1 waiting for the broker's acknowledgement. No connection, a dropped one or no
// acknowledgement in time is a transient failure; a refusal by the broker (not
// authorized, a topic it does not accept) a permanent one.
package mqttconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

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

// Client keeps one broker connection per system.
type Client struct {
	node    string
	mu      sync.Mutex
	clients map[string]*paho.Client
}

// New returns a client; node goes into the default client ids.
func New(node string) *Client { return &Client{node: node, clients: map[string]*paho.Client{}} }

// Close disconnects from every broker.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, pc := range c.clients {
		_ = pc.Disconnect(&paho.Disconnect{ReasonCode: 0})
		delete(c.clients, name)
	}
}

// connect returns the system's connection, connecting (again) when there is none or it
// dropped.
func (c *Client) connect(ctx context.Context, name string, cfg *system.MQTT) (*paho.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pc, ok := c.clients[name]; ok {
		select {
		case <-pc.Done():
		default:
			return pc, nil
		}
	}
	conn, err := Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pc := paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: 10 * time.Second})
	id := cfg.ClientID
	if id == "" {
		id = "causeway-" + name + "-" + c.node
	}
	cp := &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}
	SetCredentials(cp, cfg)
	ack, err := pc.Connect(ctx, cp)
	if err != nil {
		_ = conn.Close()
		if ack != nil && ack.ReasonCode >= 0x80 {
			return nil, &refused{fmt.Errorf("the broker refused the connection: %s", ack.Properties.ReasonString)}
		}
		return nil, fmt.Errorf("connecting to the broker: %w", err)
	}
	c.clients[name] = pc
	return pc, nil
}

// Dial opens the network connection to a system's broker, with TLS for mqtts://. Its
// errors never quote the URL, which may hold a password.
func Dial(ctx context.Context, cfg *system.MQTT) (net.Conn, error) {
	u, err := url.Parse(cfg.URL.Reveal())
	if err != nil {
		return nil, errors.New("the system's mqtt url does not parse")
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	if u.Scheme == "mqtts" {
		td := tls.Dialer{NetDialer: &d, Config: &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}}
		conn, err = td.DialContext(ctx, "tcp", u.Host)
	} else {
		conn, err = d.DialContext(ctx, "tcp", u.Host)
	}
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			return nil, fmt.Errorf("connecting to the broker: %v", oe.Err)
		}
		return nil, errors.New("connecting to the broker failed")
	}
	return conn, nil
}

// SetCredentials puts the user name and password of a system's broker URL into a CONNECT.
func SetCredentials(cp *paho.Connect, cfg *system.MQTT) {
	u, err := url.Parse(cfg.URL.Reveal())
	if err != nil || u.User == nil {
		return
	}
	cp.Username, cp.UsernameFlag = u.User.Username(), true
	if pw, ok := u.User.Password(); ok {
		cp.Password, cp.PasswordFlag = []byte(pw), true
	}
}

// refused is a broker's deliberate no, which trying again does not change.
type refused struct{ err error }

func (r *refused) Error() string { return r.err.Error() }

// Do publishes the call's body (with.body, or all of with) to the operation's topic.
func (c *Client) Do(ctx context.Context, sysName string, sys *system.Spec, opName string, with map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.MQTT == nil || sys.MQTT == nil {
		return nil, fail(false, errors.New("no such MQTT operation"))
	}
	t, err := expr.ParseTemplate(op.MQTT.Topic)
	if err != nil {
		return nil, fail(false, err)
	}
	tv, err := t.Eval(ctx, map[string]any{"params": with})
	if err != nil {
		return nil, fail(false, fmt.Errorf("topic: %w", err))
	}
	topic := expr.ToString(tv)
	// A broker drops the connection of a client that publishes to a filter; refuse it here,
	// for good, instead of waiting for the broker to time out.
	if topic == "" || strings.ContainsAny(topic, "+#\x00") {
		return nil, fail(false, fmt.Errorf("%q is not a topic to publish to: + and # are for subscriptions", topic))
	}
	body := any(with)
	if b, ok := with["body"]; ok {
		body = b
	}
	data, err := expr.MarshalJSON(body)
	if err != nil {
		return nil, fail(false, err)
	}
	pc, err := c.connect(ctx, sysName, sys.MQTT)
	if err != nil {
		var r *refused
		return nil, fail(!errors.As(err, &r), err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := pc.Publish(ctx, &paho.Publish{Topic: topic, QoS: byte(op.MQTT.QoS), Retain: op.MQTT.Retain, Payload: data,
		Properties: &paho.PublishProperties{ContentType: "application/json"}})
	if err != nil {
		if resp != nil && resp.ReasonCode >= 0x80 {
			return nil, fail(false, fmt.Errorf("the broker refused the message: code %#x %s", resp.ReasonCode, resp.Properties.ReasonString))
		}
		return nil, fail(true, fmt.Errorf("publish to %s: %w", topic, err))
	}
	return map[string]any{"topic": topic, "qos": op.MQTT.QoS}, nil
}

// Check connects to the broker.
func (c *Client) Check(ctx context.Context, name string, sys *system.Spec) (string, error) {
	if sys.MQTT == nil {
		return "", errors.New("the system has no mqtt settings")
	}
	if _, err := c.connect(ctx, name, sys.MQTT); err != nil {
		return "", err
	}
	return "connected to the MQTT broker", nil
}
