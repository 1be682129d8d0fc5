package platform

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaSource consumes a topic of an in-process Kafka cluster in a consumer group: good
// records are stored (one sent twice with one message-id, once), a bad one goes to ERRORS,
// offsets are committed, and after a restart only what was produced meanwhile is read.
func TestKafkaSource(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "erp.orders"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx := context.Background()
	produce := func(key, id, value string) {
		t.Helper()
		r := &kgo.Record{Topic: "erp.orders", Key: []byte(key), Value: []byte(value)}
		if id != "" {
			r.Headers = []kgo.RecordHeader{{Key: "message-id", Value: []byte(id)},
				{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}
		}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("K-1", "k1", `{"order":"K-1","lines":[{"sku":"S","qty":1}]}`)
	produce("K-1", "k1", `{"order":"K-1","lines":[{"sku":"S","qty":1}]}`) // the same record again
	produce("K-2", "", `{"order":"K-2","lines":[]}`)                      // the schema refuses it
	produce("K-3", "", `{"order":"K-3","lines":[{"sku":"S","qty":3}]}`)

	brokers := `"` + strings.Join(kc.ListenAddrs(), `", "`) + `"`
	config := func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "source.yaml"), []byte(fmt.Sprintf(`apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  kafka: {brokers: [%s]}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: erp-orders}
spec:
  system: erp
  kafka: {topics: [erp.orders]}
  emit:
    type: order.created
    subject: ${{ .key }}
    data: {orderId: "${{ .body.order }}", items: "${{ .body.lines }}"}
`, brokers)), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	p := runPlatform(t, config, func(o *Options) { o.DataDir = data })
	m := waitMessage(t, p, "kafka:erp-orders:k1")["message"].(map[string]any)
	if m["traceparent"] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("the record's trace context was not carried on: %v", m["traceparent"])
	}
	if m["subject"] != "K-1" || m["source"] != "erp" {
		t.Errorf("stored %v", m)
	}
	if e := waitErrors(t, p, 1); !strings.Contains(e[0], "does not match order.created") {
		t.Errorf("ERRORS entry %s", e[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for streamMessages(t, p) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}

	produce("K-4", "k4", `{"order":"K-4","lines":[{"sku":"S","qty":4}]}`)
	p = runPlatform(t, config, func(o *Options) { o.DataDir = data })
	waitMessage(t, p, "kafka:erp-orders:k4")
	time.Sleep(300 * time.Millisecond) // anything read again would show now
	if n := streamMessages(t, p); n != 3 {
		t.Errorf("MESSAGES holds %d, want 3 (K-1 once, K-3, K-4)", n)
	}
	if n := len(errorEntries(t, p)); n != 1 {
		t.Errorf("ERRORS holds %d, want 1 (the offsets were committed)", n)
	}
}
