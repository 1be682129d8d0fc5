package source

import (
	"bytes"
	"testing"

	"github.com/causeway/causeway/expr"
)

// FuzzParseRecords feeds the file source's parser any file in any format: it never panics;
// json yields (after a byte order mark) one record exactly when the file is JSON; jsonl yields at most one record per
// non-empty line; csv yields objects with the header's columns and nothing else.
func FuzzParseRecords(f *testing.F) {
	f.Add("json", []byte(`{"order":"A-1","lines":[{"sku":"S","qty":1}]}`))
	f.Add("jsonl", []byte("{\"n\":1}\n\n{\"n\":2}\n"))
	f.Add("csv", []byte("order,sku,qty\nC-1,S-1,2\n"))
	f.Add("text", []byte("hello"))
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		recs, err := parseRecords(format, data)
		if err != nil {
			return
		}
		switch format {
		case "json", "":
			if _, derr := expr.DecodeJSON(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))); derr != nil {
				t.Fatalf("json accepted what does not decode: %q", data)
			}
			if len(recs) != 1 {
				t.Fatalf("json gave %d records", len(recs))
			}
		case "jsonl":
			lines := 0
			for _, l := range bytes.Split(data, []byte("\n")) {
				if len(bytes.TrimSpace(l)) > 0 {
					lines++
				}
			}
			if len(recs) > lines {
				t.Fatalf("jsonl gave %d records from %d lines", len(recs), lines)
			}
		case "csv":
			var width = -1
			for _, r := range recs {
				m, ok := r.(map[string]any)
				if !ok {
					t.Fatalf("csv record %T", r)
				}
				if width >= 0 && len(m) != width {
					t.Fatalf("csv records of %d and %d columns", width, len(m))
				}
				width = len(m)
			}
		case "text":
			if len(recs) != 1 || recs[0] != string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))) {
				t.Fatalf("text gave %v", recs)
			}
		}
	})
}

// TestParseRecordsBOM reads files that start with a byte order mark.
func TestParseRecordsBOM(t *testing.T) {
	recs, err := parseRecords("csv", []byte("\xef\xbb\xbforder,qty\nA,1\n"))
	if err != nil || len(recs) != 1 || recs[0].(map[string]any)["order"] != "A" {
		t.Errorf("csv with a BOM: %v %v", recs, err)
	}
	if recs, err := parseRecords("json", []byte("\xef\xbb\xbf{\"n\":1}")); err != nil || len(recs) != 1 {
		t.Errorf("json with a BOM: %v %v", recs, err)
	}
}
