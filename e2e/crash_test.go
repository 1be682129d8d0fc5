package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestKill9LosesNothingAccepted posts messages from concurrent clients (single messages and
// batches), kills the process with SIGKILL in the middle of the load, restarts it on the same
// data directory, and checks that every message that got a 202 is in the stream exactly once
// and can be looked up by id.
func TestKill9LosesNothingAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	stopUnderLoad(t, syscall.SIGKILL)
}

// TestKill9LosesNothingAcceptedWithSyncInterval is the same with --sync interval:1s, where
// batches go to the bus as fast batches (one answer per batch): a process killed with
// SIGKILL loses nothing the operating system has been given, and every batch that got a
// 202 was wholly stored. (A power failure is what the interval risks; docs/durability.md.)
func TestKill9LosesNothingAcceptedWithSyncInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real process")
	}
	stopUnderLoad(t, syscall.SIGKILL, "--sync", "interval:1s")
}

// TestSigtermUnderLoadLosesNothingAccepted stops the node with SIGTERM in the middle of the
// load: in-flight requests finish, the process exits 0, and every 202 is in the stream.
func TestSigtermUnderLoadLosesNothingAccepted(t *testing.T) {
	stopUnderLoad(t, syscall.SIGTERM)
}

// stopUnderLoad posts from 16 clients, stops the node with sig once 1,500 messages have been
// acknowledged, restarts it on the same data directory and checks every acknowledged id is
// stored exactly once and can be looked up. flags go to both starts of the node.
func stopUnderLoad(t *testing.T, sig syscall.Signal, flags ...string) {
	cfg := writeConfig(t, map[string]string{"types.yaml": orderTypes})
	data := t.TempDir()
	n := startNode(t, cfg, data, flags...)

	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		inDoubt  []doubt // requests with their own ids that got no answer
		attempts atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	url := "http://" + n.http + "/v1/messages"
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ { // bounded; the kill ends it long before
				select {
				case <-stop:
					return
				default:
				}
				var status int
				var body map[string]any
				var err error
				attempts.Add(1)
				if c%4 == 0 {
					batch := "["
					for j := range 10 {
						if j > 0 {
							batch += ","
						}
						batch += fmt.Sprintf(`{"source":"e2e","type":"order.created","data":{"orderId":"b%d-%d-%d","total":%d}}`, c, i, j, j)
					}
					status, body, err = postJSON(url, "application/cloudevents-batch+json", batch+"]")
				} else if c%8 == 2 {
					// A batch producer that chooses its ids: a batch without an answer is
					// sent again, whole, after the restart.
					batch := "["
					for j := range 10 {
						if j > 0 {
							batch += ","
						}
						batch += fmt.Sprintf(`{"id":"ownb-%d-%d-%d","source":"e2e","type":"order.created","data":{"orderId":"ob%d-%d-%d","total":%d}}`, c, i, j, c, i, j, j)
					}
					status, body, err = postJSON(url, "application/cloudevents-batch+json", batch+"]")
					if err != nil {
						mu.Lock()
						inDoubt = append(inDoubt, doubt{"application/cloudevents-batch+json", batch + "]"})
						mu.Unlock()
					}
				} else if c%4 == 1 {
					// A producer that chooses its ids, as an at-least-once producer should:
					// what it could not get an answer for, it sends again after the restart.
					msg := fmt.Sprintf(`{"id":"own-%d-%d","source":"e2e","type":"order.created","data":{"orderId":"o%d-%d","total":%d}}`, c, i, c, i, i)
					status, body, err = postJSON(url, "application/cloudevents+json", msg)
					if err != nil {
						mu.Lock()
						inDoubt = append(inDoubt, doubt{"application/cloudevents+json", msg})
						mu.Unlock()
					}
				} else {
					status, body, err = postJSON(url, "application/cloudevents+json",
						fmt.Sprintf(`{"source":"e2e","type":"order.created","data":{"orderId":"s%d-%d","total":%d}}`, c, i, i))
				}
				if err != nil {
					return // the process is gone
				}
				if status == http.StatusServiceUnavailable && sig == syscall.SIGTERM {
					return // the node is stopping and said so; nothing was acknowledged
				}
				if status != http.StatusAccepted {
					t.Errorf("status %d: %v", status, body)
					return
				}
				mu.Lock()
				for _, id := range body["ids"].([]any) {
					acked[id.(string)] = true
				}
				mu.Unlock()
			}
		}()
	}
	// Kill once a good number of messages has been accepted, while clients are still sending.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 1500 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if slices.Contains(flags, "interval:1s") {
		// Batches went to the bus as fast batches: the path this run is about.
		resp, err := http.Get("http://" + n.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !regexp.MustCompile(`(?m)^causeway_bus_fast_batches_total\{stream="MESSAGES"\} [1-9]`).Match(metrics) {
			t.Fatalf("no fast batches before the kill:\n%s", grepLines(string(metrics), "causeway_bus_"))
		}
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-n.exited
	if sig == syscall.SIGTERM && n.exitErr != nil {
		t.Fatalf("exit after SIGTERM under load: %v", n.exitErr)
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	ackedCount := len(acked)
	mu.Unlock()
	if ackedCount < 100 {
		t.Fatalf("only %d messages were accepted before the kill; the test needs load", ackedCount)
	}
	t.Logf("%d requests sent, %d messages acknowledged before %v", attempts.Load(), ackedCount, sig)

	n2 := startNode(t, cfg, data, flags...)

	// Requests that got no answer are sent again with the same ids: whether or not the first
	// attempt was stored before the stop, in part or whole, each message must end up stored
	// once.
	for _, d := range inDoubt {
		status, body, err := postJSON("http://"+n2.http+"/v1/messages", d.contentType, d.body)
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("resending after restart: %d %v %v", status, body, err)
		}
		for _, id := range body["ids"].([]any) {
			acked[id.(string)] = true
		}
	}
	ackedCount = len(acked)
	t.Logf("%d requests without an answer sent again after the restart", len(inDoubt))

	// Every acknowledged id is in the stream, and no id is stored twice.
	nc, err := nats.Connect("nats://" + n2.nats)
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
	info, _ := stream.Info(ctx)
	total := info.State.Msgs
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range total {
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		seen[m.Headers().Get("ce-id")]++
	}
	for id, k := range seen {
		if k > 1 {
			t.Errorf("message %s is stored %d times", id, k)
		}
	}
	missing := 0
	for id := range acked {
		if seen[id] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged message %s is not in the stream", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged messages lost", missing, ackedCount)
	}
	t.Logf("stream holds %d messages: all %d acknowledged, %d more stored whose 202 the stop cut off", total, ackedCount, int(total)-ackedCount)

	// Every acknowledged id can be looked up once the index has caught up after the restart.
	lookupDeadline := time.Now().Add(60 * time.Second)
	for id := range acked {
		for {
			status, body, err := getJSON("http://" + n2.admin + "/v1/messages/" + id)
			if err == nil && status == http.StatusOK {
				if body["id"] != id || body["retained"] != true {
					t.Fatalf("lookup of %s: %v", id, body)
				}
				break
			}
			if time.Now().After(lookupDeadline) {
				t.Fatalf("message %s not found by GET /v1/messages after restart (status %d, %v)", id, status, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// grepLines gives the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// doubt is a request that got no answer, to send again.
type doubt struct{ contentType, body string }

// TestSigtermDrainsAndExitsCleanly checks that SIGTERM lets the node finish and exit 0.
func TestSigtermDrainsAndExitsCleanly(t *testing.T) {
	cfg := writeConfig(t, map[string]string{"types.yaml": orderTypes})
	n := startNode(t, cfg, t.TempDir())
	status, body, err := postJSON("http://"+n.http+"/v1/messages", "application/json", `{"source":"e2e","type":"order.created","data":{"orderId":"x","total":1}}`)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("post: %d %v %v", status, body, err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("causeway serve did not exit within 30s of SIGTERM")
	}
	if n.exitErr != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", n.exitErr, n.logs.String())
	}
	stopped := false
	for _, rec := range n.logLines() {
		if rec["msg"] == "causeway stopped" {
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("no clean-stop log record:\n%s", n.logs.String())
	}
}
