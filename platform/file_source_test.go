package platform

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/message"
)

// TestFileSource drops json, jsonl and csv files into a system's directory: each record
// becomes a message with an id made of the file's name, modification time and record
// number; an unreadable file goes to failed/ and a record the schema refuses to ERRORS;
// handled files move to processed/ (a second file of one name is kept beside the first),
// and a file whose name does not match stays where it is.
func TestFileSource(t *testing.T) {
	root := t.TempDir()
	in, csvDir := filepath.Join(root, "in"), filepath.Join(root, "csv")
	for _, d := range []string{in, csvDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(in, "a.json"), `{"order":"F-1","lines":[{"sku":"S","qty":1}]}`)
	write(filepath.Join(in, "b.json"), `{"order":"F-2",`)
	write(filepath.Join(in, "c.jsonl"), "{\"order\":\"L-1\",\"lines\":[{\"sku\":\"S\",\"qty\":1}]}\n\n{\"order\":\"L-2\",\"lines\":[{\"sku\":\"S\",\"qty\":0}]}\n{\"order\":\"L-3\",\"lines\":[{\"sku\":\"S\",\"qty\":3}]}\n")
	write(filepath.Join(in, "readme.txt"), "not for us")
	write(filepath.Join(in, ".part.json"), `{"order":`) // a hidden file being written
	write(filepath.Join(in, "big.json"), `{"order":"F-9","lines":[{"sku":"`+strings.Repeat("S", 300)+`","qty":1}]}`)
	write(filepath.Join(csvDir, "d.csv"), "order,sku,qty\nC-1,S-1,2\nC-2,S-2,5\n")

	p := runPlatform(t, func(o *Options) {
		write(filepath.Join(o.ConfigDir, "source.yaml"), `apiVersion: causeway/v1
kind: System
metadata: {name: drop}
spec:
  files: {dir: `+root+`}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: drop-json}
spec:
  system: drop
  file: {dir: in, pattern: "*.json", interval: 50ms, settle: 10ms, maxBytes: 200}
  emit:
    type: order.created
    data: {orderId: "${{ .body.order }}", items: "${{ .body.lines }}"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: drop-lines}
spec:
  system: drop
  file: {dir: in, pattern: "*.jsonl", format: jsonl, interval: 50ms, settle: 10ms}
  emit:
    type: order.created
    subject: "${{ .file.name }}/${{ .index }}"
    key: ${{ .record.order }}
    data: {orderId: "${{ .record.order }}", items: "${{ .record.lines }}"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: drop-csv}
spec:
  system: drop
  file: {dir: csv, format: csv, interval: 50ms, settle: 10ms}
  emit:
    type: order.created
    data:
      orderId: ${{ .record.order }}
      items: '${{ [{sku: .record.sku, qty: (.record.qty | tonumber)}] }}'
`)
	})

	// idOf waits for a file to be moved to sub and returns the id of its record i.
	idOf := func(source, dir, sub, name string, i int) string {
		t.Helper()
		path := filepath.Join(dir, sub, name)
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, err := os.Stat(path)
			if err == nil {
				return fmt.Sprintf("file:%s:%s@%d:%d", source, filepath.Base(strings.TrimSuffix(name, ".1")), info.ModTime().UnixNano(), i)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not moved to %s/", name, sub)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	got := waitMessage(t, p, idOf("drop-json", in, "processed", "a.json", 0))["message"].(map[string]any)
	if got["source"] != "drop" || got["data"].(map[string]any)["orderId"] != "F-1" {
		t.Errorf("stored message %v", got)
	}
	waitMessage(t, p, idOf("drop-lines", in, "processed", "c.jsonl", 0))
	m := waitMessage(t, p, idOf("drop-lines", in, "processed", "c.jsonl", 2))["message"].(map[string]any)
	if tp, _ := m["traceparent"].(string); !message.ValidTraceparent(tp) {
		t.Errorf("a file record's message starts no trace: traceparent %q", tp)
	}
	if m["subject"] != "c.jsonl/2" || m["partitionkey"] != "L-3" {
		t.Errorf("subject = %v, partitionkey = %v; want c.jsonl/2 and L-3", m["subject"], m["partitionkey"])
	}
	waitMessage(t, p, idOf("drop-csv", csvDir, "processed", "d.csv", 0))
	c := waitMessage(t, p, idOf("drop-csv", csvDir, "processed", "d.csv", 1))["message"].(map[string]any)
	if items := c["data"].(map[string]any)["items"].([]any); items[0].(map[string]any)["qty"] != 5.0 {
		t.Errorf("csv row mapped to %v", c["data"])
	}
	idOf("drop-json", in, "failed", "b.json", 0)
	idOf("drop-json", in, "failed", "big.json", 0)

	// A second file of the same name is a new file: new ids, and the first is kept.
	write(filepath.Join(in, "a.json"), `{"order":"F-3","lines":[{"sku":"S","qty":1}]}`)
	waitMessage(t, p, idOf("drop-json", in, "processed", "a.json.1", 0))
	if b, _ := os.ReadFile(filepath.Join(in, "processed", "a.json")); !strings.Contains(string(b), "F-1") {
		t.Errorf("the first a.json was not kept: %s", b)
	}

	if n := streamMessages(t, p); n != 6 {
		t.Errorf("MESSAGES holds %d, want 6", n)
	}
	errs, _ := p.Bus().Stream(context.Background(), bus.StreamErrors)
	info, err := errs.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		if m, err := errs.GetMsg(context.Background(), seq); err == nil {
			entries = append(entries, string(m.Data))
		}
	}
	all := strings.Join(entries, "\n")
	for _, want := range []string{
		`"source":"drop-json","reason":"the file is not json`,
		`"source":"drop-json","reason":"the file has 344 bytes, more than maxBytes (200)"`,
		`"source":"drop-lines","reason":"the message does not match order.created`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("ERRORS lacks %s in\n%s", want, all)
		}
	}
	if len(entries) != 3 {
		t.Errorf("ERRORS holds %d entries, want 3", len(entries))
	}
	metrics := do(t, "GET", "http://"+p.AdminAddr()+"/metrics", "", "").raw
	for _, want := range []string{
		`causeway_source_events_total{result="accepted",source="drop-csv"} 2`,
		`causeway_source_events_total{result="accepted",source="drop-lines"} 2`,
		`causeway_source_events_total{result="errors",source="drop-lines"} 1`,
		`causeway_source_events_total{result="errors",source="drop-json"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, name := range []string{"readme.txt", ".part.json"} {
		if _, err := os.Stat(filepath.Join(in, name)); err != nil {
			t.Errorf("%s, which is not for the source, was touched: %v", name, err)
		}
	}
}
