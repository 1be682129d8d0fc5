package platform

import (
	"context"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// externalNATS is the NATS server with JetStream that runs on this machine for tests.
const externalNATS = "127.0.0.1:4222"

// TestExternalNATS runs a node against a separate NATS server (--nats) instead of the
// embedded bus: streams are created there, messages are stored there and indexed from there.
func TestExternalNATS(t *testing.T) {
	testutil.RequireService(t, "NATS with JetStream", externalNATS)
	url := "nats://" + externalNATS
	deleteStreams := func() {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range []string{bus.StreamMessages, bus.StreamTracking} {
			_ = js.DeleteStream(ctx, s) // absent on a fresh server
		}
	}
	deleteStreams()
	t.Cleanup(deleteStreams)

	p := runPlatform(t, func(o *Options) { o.NATSURL = url })
	a := do(t, "POST", "http://"+p.HTTPAddr()+"/v1/messages", "application/cloudevents+json",
		`{"id":"ext-1","source":"webshop","type":"order.created","data":{"orderId":"A-1","items":[{"sku":"S","qty":1}]}}`)
	if a.status != 202 {
		t.Fatalf("post: %d %s", a.status, a.raw)
	}
	// The message is on the external server, not in some embedded one.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), bus.StreamMessages)
	if err != nil {
		t.Fatalf("MESSAGES stream on the external server: %v", err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("external MESSAGES holds %d messages, want 1", n)
	}
	if got := waitMessage(t, p, "ext-1"); got["retained"] != true {
		t.Fatalf("lookup: %v", got)
	}
}
