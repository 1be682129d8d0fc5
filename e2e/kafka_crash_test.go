package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaSourceSurvivesKill9 produces records to an in-process Kafka cluster continuously
// while a node consuming the topic is killed with SIGKILL and restarted several times, and
// checks that every record became exactly one stored message, none missing.
func TestKafkaSourceSurvivesKill9(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "plant.events"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	cfg := writeConfig(t, map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: event.added}
spec:
  schema: {type: object, required: [n]}
---
apiVersion: causeway/v1
kind: System
metadata: {name: plant}
spec:
  kafka: {brokers: ["` + strings.Join(kc.ListenAddrs(), `", "`) + `"]}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: events}
spec:
  system: plant
  kafka: {topics: [plant.events]}
  emit:
    type: event.added
`})
	data := t.TempDir()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	// The producer: a bounded number of records, in small batches, while the node comes
	// and goes.
	const records = 1500
	var produced atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := 0; i < records; i += 10 {
			batch := make([]*kgo.Record, 0, 10)
			for j := i; j < i+10; j++ {
				batch = append(batch, &kgo.Record{Topic: "plant.events", Key: []byte(fmt.Sprint(j % 7)), Value: []byte(fmt.Sprintf(`{"n":%d}`, j))})
			}
			if err := prod.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
				done <- err
				return
			}
			produced.Add(10)
			time.Sleep(10 * time.Millisecond)
		}
		done <- nil
	}()
	var n *node
	for round := range 4 {
		n = startNode(t, cfg, data)
		time.Sleep(time.Duration(400+200*round) * time.Millisecond)
		if round < 3 {
			n.kill()
			t.Logf("killed after %d records produced", produced.Load())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect("nats://" + n.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "MESSAGES")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("cw.msg.event.added"))
		return err == nil && info.State.Msgs >= records
	}, "every record to be a message")
	time.Sleep(500 * time.Millisecond) // anything stored twice would show now
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cw.msg.event.added"}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx)
	seen := map[string]int{}
	for range info.State.Msgs {
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		seen[string(m.Data())]++
	}
	for i := range records {
		if c := seen[fmt.Sprintf(`{"n":%d}`, i)]; c != 1 {
			t.Errorf("record %d became %d messages", i, c)
		}
	}
	if info.State.Msgs != records {
		t.Errorf("MESSAGES holds %d, want %d", info.State.Msgs, records)
	}
	t.Logf("%d records, %d messages, 3 kills", records, len(seen))
}
