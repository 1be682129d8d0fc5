package ingest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestWriteAccepted: the 202 answer written by hand is what encoding/json writes, for
// generated ids and for producers' ids that JSON escapes.
func TestWriteAccepted(t *testing.T) {
	for _, ids := range [][]string{
		{"01JD3Q7Y8M2Z4N5P6R7S8T9V0W"},
		{"a", "b-2", "order:17/x"},
		{`quote"d`, "back\\slash"},
		{"<script>", "a&b"},
		{"tab\there", "ünïcödé", "\u2028"},
		{},
	} {
		rec := httptest.NewRecorder()
		writeAccepted(rec, ids)
		want, err := json.Marshal(accepted{IDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusAccepted || rec.Body.String() != string(want) {
			t.Errorf("%q: %d %s, want 202 %s", ids, rec.Code, rec.Body, want)
		}
		if ct, cl := rec.Header().Get("Content-Type"), rec.Header().Get("Content-Length"); ct != "application/json" || cl != strconv.Itoa(len(want)) {
			t.Errorf("%q: Content-Type %q, Content-Length %q", ids, ct, cl)
		}
	}
	if jsonType[0] != "application/json" || len(jsonType) != 1 {
		t.Errorf("the shared Content-Type changed: %q", jsonType)
	}
}
