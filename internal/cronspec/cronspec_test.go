package cronspec

import (
	"testing"
	"time"
)

// TestMissed finds the latest missed tick, in UTC and in a time zone.
func TestMissed(t *testing.T) {
	hourly, perr := Parse("0 * * * *", "UTC")
	if perr != nil {
		t.Fatal(perr)
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
		got, ok := Missed(hourly, at(tc.last), at(tc.now))
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
	ams, perr := Parse("0 7 * * *", "Europe/Amsterdam")
	if perr != nil {
		t.Fatal(perr)
	}
	got, _ := Missed(ams, at("2026-11-22T12:00:00Z"), at("2026-11-23T12:00:00Z"))
	if want := at("2026-11-23T06:00:00Z"); !got.Equal(want) { // 07:00 CET
		t.Errorf("Amsterdam 07:00 ticked at %s, want %s", got, want)
	}
}

// TestParseErrors names the field that is wrong.
func TestParseErrors(t *testing.T) {
	if _, errs := Parse("0 7 * * *", "Mars/Olympus"); len(errs) != 1 || errs[0].Field != "timezone" {
		t.Errorf("unknown zone: %v", errs)
	}
	if _, errs := Parse("61 * * * *", "UTC"); len(errs) != 1 || errs[0].Field != "cron" {
		t.Errorf("bad minute: %v", errs)
	}
	if _, errs := Parse("61 * * * *", "Mars/Olympus"); len(errs) != 2 {
		t.Errorf("both wrong: %v", errs)
	}
}
