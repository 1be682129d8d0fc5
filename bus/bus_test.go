package bus

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/message"
	"github.com/nats-io/nats.go/jetstream"
)

// runBus starts an embedded bus on a temporary directory and closes it when the test ends.
func runBus(t *testing.T, dir string, sync Sync) *Bus {
	t.Helper()
	return runBusWith(t, Options{DataDir: dir, Sync: sync})
}

// runBusWith starts a bus on the embedded server with opts, closed when the test ends.
func runBusWith(t *testing.T, opts Options) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if opts.NodeName == "" {
		opts.NodeName = "test"
	}
	b, err := Open(ctx, opts, nil)
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func streamCount(t *testing.T, b *Bus, name string) uint64 {
	t.Helper()
	s, err := b.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishDeduplicatesAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b := runBus(t, dir, Sync{Always: true})
	ev := &message.Event{Source: "test", Type: "order.created", Data: json.RawMessage(`{"n":1}`)}
	ev.FillDefaults(time.Now())
	ctx := context.Background()
	first, err := b.Publish(ctx, ev, "n1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Publish(ctx, ev, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("re-sent id: got duplicate=%v seq=%d, want a duplicate of seq %d", again.Duplicate, again.Sequence, first.Sequence)
	}
	if n := streamCount(t, b, StreamMessages); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
	b.Close()

	b = runBus(t, dir, Sync{Always: true})
	if n := streamCount(t, b, StreamMessages); n != 1 {
		t.Fatalf("after restart the stream holds %d messages, want 1", n)
	}
	s, _ := b.Stream(ctx, StreamMessages)
	raw, err := s.GetMsg(ctx, first.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	got, err := message.FromNATS(raw.Header, raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Type != ev.Type || string(got.Data) != `{"n":1}` || raw.Header.Get(message.HeaderNode) != "n1" {
		t.Fatalf("stored message differs: %+v", got)
	}
}

func TestParseSync(t *testing.T) {
	for in, want := range map[string]Sync{"always": {Always: true}, "interval:1s": {Interval: time.Second}, "interval:250ms": {Interval: 250 * time.Millisecond}} {
		got, err := ParseSync(in)
		if err != nil || got != want {
			t.Errorf("ParseSync(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("Sync %v prints %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"", "sometimes", "interval:", "interval:-1s", "interval:abc"} {
		if _, err := ParseSync(bad); err == nil {
			t.Errorf("ParseSync(%q) accepted", bad)
		}
	}
}

func TestStreamsAreIdempotentAndInternalOnesAsync(t *testing.T) {
	b := runBus(t, t.TempDir(), Sync{Interval: time.Second})
	if err := b.ensureStreams(context.Background()); err != nil {
		t.Fatalf("second ensureStreams: %v", err)
	}
	s, err := b.Stream(context.Background(), StreamTracking)
	if err != nil {
		t.Fatal(err)
	}
	if pm := s.CachedInfo().Config.PersistMode; pm != jetstream.AsyncPersistMode {
		t.Fatalf("TRACKING persist mode %v, want async", pm)
	}
	if b.ClientURL() != "" {
		t.Fatalf("embedded bus listens on %s without --nats-listen", b.ClientURL())
	}
}

// TestSyncPolicyReachesTheServer checks that the fsync policy the node is given is the one the
// JetStream server applies: the guarantee of a 202 rests on it.
func TestSyncPolicyReachesTheServer(t *testing.T) {
	always := runBus(t, t.TempDir(), Sync{})
	if cfg := always.srv.JetStreamConfig(); cfg == nil || !cfg.SyncAlways {
		t.Fatalf("default sync policy: server has %+v, want sync_always", cfg)
	}
	lax := runBus(t, t.TempDir(), Sync{Interval: 3 * time.Second})
	if cfg := lax.srv.JetStreamConfig(); cfg == nil || cfg.SyncAlways || cfg.SyncInterval != 3*time.Second {
		t.Fatalf("interval:3s: server has %+v", cfg)
	}
}

// TestServerLoggerNeverExits checks that the embedded server's fatal log level is logged and
// returns: a library must never end the platform's process.
func TestServerLoggerNeverExits(t *testing.T) {
	var buf strings.Builder
	l := &natsLogger{log: slog.New(slog.NewTextHandler(&buf, nil))}
	l.Fatalf("store %s failed", "x")
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "store x failed") {
		t.Fatalf("fatal message not logged as an error: %q", buf.String())
	}
}
