// Package cronspec reads the cron schedules of flows and sources, and finds the tick missed
// while the platform was down.
package cronspec

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// parser reads standard five-field expressions and descriptors such as @daily.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse reads a cron expression in an IANA time zone. Each problem names its part: field
// "timezone" or "cron"; both are reported when both are wrong.
func Parse(expr, timezone string) (cron.Schedule, []Error) {
	var errs []Error
	spec := expr
	if loc, err := time.LoadLocation(timezone); err != nil {
		errs = append(errs, Error{Field: "timezone", Msg: fmt.Sprintf("unknown time zone %q: use an IANA name such as Europe/Amsterdam", timezone)})
	} else {
		spec = "CRON_TZ=" + loc.String() + " " + expr
	}
	sched, err := parser.Parse(spec)
	if err != nil {
		errs = append(errs, Error{Field: "cron", Msg: fmt.Sprintf("invalid cron expression %q: %v", expr, err)})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return sched, nil
}

// Error is a schedule that does not parse.
type Error struct {
	// Field is "timezone" or "cron".
	Field, Msg string
}

func (e Error) Error() string { return e.Msg }

// maxCatchUpSteps bounds the search for the latest missed tick (a year of minutes).
const maxCatchUpSteps = 600_000

// Missed returns the latest tick of sched after last and no later than now.
func Missed(sched cron.Schedule, last, now time.Time) (time.Time, bool) {
	var latest time.Time
	t := last
	for range maxCatchUpSteps {
		t = sched.Next(t)
		if t.IsZero() || t.After(now) {
			break
		}
		latest = t
	}
	return latest, !latest.IsZero()
}
