package amqpconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/system"
)

const brokerURL = "amqp://guest:guest@127.0.0.1:5672/"

func broker(url string, ops map[string]*system.AMQPOperation) *system.Spec {
	s := &system.Spec{AMQP: &system.AMQP{URL: config.NewSecret(url)}, Operations: map[string]*system.Operation{}}
	for name, op := range ops {
		s.Operations[name] = &system.Operation{AMQP: op}
	}
	return s
}

func TestPublishWithConfirms(t *testing.T) {
	testutil.RequireService(t, "RabbitMQ", "127.0.0.1:5672")
	conn, err := amqp.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := fmt.Sprintf("cw-test-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(queue, true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	sys := broker(brokerURL, map[string]*system.AMQPOperation{
		"send":    {RoutingKey: "${{ .params.queue }}", ContentType: "application/json"},
		"nowhere": {Exchange: "cw-no-such-exchange", RoutingKey: "x", ContentType: "application/json"},
	})
	c := New()
	defer c.Close()
	ctx := context.Background()
	for i := range 3 {
		res, err := c.Do(ctx, "broker", sys, "send", map[string]any{"queue": queue, "body": map[string]any{"n": i}, "messageId": fmt.Sprint("m", i)})
		if err != nil || res.(map[string]any)["confirmed"] != true {
			t.Fatalf("publish %d: %v %v", i, res, err)
		}
	}
	for i := range 3 {
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("get %d: %v %v", i, ok, err)
		}
		var body map[string]int
		if json.Unmarshal(d.Body, &body) != nil || body["n"] != i || d.DeliveryMode != amqp.Persistent || d.MessageId != fmt.Sprint("m", i) {
			t.Errorf("message %d: %s mode %d id %s", i, d.Body, d.DeliveryMode, d.MessageId)
		}
	}

	// Unroutable and refused publishes are permanent; the connector recovers after them.
	var ae *Error
	_, err = c.Do(ctx, "broker", sys, "send", map[string]any{"queue": queue + "-unbound", "body": 1})
	if !errors.As(err, &ae) || ae.Transient || !strings.Contains(err.Error(), "could not route") {
		t.Errorf("unroutable: %v", err)
	}
	_, err = c.Do(ctx, "broker", sys, "nowhere", map[string]any{"body": 1})
	if !errors.As(err, &ae) || ae.Transient || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Errorf("missing exchange: %v", err)
	}
	if _, err := c.Do(ctx, "broker", sys, "send", map[string]any{"queue": queue, "body": "after"}); err != nil {
		t.Errorf("publish after a refused one: %v", err)
	}
	if detail, err := c.Check(ctx, "broker", sys); err != nil || !strings.Contains(detail, "RabbitMQ") {
		t.Errorf("check: %q %v", detail, err)
	}
}

func TestUnreachableBrokerIsTransient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	sys := broker("amqp://guest:hunter2@"+addr+"/", map[string]*system.AMQPOperation{"send": {RoutingKey: "q"}})
	_, err := New().Do(context.Background(), "broker", sys, "send", map[string]any{"body": 1})
	var ae *Error
	if !errors.As(err, &ae) || !ae.Transient || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable broker: %v", err)
	}
}
