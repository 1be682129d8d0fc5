// Package kafkaconn is the Kafka connector: it produces a call's body as a record to a
// topic, with an optional key, and succeeds only when every in-sync replica has it
// (acks=all, with the idempotent producer). A broker that cannot be reached, a timeout or
// an error Kafka marks retriable is a transient failure; a refusal (not authorized, a
// record too large, a topic that does not exist) a permanent one.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/system"
)

// Error is a failed produce.
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

// ClientOptions are the franz-go options that reach a system's cluster: seed brokers, TLS,
// SASL and client id. Producers and consumers add their own.
func ClientOptions(cfg *system.Kafka) []kgo.Opt {
	id := cfg.ClientID
	if id == "" {
		id = "causeway"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(id), kgo.DialTimeout(10 * time.Second)}
	if cfg.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	if s := cfg.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha256Mechanism()))
		default:
			opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password.Reveal()}.AsSha512Mechanism()))
		}
	}
	return opts
}

// Client produces to clusters, one producer per system.
type Client struct {
	mu      sync.Mutex
	clients map[string]*kgo.Client
}

// New returns a client.
func New() *Client { return &Client{clients: map[string]*kgo.Client{}} }

// Close flushes nothing (every produce waited for its acknowledgement) and closes every
// producer.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, kc := range c.clients {
		kc.Close()
		delete(c.clients, name)
	}
}

// producer returns the system's producer, making it on first use.
func (c *Client) producer(name string, cfg *system.Kafka) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kc, ok := c.clients[name]; ok {
		return kc, nil
	}
	opts := append(ClientOptions(cfg),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.UnknownTopicRetries(3),
		kgo.ProducerLinger(0),
	)
	kc, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	c.clients[name] = kc
	return kc, nil
}

// Do produces the call's body (with.body, or all of with) to the operation's topic.
func (c *Client) Do(ctx context.Context, sysName string, sys *system.Spec, opName string, with map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.Kafka == nil || sys.Kafka == nil {
		return nil, fail(false, errors.New("no such Kafka operation"))
	}
	params := map[string]any{"params": with}
	render := func(what, src string) (string, error) {
		t, err := expr.ParseTemplate(src)
		if err != nil {
			return "", err
		}
		v, err := t.Eval(ctx, params)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return expr.ToString(v), nil
	}
	topic, err := render("topic", op.Kafka.Topic)
	if err != nil {
		return nil, fail(false, err)
	}
	rec := &kgo.Record{Topic: topic}
	if op.Kafka.Key != "" {
		key, err := render("key", op.Kafka.Key)
		if err != nil {
			return nil, fail(false, err)
		}
		rec.Key = []byte(key)
	}
	body := any(with)
	if b, ok := with["body"]; ok {
		body = b
	}
	if rec.Value, err = expr.MarshalJSON(body); err != nil {
		return nil, fail(false, err)
	}
	rec.Headers = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}
	if id, ok := with["messageId"].(string); ok {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "message-id", Value: []byte(id)})
	}
	kc, err := c.producer(sysName, sys.Kafka)
	if err != nil {
		return nil, fail(false, err)
	}
	if err := kc.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fail(Transient(err), err)
	}
	return map[string]any{"topic": rec.Topic, "partition": rec.Partition, "offset": rec.Offset}, nil
}

// Transient says whether a produce error may pass when tried again.
func Transient(err error) bool {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition),
		errors.Is(err, kerr.TopicAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.MessageTooLarge),
		errors.Is(err, kerr.RecordListTooLarge),
		errors.Is(err, kerr.InvalidTopicException),
		errors.Is(err, kerr.InvalidRecord),
		errors.Is(err, kerr.SaslAuthenticationFailed):
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true // the network, a timeout, a cluster that is not there
}

// Check asks the cluster for its metadata.
func (c *Client) Check(ctx context.Context, name string, sys *system.Spec) (string, error) {
	if sys.Kafka == nil {
		return "", errors.New("the system has no kafka settings")
	}
	kc, err := c.producer(name, sys.Kafka)
	if err != nil {
		return "", err
	}
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, kc)
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	cluster := "a cluster"
	if resp.ClusterID != nil {
		cluster = "cluster " + *resp.ClusterID
	}
	return fmt.Sprintf("connected to %s: %d brokers, %d topics", cluster, len(resp.Brokers), len(resp.Topics)), nil
}
