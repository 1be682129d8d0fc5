package main

import (
	"testing"
	"time"
)

// TestParseWrk reads the figures out of a report as wrk 4.1 prints it with --latency.
func TestParseWrk(t *testing.T) {
	const out = `Running 3s test @ http://127.0.0.1:40123/items/42
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21ms    1.05ms  21.37ms   88.62%
    Req/Sec    27.33k     2.13k   31.40k    71.67%
  Latency Distribution
     50%  512.00us
     75%    1.40ms
     90%    2.31ms
     99%    1.02s
  163183 requests in 3.00s, 24.44MB read
  Non-2xx or 3xx responses: 12
  Socket errors: connect 0, read 2, write 0, timeout 0
Requests/sec:  54371.24
Transfer/sec:      8.14MB
`
	l, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if l.rps != 54371.24 || l.p50 != 512*time.Microsecond || l.p99 != 1020*time.Millisecond ||
		l.requests != 163183 || l.non2xx != 12 || l.socketErrors != "connect 0, read 2, write 0, timeout 0" {
		t.Errorf("parsed %+v", *l)
	}
	if _, err := parseWrk("Requests/sec: 1\n"); err == nil {
		t.Error("a report without percentiles parsed")
	}
}

// TestMedianRound picks the round with the median throughput and keeps every round's.
func TestMedianRound(t *testing.T) {
	runs := []*outcome{{load: &load{rps: 300}}, {load: &load{rps: 100}}, {load: &load{rps: 200, p50: 7}}}
	m := median(runs)
	if m.load.rps != 200 || m.load.p50 != 7 || len(m.rounds) != 3 || m.rounds[0] != 300 {
		t.Fatalf("median: %+v %v", m.load, m.rounds)
	}
	failed := &outcome{load: &load{rps: 1}, failed: "non-2xx"}
	if median([]*outcome{runs[0], failed}) != failed {
		t.Fatal("a failed round does not fail the scenario")
	}
}
