package system

import (
	"testing"
	"time"

	"github.com/causeway/causeway/internal/cronspec"
)

func TestMaintenanceWindows(t *testing.T) {
	sched, errs := cronspec.Parse("0 2 * * SUN", "Europe/Amsterdam")
	if errs != nil {
		t.Fatal(errs)
	}
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	weekly := &Window{Cron: "0 2 * * SUN", Duration: 2 * time.Hour, sched: sched}
	once := &Window{From: time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)}
	s := &Spec{Health: &Health{Maintenance: []*Window{weekly, once}}}
	for _, tc := range []struct {
		at   time.Time
		open *Window
		end  time.Time
	}{
		{time.Date(2026, 11, 29, 1, 59, 59, 0, ams), nil, time.Time{}},                               // Sunday, just before
		{time.Date(2026, 11, 29, 2, 0, 0, 0, ams), weekly, time.Date(2026, 11, 29, 4, 0, 0, 0, ams)}, // opens
		{time.Date(2026, 11, 29, 3, 59, 0, 0, ams), weekly, time.Date(2026, 11, 29, 4, 0, 0, 0, ams)},
		{time.Date(2026, 11, 29, 4, 0, 0, 0, ams), nil, time.Time{}},  // closed at its end
		{time.Date(2026, 11, 30, 2, 30, 0, 0, ams), nil, time.Time{}}, // Monday
		{time.Date(2026, 12, 1, 19, 59, 0, 0, time.UTC), nil, time.Time{}},
		{time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC), once, once.Until},
		{time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC), nil, time.Time{}},
	} {
		w, end, ok := s.InMaintenance(tc.at)
		if ok != (tc.open != nil) || w != tc.open || !end.Equal(tc.end) {
			t.Errorf("%s: window %v until %s (%v), want %v until %s", tc.at, w, end, ok, tc.open, tc.end)
		}
	}
}
