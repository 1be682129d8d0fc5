package main

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/causeway/causeway/bench/internal/proccpu"
)

// result is what one scenario measured: how many messages were acknowledged in how long,
// and the latency of each acknowledged request.
type result struct {
	messages  int
	elapsed   time.Duration
	latencies []time.Duration
	// indexCatchUp is how long after the load the tracking index had every message.
	indexCatchUp time.Duration
	// cpu is the CPU time the server process spent per message, when cpuOK (the HTTP
	// scenarios, whose server runs apart from the load).
	cpu   proccpu.Times
	cpuOK bool
	// clientCPU is the CPU time the load generator (this process) spent per message, in
	// the same scenarios: on two cores, what it spends the server does not get.
	clientCPU proccpu.Times
}

func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.messages) / r.elapsed.Seconds()
}

func (r *result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	i := int(float64(len(r.latencies)-1) * p / 100)
	return r.latencies[i]
}

func (r *result) merge(o *result) {
	r.messages += o.messages
	r.latencies = append(r.latencies, o.latencies...)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

// fanOut runs clients concurrent loops for d. Each iteration calls step with the client's
// number and the iteration's, which does one request and returns how many messages it
// carried; fanOut times it. The first error stops that client and is returned.
func fanOut(d time.Duration, clients int, step func(c, n int) (int, error)) (*result, error) {
	results := make([]*result, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &result{}
			results[c] = r
			for n := 0; time.Since(start) < d; n++ {
				t0 := time.Now()
				k, err := step(c, n)
				if err != nil {
					errs <- err
					return
				}
				r.latencies = append(r.latencies, time.Since(t0))
				r.messages += k
			}
		}()
	}
	wg.Wait()
	total := &result{elapsed: time.Since(start)}
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for _, r := range results {
		total.merge(r)
	}
	return total, nil
}
