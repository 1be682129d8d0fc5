package platform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/internal/testutil"
)

// TestAMQPSource consumes a RabbitMQ queue: good deliveries become messages (a delivery sent
// twice with one message id, once), a bad one goes to ERRORS, and the queue is drained.
func TestAMQPSource(t *testing.T) {
	testutil.RequireService(t, "RabbitMQ", "127.0.0.1:5672")
	conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := fmt.Sprintf("cw-source-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(queue, false, false, false) //nolint:errcheck // best effort
	send := func(id, body string) {
		if err := ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{MessageId: id, ContentType: "application/json", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		send(fmt.Sprint("q", i), fmt.Sprintf(`{"order":"Q-%d","lines":[{"sku":"S","qty":1}]}`, i))
	}
	send("q0", `{"order":"Q-0","lines":[{"sku":"S","qty":1}]}`) // the same delivery again
	send("bad", `{"order":"Q-9","lines":[]}`)                   // no items: the schema refuses it

	p := runPlatform(t, func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "source.yaml"), []byte(`apiVersion: causeway/v1
kind: System
metadata: {name: broker}
spec:
  amqp: {url: "amqp://guest:guest@127.0.0.1:5672/"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: queued-orders}
spec:
  system: broker
  amqp: {queue: `+queue+`}
  emit:
    type: order.created
    data:
      orderId: ${{ .body.order }}
      items: ${{ .body.lines }}
`), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	})
	for i := range 3 {
		waitMessage(t, p, fmt.Sprintf("amqp:%s:q%d", queue, i))
	}
	testutil := func() uint64 {
		s, _ := p.Bus().Stream(context.Background(), bus.StreamErrors)
		info, _ := s.Info(context.Background())
		return info.State.Msgs
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the bad delivery did not reach ERRORS")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, _ := p.Bus().Stream(context.Background(), bus.StreamErrors)
	raw, err := s.GetLastMsgForSubject(context.Background(), bus.SubjectErrors+"source.queued-orders")
	if err != nil || !strings.Contains(string(raw.Data), "does not match order.created") {
		t.Errorf("errors entry: %v %s", err, raw.Data)
	}
	if n := streamMessages(t, p); n != 3 {
		t.Errorf("MESSAGES holds %d, want 3 (the repeated delivery stored once)", n)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err == nil && q.Messages == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue was not drained: %+v %v", q, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
