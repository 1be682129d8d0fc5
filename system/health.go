package system

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/cronspec"
)

// Health is what tells whether a system is up: a probe, a circuit breaker over real calls,
// and declared maintenance windows.
type Health struct {
	// Probe checks the system on a schedule.
	Probe *Probe `yaml:"probe" doc:"A health probe: an operation of the system (an HTTP request, a SQL query …) called on a schedule, or, without one, a check of the system's connections. Enough failures in a row make the system offline; enough successes bring it back."`
	// Breaker watches real calls.
	Breaker *Breaker `yaml:"breaker" doc:"The circuit breaker over real call outcomes: too many transient failures make the system offline (open); after openFor it lets trial calls through (degraded, half-open), and a success closes it (online). On by default: 5 transient failures in a row."`
	// Maintenance lists the system's maintenance windows.
	Maintenance []*Window `yaml:"maintenance" doc:"Maintenance windows: while one is open the system's status is maintenance, and deliveries to it are held as its delivery.whenOffline says."`
}

// Probe is a health probe.
type Probe struct {
	// Operation is called as the probe; empty checks the connections.
	Operation string `yaml:"operation" doc:"An operation of this system to call as the probe (with no parameters); its success is health. Empty: the system's connection check (an HTTP GET of the base URL, a database ping …)."`
	// Interval is how often the probe runs.
	Interval time.Duration `yaml:"interval" default:"30s" doc:"How often the probe runs."`
	// Timeout bounds one probe.
	Timeout time.Duration `yaml:"timeout" default:"5s" doc:"How long one probe may take before it counts as a failure."`
	// FailureThreshold is how many failures in a row make the system offline.
	FailureThreshold int `yaml:"failureThreshold" default:"3" doc:"Failures in a row that make the system offline (one failure makes it degraded)."`
	// SuccessThreshold is how many successes in a row bring it back.
	SuccessThreshold int `yaml:"successThreshold" default:"1" doc:"Successes in a row that bring an offline system back online."`
}

// Breaker is a circuit breaker.
type Breaker struct {
	// ConsecutiveFailures opens the breaker; 0 turns this rule off.
	ConsecutiveFailures int `yaml:"consecutiveFailures" default:"5" doc:"Transient call failures in a row that open the breaker; 0 turns the rule off."`
	// FailureRate opens the breaker when this share of the calls in Window failed.
	FailureRate float64 `yaml:"failureRate" default:"0" doc:"The share of calls (0 to 1) within window that, failing transiently, opens the breaker, once minCalls were made; 0 turns the rule off."`
	// MinCalls is the fewest calls in Window the rate rule judges.
	MinCalls int `yaml:"minCalls" default:"20" doc:"The fewest calls within window for failureRate to apply."`
	// Window is the span of the rate rule.
	Window time.Duration `yaml:"window" default:"1m" doc:"The span of calls failureRate looks at."`
	// OpenFor is how long the breaker stays open before trial calls.
	OpenFor time.Duration `yaml:"openFor" default:"30s" doc:"How long the breaker stays open (the system offline) before it lets trial calls through."`
	// Disabled turns the breaker off.
	Disabled bool `yaml:"disabled" doc:"Turns the breaker off: call failures never change the system's status."`
}

// DefaultBreaker is the breaker of a system that declares none.
var DefaultBreaker = Breaker{ConsecutiveFailures: 5, MinCalls: 20, Window: time.Minute, OpenFor: 30 * time.Second}

// Window is a maintenance window: recurring (cron and duration) or once (from and until).
type Window struct {
	// Cron is when a recurring window opens.
	Cron string `yaml:"cron" doc:"When a recurring window opens: a five-field cron expression or a descriptor such as @daily." example:"0 2 * * SUN"`
	// Duration is how long a recurring window stays open.
	Duration time.Duration `yaml:"duration" doc:"How long a recurring window stays open." example:"2h"`
	// Timezone is the IANA time zone of Cron.
	Timezone string `yaml:"timezone" default:"UTC" doc:"The IANA time zone of cron." example:"Europe/Amsterdam"`
	// From and Until bound a one-time window.
	From  time.Time `yaml:"from" doc:"The start of a one-time window (RFC 3339)." example:"2026-12-01T20:00:00Z"`
	Until time.Time `yaml:"until" doc:"The end of a one-time window (RFC 3339)." example:"2026-12-01T23:00:00Z"`
	// Reason is shown with the status.
	Reason string `yaml:"reason" doc:"Why, shown with the system's status." example:"monthly patching"`

	sched cron.Schedule
}

