package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIndexIsIdempotentAndTimelineOrdered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "tracking.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
	msgs := []Message{{ID: "m1", Type: "order.created", Source: "shop", CorrelationID: "m1", Stream: "MESSAGES", Sequence: 7, AcceptedAt: t0, Node: "n1"}}
	events := []Event{
		{MessageID: "m1", Event: "delivered", Time: t0.Add(time.Second), Stream: "TRACKING", Sequence: 3},
	}
	for range 2 { // the second time is a redelivery and must change nothing
		if err := s.Index(ctx, Position{Stream: "MESSAGES", Epoch: "e1", Seq: 7}, Batch{Messages: msgs, Events: events}); err != nil {
			t.Fatal(err)
		}
	}
	m, tl, err := s.Message(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Sequence != 7 || !m.AcceptedAt.Equal(t0) || m.Node != "n1" || m.Type != "order.created" {
		t.Fatalf("entry: %+v", m)
	}
	if len(tl) != 2 || tl[0].Event != "accepted" || tl[0].Node != "n1" || !tl[0].Time.Equal(t0) || tl[1].Event != "delivered" {
		t.Fatalf("timeline: %+v", tl)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Fatalf("count %d", n)
	}
	if pos, err := s.Position(ctx, "MESSAGES"); err != nil || pos != (Position{Stream: "MESSAGES", Epoch: "e1", Seq: 7}) {
		t.Fatalf("position %+v %v, want seq 7 of epoch e1", pos, err)
	}
	if pos, err := s.Position(ctx, "TRACKING"); err != nil || pos.Seq != 0 || pos.Epoch != "" {
		t.Fatalf("position of a stream never indexed: %+v %v", pos, err)
	}
	if _, _, err := s.Message(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	s.Close()

	// The index persists across a reopen.
	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.Count(ctx); n != 1 {
		t.Fatalf("after reopen: count %d", n)
	}
}

// TestIndexManyRows crosses the rows-per-statement boundary, with duplicates inside and
// across batches, as a redelivered stream would produce.
func TestIndexManyRows(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var msgs []Message
	for i := range 2*rowsPerInsert + 7 {
		msgs = append(msgs, Message{ID: fmt.Sprintf("m%04d", i), Type: "t", Source: "s", Stream: "MESSAGES", Sequence: uint64(i + 1), AcceptedAt: time.Unix(int64(i), 0)})
	}
	if err := s.Index(ctx, Position{Stream: "MESSAGES", Seq: 150}, Batch{Messages: msgs[:150]}); err != nil {
		t.Fatal(err)
	}
	if err := s.Index(ctx, Position{Stream: "MESSAGES", Seq: uint64(len(msgs))}, Batch{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(ctx); n != int64(len(msgs)) {
		t.Fatalf("count %d, want %d", n, len(msgs))
	}
	m, _, err := s.Message(ctx, "m0206")
	if err != nil || m.Sequence != 207 {
		t.Fatalf("last row: %+v %v", m, err)
	}
}

// TestRunsKeepTheLatestEntry indexes a run's journal entries out of order, as a re-read of
// the stream would, and checks that the row holds the latest state, and the filters.
func TestRunsKeepTheLatestEntry(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	run := func(seq uint64, status string) Run {
		return Run{ID: "r1", Flow: "ship", Status: status, Started: t0, Key: "cust-1", CorrelationID: "c1", TriggerMessageID: "m1", Stream: "KV_CW_RUNS", Sequence: seq}
	}
	other := Run{ID: "r2", Flow: "bill", Status: "failed", Started: t0.Add(time.Hour), Error: "boom", Stream: "KV_CW_RUNS", Sequence: 3}
	for _, b := range []Batch{
		{Runs: []Run{run(5, "running"), other}},
		{Runs: []Run{run(9, "succeeded")}},
		{Runs: []Run{run(7, "running")}}, // an older entry read again
	} {
		if err := s.Index(ctx, Position{Stream: "KV_CW_RUNS", Seq: 9}, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f    RunFilter
		want []string
	}{
		{RunFilter{}, []string{"r2", "r1"}},
		{RunFilter{Flow: "ship"}, []string{"r1"}},
		{RunFilter{Status: "succeeded"}, []string{"r1"}},
		{RunFilter{Status: "running"}, nil},
		{RunFilter{Key: "cust-1"}, []string{"r1"}},
		{RunFilter{CorrelationID: "c1", TriggerMessageID: "m1"}, []string{"r1"}},
		{RunFilter{From: t0.Add(time.Minute)}, []string{"r2"}},
		{RunFilter{To: t0.Add(time.Minute)}, []string{"r1"}},
		{RunFilter{Limit: 1}, []string{"r2"}},
	} {
		runs, err := s.Runs(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%+v: got %v, want %v", tc.f, got, tc.want)
		}
	}
	runs, _ := s.Runs(ctx, RunFilter{Flow: "bill"})
	if len(runs) != 1 || runs[0].Error != "boom" || !runs[0].Started.Equal(t0.Add(time.Hour)) || !runs[0].Ended.IsZero() {
		t.Errorf("row %+v", runs)
	}
}

// TestPrune forgets what is older than the cutoff, and keeps the rest.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old, recent := time.Now().Add(-10*24*time.Hour), time.Now()
	b := Batch{
		Messages: []Message{{ID: "old", Type: "t", Source: "s", Stream: "MESSAGES", Sequence: 1, AcceptedAt: old}, {ID: "new", Type: "t", Source: "s", Stream: "MESSAGES", Sequence: 2, AcceptedAt: recent}},
		Events:   []Event{{MessageID: "old", Event: "delivered", Time: old, Stream: "TRACKING", Sequence: 1}},
		Runs:     []Run{{ID: "r-old", Flow: "f", Status: "succeeded", Started: old, Sequence: 1}, {ID: "r-new", Flow: "f", Status: "succeeded", Started: recent, Sequence: 2}},
	}
	if err := s.Index(ctx, Position{Stream: "MESSAGES", Seq: 2}, b); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx, time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("pruned %d rows (%v), want 3", n, err)
	}
	if _, _, err := s.Message(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old message still indexed: %v", err)
	}
	if _, _, err := s.Message(ctx, "new"); err != nil {
		t.Errorf("recent message: %v", err)
	}
	runs, _ := s.Runs(ctx, RunFilter{})
	if len(runs) != 1 || runs[0].ID != "r-new" {
		t.Errorf("runs %v", runs)
	}
}

// TestIndexSharedValues indexes messages whose values are the chunk's (which the insert
// shares) and other ones, in full chunks and a partial one, and reads every row back as it
// was given.
func TestIndexSharedValues(t *testing.T) {
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	pick := func(i int, vs ...string) string { return vs[i%len(vs)] }
	var msgs []Message
	for i := range rowsPerInsert + 37 {
		id := fmt.Sprintf("m%04d", i)
		m := Message{ID: id, Type: pick(i, "order.created", "order.created", "order.paid", ""),
			Source: pick(i/2, "shop", "erp", "shop", "order.created"), Subject: pick(i/3, "", "", "A-1", "shop"),
			CorrelationID: pick(i, id, id, "corr-1", "", "m0000"), Stream: pick(i/5, "MESSAGES", "MESSAGES", "OTHER"),
			Sequence: uint64(i + 1), AcceptedAt: time.Unix(1_700_000_000, int64(i)).UTC(), Node: pick(i/7, "node-a", "node-b", "")}
		msgs = append(msgs, m)
	}
	if err := s.Index(ctx, Position{Stream: "MESSAGES", Seq: uint64(len(msgs))}, Batch{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	for _, want := range msgs {
		got, _, err := s.Message(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if *got != want {
			t.Fatalf("read back %+v, want %+v", *got, want)
		}
	}
}

// BenchmarkIndexMessages indexes batches of 1,000 messages of one type, source and node,
// as the indexer does under ingestion.
func BenchmarkIndexMessages(b *testing.B) {
	b.ReportAllocs()
	benchIndex(b, 1000, func(seq uint64) string { return fmt.Sprintf("01JB%022d", seq) })
}

// BenchmarkIndexMessageIDs indexes transactions of 600 messages (what the indexer writes
// under load) whose ids come in three orders: ascending (ids Causeway makes), from 64
// producers counting each on its own (bench/ingest's default), and random (the UUIDs
// CloudEvents SDKs make). The table grows to b.N × 600 rows.
func BenchmarkIndexMessageIDs(b *testing.B) {
	for _, o := range []struct {
		order string
		id    func(seq uint64) string
	}{
		{"ascending", func(seq uint64) string { return fmt.Sprintf("01JB%022d", seq) }},
		{"producers", func(seq uint64) string { return fmt.Sprintf("c%d-%d-0", seq%64, seq/64) }},
		{"random", randomID},
	} {
		b.Run(o.order, func(b *testing.B) { benchIndex(b, 600, o.id) })
	}
}

// BenchmarkIndexTransactionSize indexes 600,000 messages with random ids (version 4
// UUIDs) into a new index, in transactions of 1,000, 5,000 and 20,000: what the tracking
// indexer gains when it catches up in large transactions (tracking.maxCatchUp). Run it
// with -benchtime 1x.
func BenchmarkIndexTransactionSize(b *testing.B) {
	const rows = 600000
	for _, batch := range []int{1000, 5000, 20000} {
		b.Run(fmt.Sprintf("tx%d", batch), func(b *testing.B) {
			n := 0
			for b.Loop() {
				indexRows(b, batch, rows, randomID)
				n += rows
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/message")
		})
	}
}

// indexRows indexes rows messages with ids id(seq) into a new index, in transactions of
// batch.
func indexRows(b *testing.B, batch, rows int, id func(uint64) string) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "t.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	msgs := make([]Message, batch)
	for seq := uint64(0); seq < uint64(rows); {
		for i := range msgs {
			seq++
			id := id(seq)
			msgs[i] = Message{ID: id, Type: "order.created", Source: "bench", CorrelationID: id, Stream: "MESSAGES",
				Sequence: seq, AcceptedAt: time.Unix(0, int64(seq)), Node: "node-a"}
		}
		if err := s.Index(context.Background(), Position{Stream: "MESSAGES", Seq: seq}, Batch{Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
}

// randomID returns a random version 4 UUID, as the CloudEvents SDKs make message ids.
func randomID(uint64) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rand.Uint32(), rand.Uint32()&0xffff, rand.Uint32()&0xfff, rand.Uint32()&0xfff, rand.Uint64()&0xffffffffffff)
}

// benchIndex indexes transactions of batch messages of one type, source and node, the
// message with stream sequence seq having the id id(seq), and reports the time per message.
func benchIndex(b *testing.B, batch int, id func(seq uint64) string) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "t.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	msgs := make([]Message, batch)
	seq := uint64(0)
	for b.Loop() {
		for i := range msgs {
			seq++
			id := id(seq)
			msgs[i] = Message{ID: id, Type: "order.created", Source: "bench", CorrelationID: id, Stream: "MESSAGES",
				Sequence: seq, AcceptedAt: time.Unix(0, int64(seq)), Node: "node-a"}
		}
		if err := s.Index(ctx, Position{Stream: "MESSAGES", Seq: seq}, Batch{Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq), "ns/message")
}
