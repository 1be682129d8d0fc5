package flow

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestLargeRecordsStayUnderTheLimit journals a run with thousands of large steps.
func TestLargeRecordsStayUnderTheLimit(t *testing.T) {
	r := &Run{ID: "r", Flow: "f", Status: StatusRunning}
	big := strings.Repeat("x", 2000)
	for i := range 3000 {
		r.addStep(&StepRecord{Key: "each[" + strconv.Itoa(i) + "].s", ID: "s", Action: ActionCall, Status: StepSucceeded, Input: big, Output: map[string]any{"v": big}})
	}
	data, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > maxRecordBytes {
		t.Fatalf("record of %d bytes, over %d", len(data), maxRecordBytes)
	}
	var back Run
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	last := back.Steps[len(back.Steps)-1]
	if last.Key != "each[2999].s" || last.Status != StepSucceeded {
		t.Errorf("the latest step was not kept: %+v", last)
	}
}