// BreakerPolicy returns the system's breaker, or DefaultBreaker; ok is false when the
// breaker is off.
func (s *Spec) BreakerPolicy() (b Breaker, ok bool) {
	if s != nil && s.Health != nil && s.Health.Breaker != nil {
		b = *s.Health.Breaker
		return b, !b.Disabled && (b.ConsecutiveFailures > 0 || b.FailureRate > 0)
	}
	return DefaultBreaker, true
}

// InMaintenance returns the maintenance window open at t, if any, and when it closes.
func (s *Spec) InMaintenance(t time.Time) (*Window, time.Time, bool) {
	if s == nil || s.Health == nil {
		return nil, time.Time{}, false
	}
	for _, w := range s.Health.Maintenance {
		if end, ok := w.openAt(t); ok {
			return w, end, true
		}
	}
	return nil, time.Time{}, false
}

// openAt reports whether the window is open at t, and when it closes.
func (w *Window) openAt(t time.Time) (time.Time, bool) {
	if w.sched == nil {
		return w.Until, !t.Before(w.From) && t.Before(w.Until)
	}
	// The latest opening at or before t: the first after t minus the duration, and on.
	start := w.sched.Next(t.Add(-w.Duration - time.Second))
	for !start.IsZero() && !start.After(t) {
		if end := start.Add(w.Duration); t.Before(end) {
			return end, true
		}
		start = w.sched.Next(start)
	}
	return time.Time{}, false
}

// validateHealth checks the probe, the breaker and the windows, and parses the windows'
// schedules.
func (s *Spec) validateHealth(ctx *config.Context) {
	h := s.Health
	if h == nil {
		return
	}
	if p := h.Probe; p != nil {
		if p.Operation != "" {
			if _, ok := s.Operations[p.Operation]; !ok {
				ctx.Errorf("health.probe.operation", "system has no operation %q", p.Operation)
			}
		}
		if p.Interval < time.Second {
			ctx.Errorf("health.probe.interval", "must be at least 1s")
		}
		if p.Timeout <= 0 || p.Timeout > p.Interval {
			ctx.Errorf("health.probe.timeout", "must be more than 0 and at most the interval")
		}
		if p.FailureThreshold < 1 || p.SuccessThreshold < 1 {
			ctx.Errorf("health.probe", "failureThreshold and successThreshold must be at least 1")
		}
	}
	if b := h.Breaker; b != nil {
		if b.ConsecutiveFailures < 0 {
			ctx.Errorf("health.breaker.consecutiveFailures", "must be 0 (off) or more")
		}
		if b.FailureRate < 0 || b.FailureRate > 1 {
			ctx.Errorf("health.breaker.failureRate", "must be between 0 (off) and 1")
		}
		if b.OpenFor < time.Second {
			ctx.Errorf("health.breaker.openFor", "must be at least 1s")
		}
		if b.FailureRate > 0 && (b.Window < time.Second || b.MinCalls < 1) {
			ctx.Errorf("health.breaker", "failureRate needs a window of at least 1s and minCalls of at least 1")
		}
	}
	for i, w := range h.Maintenance {
		at := fmt.Sprintf("health.maintenance[%d]", i)
		switch {
		case w.Cron != "" && (!w.From.IsZero() || !w.Until.IsZero()):
			ctx.Errorf(at, "a window is recurring (cron and duration) or one-time (from and until), not both")
		case w.Cron != "":
			sched, errs := cronspec.Parse(w.Cron, w.Timezone)
			for _, e := range errs {
				ctx.Errorf(at+"."+e.Field, "%s", e.Msg)
			}
			w.sched = sched
			if w.Duration < time.Minute {
				ctx.Errorf(at+".duration", "a recurring window needs a duration of at least 1m")
			}
		case !w.From.IsZero() || !w.Until.IsZero():
			if w.From.IsZero() || w.Until.IsZero() || !w.Until.After(w.From) {
				ctx.Errorf(at, "a one-time window needs from and until, until after from")
			}
			if w.Duration != 0 {
				ctx.Errorf(at+".duration", "a one-time window is from until until; duration is for recurring ones")
			}
		default:
			ctx.Errorf(at, "give cron and duration (recurring) or from and until (one-time)")
		}
	}
}
