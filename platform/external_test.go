package platform

import (
	"context"
	"strings"
	"testing"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestExternalNATS runs a node against a separate NATS server (--nats) instead of the
// embedded bus: streams are created there, messages are stored there and indexed from there.
func TestExternalNATS(t *testing.T) {
	url := testutil.UseExternalNATS(t)
	testutil.CleanExternalNATS(t, url)

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

// TestExternalNATSSmallerMaxPayload runs against the external server with a message limit
// above its max_payload: the node starts, lowers its limit to fit, and answers 413 for a
// message the server could not carry, instead of failing at publish time.
func TestExternalNATSSmallerMaxPayload(t *testing.T) {
	url := testutil.UseExternalNATS(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	serverMax := nc.MaxPayload()
	testutil.CleanExternalNATS(t, url)
	t.Cleanup(nc.Close)

	p := runPlatform(t, func(o *Options) {
		o.NATSURL = url
		o.MaxMessageBytes = serverMax * 4
		o.MaxBatchBytes = serverMax * 8
	})
	if got := p.Bus().MaxMessageBytes(); got >= serverMax {
		t.Fatalf("effective limit %d not below the server's max_payload %d", got, serverMax)
	}
	big := `{"source":"s","type":"order.created","data":{"orderId":"` + strings.Repeat("x", int(serverMax)) + `","items":[{"sku":"S","qty":1}]}}`
	a := do(t, "POST", "http://"+p.HTTPAddr()+"/v1/messages", "application/cloudevents+json", big)
	if a.status != 413 {
		t.Fatalf("a message over the server's max_payload: %d %s", a.status, a.raw[:min(len(a.raw), 300)])
	}
}
