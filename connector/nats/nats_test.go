package natsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/system"
)

const serverURL = "nats://127.0.0.1:4222"

func natsSystem(url string, ops map[string]*system.NATSOperation) *system.Spec {
	s := &system.Spec{NATS: &system.NATS{URL: config.NewSecret(url)}, Operations: map[string]*system.Operation{}}
	for name, op := range ops {
		if op.Timeout == 0 {
			op.Timeout = 2 * time.Second
		}
		s.Operations[name] = &system.Operation{NATS: op}
	}
	return s
}

// TestAgainstTheMachinesNATS uses the NATS server on 4222, a server of a "system", not the
// platform's bus.
func TestAgainstTheMachinesNATS(t *testing.T) {
	testutil.RequireService(t, "NATS", "127.0.0.1:4222")
	nc, err := nats.Connect(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	prefix := fmt.Sprintf("cwtest%d", time.Now().UnixNano())
	sub, err := nc.SubscribeSync(prefix + ".events.*")
	if err != nil {
		t.Fatal(err)
	}
	responder, err := nc.Subscribe(prefix+".price", func(m *nats.Msg) { _ = m.Respond([]byte(`{"price":12.5}`)) })
	if err != nil {
		t.Fatal(err)
	}
	defer responder.Unsubscribe()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: prefix, Subjects: []string{prefix + ".stored"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(ctx, prefix) //nolint:errcheck // best effort
	nc.Flush()

	sys := natsSystem(serverURL, map[string]*system.NATSOperation{
		"emit":     {Subject: prefix + ".events.${{ .params.kind }}"},
		"price":    {Subject: prefix + ".price", Request: true},
		"store":    {Subject: prefix + ".stored", JetStream: true},
		"nobody":   {Subject: prefix + ".nobody", Request: true, Timeout: 300 * time.Millisecond},
		"nostream": {Subject: prefix + ".unstored", JetStream: true},
	})
	c := New()
	defer c.Close()
	if _, err := c.Do(ctx, "plant", sys, "emit", map[string]any{"kind": "paid", "body": map[string]any{"id": 1}}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(2 * time.Second)
	if err != nil || m.Subject != prefix+".events.paid" || string(m.Data) != `{"id":1}` {
		t.Fatalf("published: %v %v", m, err)
	}
	res, err := c.Do(ctx, "plant", sys, "price", map[string]any{"sku": "S"})
	if err != nil || fmt.Sprint(res.(map[string]any)["price"]) != "12.5" {
		t.Fatalf("request: %v %v", res, err)
	}
	for range 2 {
		res, err = c.Do(ctx, "plant", sys, "store", map[string]any{"body": "x", "messageId": "once"})
		if err != nil {
			t.Fatalf("jetstream: %v", err)
		}
	}
	if res.(map[string]any)["duplicate"] != true {
		t.Errorf("the second publish with the same id was not a duplicate: %v", res)
	}
	var ne *Error
	if _, err := c.Do(ctx, "plant", sys, "nobody", map[string]any{}); !errors.As(err, &ne) || !ne.Transient {
		t.Errorf("no responder: %v", err)
	}
	if _, err := c.Do(ctx, "plant", sys, "nostream", map[string]any{}); !errors.As(err, &ne) || ne.Transient || !strings.Contains(err.Error(), "no stream") {
		t.Errorf("no stream: %v", err)
	}
	if detail, err := c.Check(ctx, "plant", sys); err != nil || !strings.Contains(detail, "connected to NATS") {
		t.Errorf("check: %q %v", detail, err)
	}
}

func TestUnreachableNATSIsTransient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	sys := natsSystem("nats://u:hunter2@"+addr, map[string]*system.NATSOperation{"emit": {Subject: "x"}})
	_, err := New().Do(context.Background(), "plant", sys, "emit", map[string]any{})
	var ne *Error
	if !errors.As(err, &ne) || !ne.Transient || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable: %v", err)
	}
}
