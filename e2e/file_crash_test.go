package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestFileSourceSurvivesKill9 drops jsonl files into a directory continuously while a node
// picking them up is killed with SIGKILL and restarted several times, and checks that every
// record became exactly one stored message and every file ended in processed/.
func TestFileSourceSurvivesKill9(t *testing.T) {
	drop := t.TempDir()
	cfg := writeConfig(t, map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: line.added}
spec:
  schema: {type: object, required: [file, n]}
---
apiVersion: causeway/v1
kind: System
metadata: {name: drop}
spec:
  files: {dir: "` + drop + `"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: lines}
spec:
  system: drop
  file: {pattern: "*.jsonl", format: jsonl, interval: 20ms, settle: 0s}
  emit:
    type: line.added
`})
	data := t.TempDir()

	// The writer: a bounded number of files, each written under a hidden name and renamed,
	// while the node comes and goes.
	const files, perFile = 60, 50
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for f := range files {
			var b strings.Builder
			for n := range perFile {
				fmt.Fprintf(&b, "{\"file\":%d,\"n\":%d}\n", f, n)
			}
			tmp := filepath.Join(drop, fmt.Sprintf(".f%03d.tmp", f))
			if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
				done <- err
				return
			}
			if err := os.Rename(tmp, filepath.Join(drop, fmt.Sprintf("f%03d.jsonl", f))); err != nil {
				done <- err
				return
			}
			written.Add(1)
			time.Sleep(60 * time.Millisecond)
		}
		done <- nil
	}()
	var n *node
	for round := range 4 {
		n = startNode(t, cfg, data)
		time.Sleep(time.Duration(300+150*round) * time.Millisecond)
		if round < 3 {
			n.kill()
			t.Logf("killed after %d files written", written.Load())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool {
		entries, _ := os.ReadDir(filepath.Join(drop, "processed"))
		return len(entries) == files
	}, "every file to move to processed/")

	nc, err := nats.Connect("nats://" + n.nats)
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
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cw.msg.line.added"}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx)
	seen := map[string]int{}
	for range info.State.Msgs {
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		seen[string(m.Data())]++
	}
	for f := range files {
		for i := range perFile {
			rec := fmt.Sprintf(`{"file":%d,"n":%d}`, f, i)
			if c := seen[rec]; c != 1 {
				t.Errorf("record %s became %d messages", rec, c)
			}
		}
	}
	if info.State.Msgs != files*perFile {
		t.Errorf("MESSAGES holds %d, want %d", info.State.Msgs, files*perFile)
	}
	t.Logf("%d files of %d records, %d messages, 3 kills", files, perFile, len(seen))
}
