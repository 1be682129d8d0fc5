package kafkaconn

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// cluster starts an in-process Kafka cluster (franz-go's kfake) with topic orders, on a
// random loopback port.
func cluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func kafkaSystem(brokers []string, ops map[string]*system.KafkaOperation) *system.Spec {
	s := &system.Spec{Kafka: &system.Kafka{Brokers: brokers}, Operations: map[string]*system.Operation{}}
	for name, op := range ops {
		s.Operations[name] = &system.Operation{Kafka: op}
	}
	return s
}

// TestProduce produces keyed records with acks=all and reads them back; a topic that does
// not exist is a permanent failure; check reports the cluster.
func TestProduce(t *testing.T) {
	kc := cluster(t)
	sys := kafkaSystem(kc.ListenAddrs(), map[string]*system.KafkaOperation{
		"send":    {Topic: "orders", Key: "${{ .params.orderId }}"},
		"nowhere": {Topic: "no-such-topic"},
	})
	c := New()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var partition any
	for i, id := range []string{"K-1", "K-1", "K-2"} {
		res, err := c.Do(ctx, "bus", sys, "send", map[string]any{"orderId": id, "messageId": id, "body": map[string]any{"n": i}})
		if err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		r := res.(map[string]any)
		if r["topic"] != "orders" {
			t.Errorf("result %v", r)
		}
		if i == 0 {
			partition = r["partition"]
		} else if i == 1 && r["partition"] != partition {
			t.Errorf("one key went to partitions %v and %v", partition, r["partition"])
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < 3 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			got = append(got, string(r.Key)+"="+string(r.Value))
			if len(r.Headers) < 2 || r.Headers[1].Key != "message-id" {
				t.Errorf("headers %v", r.Headers)
			}
		})
	}
	if j := strings.Join(got, " "); !strings.Contains(j, `K-1={"n":0}`) || !strings.Contains(j, `K-2={"n":2}`) {
		t.Errorf("records %s", j)
	}

	_, err = c.Do(ctx, "bus", sys, "nowhere", map[string]any{"body": 1})
	var ce *Error
	if !errors.As(err, &ce) || ce.Transient {
		t.Errorf("unknown topic: %v, want a permanent error", err)
	}
	detail, err := c.Check(ctx, "bus", sys)
	if err != nil || !strings.Contains(detail, "1 brokers") {
		t.Errorf("check: %q %v", detail, err)
	}
}

// TestUnreachableIsTransient produces to a cluster that is not there.
func TestUnreachableIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	sys := kafkaSystem([]string{addr}, map[string]*system.KafkaOperation{"send": {Topic: "orders"}})
	c := New()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = c.Do(ctx, "bus", sys, "send", map[string]any{"body": 1})
	var ce *Error
	if !errors.As(err, &ce) || !ce.Transient {
		t.Errorf("unreachable: %v, want a transient error", err)
	}
}

// TestSASL authenticates with SCRAM-SHA-256; with a wrong password the call fails without
// quoting it. (The in-process cluster closes the connection on a failed login, which the
// client cannot tell from a network failure, so the failure is transient there.)
func TestSASL(t *testing.T) {
	kc := cluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "causeway", "s3cret"))
	ops := map[string]*system.KafkaOperation{"send": {Topic: "orders"}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good := kafkaSystem(kc.ListenAddrs(), ops)
	good.Kafka.SASL = &system.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: "causeway", Password: config.NewSecret("s3cret")}
	c := New()
	defer c.Close()
	if _, err := c.Do(ctx, "good", good, "send", map[string]any{"body": 1}); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	bad := kafkaSystem(kc.ListenAddrs(), ops)
	bad.Kafka.SASL = &system.KafkaSASL{Mechanism: "SCRAM-SHA-256", Username: "causeway", Password: config.NewSecret("wrong")}
	bctx, bcancel := context.WithTimeout(ctx, 3*time.Second)
	defer bcancel()
	_, err := c.Do(bctx, "bad", bad, "send", map[string]any{"body": 1})
	var ce *Error
	if !errors.As(err, &ce) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v, want an error without the password", err)
	}
}
