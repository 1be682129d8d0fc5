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

	"github.com/eclipse/paho.golang/paho"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/internal/testutil"
)

// errorEntries returns the ERRORS stream's entries, as text.
func errorEntries(t *testing.T, p *Platform) []string {
	t.Helper()
	ctx := context.Background()
	s, err := p.Bus().Stream(ctx, bus.StreamErrors)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			out = append(out, string(m.Data))
		}
	}
	return out
}

// waitErrors waits until ERRORS holds n entries and returns them.
func waitErrors(t *testing.T, p *Platform, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e := errorEntries(t, p)
		if len(e) >= n {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("ERRORS holds %d entries, want %d: %v", len(e), n, e)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMQTTSource subscribes to Mosquitto: good messages are stored (one sent twice with one
// message-id, once), a bad one goes to ERRORS; and the broker keeps the session while the
// node is down, so what is published then arrives after the restart.
func TestMQTTSource(t *testing.T) {
	testutil.RequireService(t, "Mosquitto", "127.0.0.1:1883")
	run := time.Now().UnixNano()
	topic := fmt.Sprintf("cw-src/%d", run)
	conn, err := net.Dial("tcp", "127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	pub := paho.NewClient(paho.ClientConfig{Conn: conn})
	ctx := context.Background()
	if _, err := pub.Connect(ctx, &paho.Connect{ClientID: fmt.Sprint("cw-src-pub-", run), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(&paho.Disconnect{}) //nolint:errcheck // best effort
	send := func(line, id, body string) {
		t.Helper()
		p := &paho.Publish{Topic: topic + "/" + line, QoS: 1, Payload: []byte(body)}
		if id != "" {
			p.Properties = &paho.PublishProperties{User: paho.UserProperties{{Key: "message-id", Value: id}}}
		}
		if _, err := pub.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	config := func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "source.yaml"), []byte(fmt.Sprintf(`apiVersion: causeway/v1
kind: System
metadata: {name: plant}
spec:
  mqtt: {url: "mqtt://127.0.0.1:1883"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: plant-orders}
spec:
  system: plant
  mqtt: {topics: ["%s/+"], clientID: cw-src-%d, sessionExpiry: 5m}
  emit:
    type: order.created
    subject: ${{ .topic }}
    data: {orderId: "${{ .body.order }}", items: "${{ .body.lines }}"}
`, topic, run)), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	p := runPlatform(t, config, func(o *Options) { o.DataDir = data })
	send("a", "m1", `{"order":"M-1","lines":[{"sku":"S","qty":1}]}`)
	send("a", "m1", `{"order":"M-1","lines":[{"sku":"S","qty":1}]}`) // the same message again
	send("b", "m2", `{"order":"M-2","lines":[]}`)                    // the schema refuses it
	send("b", "", `{"order":"M-3","lines":[{"sku":"S","qty":2}]}`)   // no id: a new one
	m := waitMessage(t, p, "mqtt:plant-orders:m1")["message"].(map[string]any)
	if m["subject"] != topic+"/a" || m["source"] != "plant" {
		t.Errorf("stored message %v", m)
	}
	if e := waitErrors(t, p, 1); !strings.Contains(e[0], "does not match order.created") || !strings.Contains(e[0], `"message-id":"m2"`) {
		t.Errorf("ERRORS entry %s", e[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for streamMessages(t, p) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// While the node is away the broker keeps its messages.
	send("c", "m4", `{"order":"M-4","lines":[{"sku":"S","qty":4}]}`)
	p = runPlatform(t, config, func(o *Options) { o.DataDir = data })
	waitMessage(t, p, "mqtt:plant-orders:m4")
	if n := streamMessages(t, p); n != 3 {
		t.Errorf("MESSAGES holds %d, want 3 (m1 once, the one without id, m4)", n)
	}
}

// TestNATSSource subscribes to the machine's NATS server: a plain subscription stores what is
// sent and answers requests with the message id, and a stream source consumes a JetStream
// stream with a durable consumer, acknowledging after storing, and picks up after a restart
// what was published while the node was down.
func TestNATSSource(t *testing.T) {
	testutil.RequireService(t, "NATS", "127.0.0.1:4222")
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	run := time.Now().UnixNano()
	stream := fmt.Sprintf("CW_SRC_%d", run)
	subj := fmt.Sprintf("cw.src.%d", run)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subj + ".stream.>"}}); err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(ctx, stream) //nolint:errcheck // best effort
	config := func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "source.yaml"), []byte(fmt.Sprintf(`apiVersion: causeway/v1
kind: System
metadata: {name: plant}
spec:
  nats: {url: "nats://127.0.0.1:4222"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: live}
spec:
  system: plant
  nats: {subject: "%[1]s.live.*", queue: causeway}
  emit:
    type: order.created
    data: {orderId: "${{ .body.order }}", items: "${{ .body.lines }}"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: stored}
spec:
  system: plant
  nats: {stream: %[2]s, subject: "%[1]s.stream.>"}
  emit:
    type: order.created
    data: {orderId: "${{ .body.order }}", items: "${{ .body.lines }}"}
`, subj, stream)), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	p := runPlatform(t, config, func(o *Options) { o.DataDir = data })

	// A request is answered once its message is stored, with its id.
	msg := nats.NewMsg(subj + ".live.a")
	msg.Header.Set(nats.MsgIdHdr, "n1")
	msg.Data = []byte(`{"order":"N-1","lines":[{"sku":"S","qty":1}]}`)
	reply, err := nc.RequestMsg(msg, 5*time.Second)
	if err != nil || string(reply.Data) != `{"id":"nats:live:n1"}` {
		t.Fatalf("reply %v %v", reply, err)
	}
	waitMessage(t, p, "nats:live:n1")
	reply, err = nc.Request(subj+".live.b", []byte(`{"order":"N-2"}`), 5*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), `"reason":"kept in ERRORS"`) {
		t.Fatalf("reply to a bad request %v %v", reply, err)
	}

	for i := range 3 {
		if _, err := js.Publish(ctx, fmt.Sprintf("%s.stream.%d", subj, i), []byte(fmt.Sprintf(`{"order":"S-%d","lines":[{"sku":"S","qty":1}]}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ {
		waitMessage(t, p, fmt.Sprintf("nats:stored:%s:%d", stream, i))
	}
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subj+".stream.x", []byte(`{"order":"S-4","lines":[{"sku":"S","qty":1}]}`)); err != nil {
		t.Fatal(err)
	}
	p = runPlatform(t, config, func(o *Options) { o.DataDir = data })
	waitMessage(t, p, fmt.Sprintf("nats:stored:%s:4", stream))
	time.Sleep(200 * time.Millisecond) // anything sent again would show now
	if n := streamMessages(t, p); n != 5 {
		t.Errorf("MESSAGES holds %d, want 5", n)
	}
	cons, err := js.Consumer(ctx, stream, "causeway-stored")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("the consumer has messages pending: %+v %v", info, err)
	}
}
