package store

import (
	"context"
	"errors"
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
		if err := s.Index(ctx, msgs, events); err != nil {
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
