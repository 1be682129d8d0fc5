package platform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/causeway/causeway/tracking"
)

// TestTrackingEventsJoinTheTimeline publishes a tracking event on the bus, as later
// components do when they deliver or retry a message, and finds it in the message's timeline
// after the accepted entry.
func TestTrackingEventsJoinTheTimeline(t *testing.T) {
	p := runPlatform(t)
	a := do(t, "POST", "http://"+p.HTTPAddr()+"/v1/messages", "application/cloudevents+json",
		`{"id":"tl-1","source":"webshop","type":"order.created","data":{"orderId":"A-1","items":[{"sku":"S","qty":1}]}}`)
	if a.status != 202 {
		t.Fatalf("post: %d %s", a.status, a.raw)
	}
	ev := tracking.Event{MessageID: "tl-1", Event: "delivered", Time: time.Now().Add(time.Second), Node: "test", Detail: "crm.createOrder"}
	if err := tracking.Publish(context.Background(), p.Bus().JetStream(), ev); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := waitMessage(t, p, "tl-1")
		tl := got["timeline"].([]any)
		if len(tl) == 2 {
			first, second := tl[0].(map[string]any), tl[1].(map[string]any)
			if first["event"] != "accepted" || second["event"] != "delivered" || second["detail"] != "crm.createOrder" {
				t.Fatalf("timeline: %v", tl)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracking event not indexed: %v", tl)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIndexRebuildsFromTheBus deletes the tracking index of a stopped node: on the next start
// the indexer reads the streams from their start and every message can be looked up again.
func TestIndexRebuildsFromTheBus(t *testing.T) {
	data := t.TempDir()
	p := runPlatform(t, func(o *Options) { o.DataDir = data })
	for i := range 5 {
		a := do(t, "POST", "http://"+p.HTTPAddr()+"/v1/messages", "application/cloudevents+json",
			fmt.Sprintf(`{"id":"rb-%d","source":"webshop","type":"order.created","data":{"orderId":"A","items":[{"sku":"S","qty":1}]}}`, i))
		if a.status != 202 {
			t.Fatalf("post: %d %s", a.status, a.raw)
		}
	}
	waitMessage(t, p, "rb-4")
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tracking.db", "tracking.db-wal", "tracking.db-shm"} {
		if err := os.Remove(filepath.Join(data, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	p2 := runPlatform(t, func(o *Options) { o.DataDir = data })
	for i := range 5 {
		waitMessage(t, p2, fmt.Sprintf("rb-%d", i))
	}
}
