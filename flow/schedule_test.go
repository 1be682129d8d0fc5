package flow

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestMissedTick(t *testing.T) {
	hourly, err := cronParser.Parse("0 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, _ := time.Parse(time.RFC3339, s)
		return v
	}
	for _, tc := range []struct {
		last, now, want string
	}{
		{"2026-11-23T10:00:00Z", "2026-11-23T13:30:00Z", "2026-11-23T13:00:00Z"}, // three missed: the latest once
		{"2026-11-23T13:00:00Z", "2026-11-23T13:30:00Z", ""},                     // none missed
		{"2026-11-23T12:59:59Z", "2026-11-23T13:00:00Z", "2026-11-23T13:00:00Z"}, // due right now
	} {
		got, ok := missedTick(hourly.Next, at(tc.last), at(tc.now))
		if tc.want == "" {
			if ok {
				t.Errorf("%s..%s: missed %s, want none", tc.last, tc.now, got)
			}
			continue
		}
		if !ok || !got.Equal(at(tc.want)) {
			t.Errorf("%s..%s: missed %s %v, want %s", tc.last, tc.now, got, ok, tc.want)
		}
	}
	// A schedule in a time zone ticks at its local time.
	ams, err := cronParser.Parse("CRON_TZ=Europe/Amsterdam 0 7 * * *")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := missedTick(ams.Next, at("2026-11-22T12:00:00Z"), at("2026-11-23T12:00:00Z"))
	if want := at("2026-11-23T06:00:00Z"); !got.Equal(want) { // 07:00 CET
		t.Errorf("Amsterdam 07:00 ticked at %s, want %s", got, want)
	}
	var _ cron.Schedule = hourly
}

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
