package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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
		if err := s.Index(ctx, Position{Stream: "MESSAGES", Epoch: "e1", Seq: 7}, msgs, events); err != nil {
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
	if err := s.Index(ctx, Position{Stream: "MESSAGES", Seq: 150}, msgs[:150], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Index(ctx, Position{Stream: "MESSAGES", Seq: uint64(len(msgs))}, msgs, nil); err != nil {
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
