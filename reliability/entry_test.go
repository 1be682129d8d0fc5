package reliability

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
)

// TestPutShrinksWhatDoesNotFit: an entry larger than the bus carries loses its steps, then
// its older failures, then its message (findable on the bus by its place), and is stored.
func TestPutShrinksWhatDoesNotFit(t *testing.T) {
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Sync: bus.Sync{Interval: time.Second}, MaxMessageBytes: 4096}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	big := json.RawMessage(`"` + strings.Repeat("x", 5000) + `"`)
	q := NewQueue(Options{Bus: b})
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		entry Entry
		check func(*Entry) bool
	}{
		{"steps", Entry{ID: "a", Origin: OriginFlow, Flow: "f", Reason: "r", Steps: big, Message: json.RawMessage(`{"id":"m"}`)},
			func(e *Entry) bool { return e.Steps == nil && e.Message != nil }},
		{"failures", Entry{ID: "b", Origin: OriginFlow, Flow: "f", Reason: "r", Failures: []Failure{{Error: string(big)}, {Error: "last"}}},
			func(e *Entry) bool { return len(e.Failures) == 1 && e.Failures[0].Error == "last" }},
		{"message", Entry{ID: "c", Origin: OriginFlow, Flow: "f", Reason: "r", Message: big, MessageStream: "MESSAGES", MessageSeq: 7},
			func(e *Entry) bool { return e.Message == nil && e.MessageSeq == 7 }},
	} {
		e := tc.entry
		if err := Put(ctx, b, &e, ""); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := q.Get(ctx, tc.entry.ID)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tc.check(got) || got.Fingerprint == "" || got.Seq == 0 {
			t.Errorf("%s: stored %+v", tc.name, got)
		}
	}
	// Too large even bare: an error, nothing stored.
	e := Entry{ID: "d", Origin: OriginFlow, Flow: "f", Reason: string(big)}
	if err := Put(ctx, b, &e, ""); err == nil || !strings.Contains(err.Error(), "larger than the bus carries") {
		t.Errorf("oversized: %v", err)
	}
}

func TestFilterAndFingerprint(t *testing.T) {
	now := time.Now()
	e := &Entry{Origin: OriginFlow, Flow: "ship", System: "erp", Type: "order.paid", Class: ClassTransient, Time: now, Reason: "HTTP 503 for order 1234"}
	e.SetFingerprint()
	other := &Entry{Origin: OriginFlow, Flow: "ship", System: "erp", Type: "order.paid", Class: ClassTransient, Reason: "HTTP 503 for order 99"}
	other.SetFingerprint()
	if e.Fingerprint != other.Fingerprint {
		t.Error("the same failure with other numbers has another fingerprint")
	}
	for _, f := range []Filter{{}, {Flow: "ship"}, {System: "erp", Class: ClassTransient}, {Fingerprint: e.Fingerprint}, {From: now.Add(-time.Second), Until: now.Add(time.Second)}} {
		if !f.Match(e) {
			t.Errorf("%+v does not match", f)
		}
	}
	for _, f := range []Filter{{Flow: "bill"}, {Origin: OriginSource}, {Class: ClassPermanent}, {From: now.Add(time.Second)}, {Until: now}} {
		if f.Match(e) {
			t.Errorf("%+v matches", f)
		}
	}
}
