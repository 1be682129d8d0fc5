// Command flow measures a one-step Causeway flow (filter, jq mapping, HTTP call to a local
// server) against a hand-written Go consumer doing the same work on the same stream, in the
// same run, and prints runs/s and end-to-end latency percentiles with the ratio.
//
//	go run ./bench/flow -duration 10s
//
// Each scenario gets a fresh embedded bus. A producer publishes order messages as fast as
// the consumer keeps up (at most -backlog unprocessed); the target records, for every call,
// the time since the message was published: the end-to-end latency.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/message"
)

func main() {
	d := flag.Duration("duration", 5*time.Second, "how long each scenario runs")
	conc := flag.Int("concurrency", 16, "runs in progress at once, for the flow and the reference")
	backlog := flag.Int("backlog", 2000, "most messages published and not yet processed")
	syncPolicy := flag.String("sync", "always", "the bus's sync policy: always or interval:DURATION")
	only := flag.String("only", "", "run only this scenario: reference or flow")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	policy, err := bus.ParseSync(*syncPolicy)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer stopProfile()
	fmt.Printf("Flow benchmark, %s per scenario, concurrency %d, --sync %s, %s\n\n", *d, *conc, policy, time.Now().UTC().Format(time.RFC3339))
	fmt.Println("| scenario | runs/s | p50 | p99 | vs reference |")
	fmt.Println("|---|---:|---:|---:|---|")
	var ref float64
	for _, s := range []struct {
		name, what string
		run        func(b *bus.Bus, target string) (stop func(), err error)
	}{
		{"reference", "hand-written Go consumer: decode, filter, mapping, HTTP call, ack", func(b *bus.Bus, target string) (func(), error) {
			return reference(b, target, *conc)
		}},
		{"flow", "Causeway flow: filter, jq mapping, call step; journal and run history on", func(b *bus.Bus, target string) (func(), error) {
			return startFlow(b, target, *conc)
		}},
	} {
		if *only != "" && *only != s.name {
			continue
		}
		r, err := scenario(policy, *d, *backlog, s.run)
		if err != nil {
			fmt.Fprintln(os.Stderr, s.name+":", err)
			os.Exit(1)
		}
		vs := "reference"
		if s.name != "reference" {
			vs = "(reference not run)"
			if ref > 0 {
				vs = fmt.Sprintf("%.0f%% of reference", 100*r.rate/ref)
			}
		} else {
			ref = r.rate
		}
		fmt.Printf("| %s: %s | %.0f | %s | %s | %s |\n", s.name, s.what, r.rate, r.p50, r.p99, vs)
	}
}

type result struct {
	rate     float64
	p50, p99 time.Duration
}

// payload is the order every message carries.
const payload = `{"orderId":"A-100234","customer":{"id":"C-88412","email":"jane.doe@example.com"},"items":[{"sku":"SKU-4411","qty":2,"price":19.9},{"sku":"SKU-1002","qty":1,"price":129}],"total":168.8,"currency":"EUR"}`

// scenario runs one consumer against a fresh bus and target for d, and measures.
func scenario(policy bus.Sync, d time.Duration, backlog int, start func(b *bus.Bus, target string) (func(), error)) (*result, error) {
	dir, err := os.MkdirTemp("", "causeway-bench-flow-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := bus.Open(context.Background(), bus.Options{DataDir: dir, Sync: policy, NodeName: "bench"}, nil)
	if err != nil {
		return nil, err
	}
	defer b.Close()

	var mu sync.Mutex
	var lat []time.Duration
	var done atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Sent int64 `json:"sent"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		l := time.Since(time.Unix(0, body.Sent))
		mu.Lock()
		lat = append(lat, l)
		mu.Unlock()
		done.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer target.Close()
	stop, err := start(b, target.URL)
	if err != nil {
		return nil, err
	}
	defer stop()

	// The producer: publish as fast as the consumer keeps up.
	ctx := context.Background()
	begin := time.Now()
	var sent int64
	for time.Since(begin) < d {
		if sent-done.Load() >= int64(backlog) {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		batch := make([]*message.Event, 0, 50)
		for range 50 {
			data := payload[:len(payload)-1] + `,"sent":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`
			ev := &message.Event{Source: "bench", Type: "order.created", Data: json.RawMessage(data)}
			ev.FillDefaults(time.Now())
			batch = append(batch, ev)
		}
		if err := b.PublishAll(ctx, batch, "bench"); err != nil {
			return nil, err
		}
		sent += int64(len(batch))
	}
	// Let the backlog drain, so that every published message is counted.
	deadline := time.Now().Add(2 * time.Minute)
	for done.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(begin)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	r := &result{rate: float64(done.Load()) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond)
	}
	return r, nil
}

// reference is the hand-written consumer: the same filter and mapping in Go, the same call.
func reference(b *bus.Bus, target string, conc int) (func(), error) {
	ctx := context.Background()
	cons, err := b.JetStream().CreateOrUpdateConsumer(ctx, bus.StreamMessages, jetstream.ConsumerConfig{
		Durable: "reference", FilterSubject: bus.Subject("order.created"), AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: conc, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	sem := make(chan struct{}, conc)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			ev, err := message.FromNATS(m.Headers(), m.Data())
			if err != nil {
				_ = m.Term()
				return
			}
			var order struct {
				OrderID string  `json:"orderId"`
				Total   float64 `json:"total"`
				Sent    int64   `json:"sent"`
				Items   []struct {
					Qty int `json:"qty"`
				} `json:"items"`
			}
			if json.Unmarshal(ev.Data, &order) != nil || order.Total <= 0 {
				_ = m.Ack()
				return
			}
			lines := 0
			for _, it := range order.Items {
				lines += it.Qty
			}
			body, _ := json.Marshal(map[string]any{"id": order.OrderID, "lines": lines, "sent": order.Sent})
			resp, err := client.Post(target+"/orders/"+order.OrderID+"/ship", "application/json", bytesReader(body))
			if err != nil {
				_ = m.Nak()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			_ = m.Ack()
		}()
	})
	if err != nil {
		return nil, err
	}
	return cc.Stop, nil
}

// startFlow runs the same work as a Causeway flow, with the engine as the platform runs it.
func startFlow(b *bus.Bus, target string, conc int) (func(), error) {
	dir, err := os.MkdirTemp("", "causeway-bench-flow-defs-")
	if err != nil {
		return nil, err
	}
	defs := `apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.created}
spec:
  schema: {type: object}
---
apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  http: {baseURL: "` + target + `"}
  operations:
    ship: {http: {method: POST, path: "/orders/{orderId}/ship"}}
---
apiVersion: causeway/v1
kind: Flow
metadata: {name: ship}
spec:
  trigger:
    message: {types: [order.created], filter: .data.total > 0}
  concurrency: ` + strconv.Itoa(conc) + `
  steps:
    - id: ship
      call: erp.ship
      with:
        orderId: ${{ .data.orderId }}
        body: '${{ {id: .data.orderId, lines: (.data.items | map(.qty) | add), sent: .data.sent} }}'
`
	if err := os.WriteFile(filepath.Join(dir, "defs.yaml"), []byte(defs), 0o644); err != nil {
		return nil, err
	}
	cfg, err := config.Load(dir, config.Options{Registry: kinds.Default()})
	if err != nil {
		return nil, err
	}
	e, err := flow.NewEngine(context.Background(), flow.Options{Bus: b, Config: cfg, Node: "bench", Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	if err := e.Start(context.Background()); err != nil {
		return nil, err
	}
	return func() { e.Stop(5 * time.Second); os.RemoveAll(dir) }, nil
}

func init() {
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		startProfile(p)
	}
}
