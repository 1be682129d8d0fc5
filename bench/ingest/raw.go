package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// payload is a realistic order event's data, the same in every scenario.
const payload = `{"orderId":"A-100234","customer":{"id":"C-88412","email":"jane.doe@example.com","name":"Jane Doe"},"items":[{"sku":"SKU-4411","qty":2,"price":19.9},{"sku":"SKU-1002","qty":1,"price":129}],"total":168.8,"currency":"EUR","channel":"web"}`

// openRaw starts an embedded bus with Causeway's streams; the raw scenarios publish to a
// stream of their own with the same settings as MESSAGES, so that only the platform's own
// work is missing from them.
//
// With tcp, the publisher connects through a loopback TCP listener of the server, as a
// client in another process would, instead of in-process.
func openRaw(ctx context.Context, dir string, policy bus.Sync, tcp bool) (*bus.Bus, jetstream.JetStream, error) {
	opts := bus.Options{DataDir: dir, Sync: policy, NodeName: "bench"}
	if tcp {
		opts.Listen = "127.0.0.1:0"
	}
	b, err := bus.Open(ctx, opts, nil)
	if err != nil {
		return nil, nil, err
	}
	js := b.JetStream()
	if tcp {
		nc, err := nats.Connect(b.ClientURL())
		if err != nil {
			b.Close()
			return nil, nil, err
		}
		if js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
			b.Close()
			return nil, nil, err
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Close()
		return nil, nil, err
	}
	return b, js, nil
}

// rawSync publishes one message at a time, waiting for each acknowledgement.
func rawSync(ctx context.Context, dir string, policy bus.Sync, d time.Duration) (*result, error) {
	b, js, err := openRaw(ctx, dir, policy, false)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	r := &result{}
	data := []byte(payload)
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		t0 := time.Now()
		if _, err := js.Publish(ctx, "raw.order.created", data, jetstream.WithMsgID(fmt.Sprint("m", i))); err != nil {
			return nil, err
		}
		r.latencies = append(r.latencies, time.Since(t0))
		r.messages++
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// rawAsync keeps window publishes in flight and records each one's time to acknowledgement.
func rawAsync(ctx context.Context, dir string, policy bus.Sync, d time.Duration, window int, tcp bool) (*result, error) {
	b, js, err := openRaw(ctx, dir, policy, tcp)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	type inflight struct {
		f  jetstream.PubAckFuture
		t0 time.Time
	}
	pending := make(chan inflight, window)
	done := make(chan *result)
	go func() {
		r := &result{}
		for p := range pending {
			select {
			case <-p.f.Ok():
				r.latencies = append(r.latencies, time.Since(p.t0))
				r.messages++
			case <-p.f.Err():
			}
		}
		done <- r
	}()
	data := []byte(payload)
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		f, err := js.PublishAsync("raw.order.created", data, jetstream.WithMsgID(fmt.Sprint("m", i)))
		if err != nil {
			close(pending)
			<-done
			return nil, err
		}
		pending <- inflight{f: f, t0: time.Now()}
	}
	close(pending)
	r := <-done
	r.elapsed = time.Since(start)
	return r, nil
}

// rawConcurrent has clients goroutines each publishing one message at a time and waiting
// for its acknowledgement: the publish pattern of concurrent single-message HTTP requests,
// without HTTP.
func rawConcurrent(ctx context.Context, dir string, policy bus.Sync, d time.Duration, clients int) (*result, error) {
	b, js, err := openRaw(ctx, dir, policy, false)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data := []byte(payload)
	return fanOut(d, clients, func(c, n int) (int, error) {
		_, err := js.Publish(ctx, "raw.order.created", data, jetstream.WithMsgID(fmt.Sprint("c", c, "-", n)))
		return 1, err
	})
}

// rawAtomic publishes atomic batches of size messages, keeping window messages in flight,
// and records each batch's time to its commit acknowledgement once per message in it. It is
// what the server alone does with the group commit that Causeway's ingestion uses.
func rawAtomic(ctx context.Context, dir string, policy bus.Sync, d time.Duration, window, size int) (*result, error) {
	b, js, err := openRaw(ctx, dir, policy, false)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute, AllowAtomicPublish: true}); err != nil {
		return nil, err
	}
	nc := js.Conn()
	inflight := make(chan struct{}, max(1, window/size))
	type ack struct {
		t0   time.Time
		data []byte
	}
	acks := make(chan ack, 1024)
	var mu sync.Mutex
	starts := map[string]time.Time{}
	sub, err := nc.Subscribe("_bench.ack.*", func(m *nats.Msg) {
		mu.Lock()
		t0 := starts[m.Subject]
		delete(starts, m.Subject)
		mu.Unlock()
		acks <- ack{t0, m.Data}
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes with the bus
	done := make(chan *result)
	var refused error
	go func() {
		r := &result{}
		for a := range acks {
			if bytes.Contains(a.data, []byte(`"error"`)) {
				refused = fmt.Errorf("batch refused: %s", a.data)
			} else {
				l := time.Since(a.t0)
				for range size {
					r.latencies = append(r.latencies, l)
				}
				r.messages += size
			}
			<-inflight
		}
		done <- r
	}()
	data := []byte(payload)
	start := time.Now()
	n := 0
	for k := 0; time.Since(start) < d; k++ {
		inflight <- struct{}{}
		id := fmt.Sprint("b", k)
		reply := fmt.Sprint("_bench.ack.", k)
		mu.Lock()
		starts[reply] = time.Now()
		mu.Unlock()
		for i := 1; i <= size; i++ {
			m := &nats.Msg{Subject: "raw.order.created", Data: data, Header: nats.Header{}}
			m.Header.Set("Nats-Batch-Id", id)
			m.Header.Set("Nats-Batch-Sequence", fmt.Sprint(i))
			m.Header.Set("Nats-Msg-Id", fmt.Sprint("m", n))
			n++
			if i == size {
				m.Header.Set("Nats-Batch-Commit", "1")
				m.Reply = reply
			}
			if err := nc.PublishMsg(m); err != nil {
				return nil, err
			}
		}
	}
	// Wait for the batches in flight: all slots free again.
	for range cap(inflight) {
		inflight <- struct{}{}
	}
	close(acks)
	r := <-done
	r.elapsed = time.Since(start)
	if refused != nil {
		return nil, refused
	}
	return r, nil
}
