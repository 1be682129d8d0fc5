// Package alert implements the Alert kind and the alerts the platform raises: deliveries
// that went to the errors queue, systems offline too long, deliveries parked too long, an
// errors queue that grows; routed by severity, system, flow and kind to webhook (JSON,
// Slack, Microsoft Teams) and email sinks, de-duplicated and throttled, with a resolved
// notice when the condition clears.
package alert

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// Kind is the kind name of alert definitions.
const Kind = "Alert"

// The kinds of alert the platform raises.
const (
	KindDeadLettered = "dead-lettered"  // a delivery went to the errors queue
	KindOffline      = "system-offline" // a system offline (or in maintenance) longer than offlineFor
	KindParked       = "parked"         // a delivery parked longer than parkedFor
	KindErrorsQueue  = "errors-queue"   // the errors queue holds more than errorsAbove entries
)

// Kinds lists them.
var Kinds = []string{KindDeadLettered, KindOffline, KindParked, KindErrorsQueue}

// Severities, lowest first.
var Severities = []string{"low", "medium", "high"}

// severityOf is each kind's severity.
var severityOf = map[string]string{KindDeadLettered: "high", KindOffline: "high", KindParked: "medium", KindErrorsQueue: "medium"}

const kindDoc = `An Alert routes the alerts the platform raises to people: a delivery that went to the
errors queue (high), a system offline longer than offlineFor (high), a delivery parked longer
than parkedFor (medium), an errors queue holding more than errorsAbove entries (medium). It
selects them by kind, severity, system and flow, and sends them to webhooks (JSON, Slack,
Microsoft Teams) or by email, at most once per throttle for the same condition, with a
resolved notice when it clears. Sending is retried and never holds up messages.`

const kindExample = `apiVersion: causeway/v1
kind: Alert
metadata:
  name: erp-on-call
spec:
  match:
    kinds: [dead-lettered, system-offline]
    minSeverity: high
    systems: [erp]
  offlineFor: 5m
  throttle: 15m
  sinks:
    - webhook: {url: "${secret:SLACK_WEBHOOK}", format: slack}
    - webhook: {url: "https://oncall.example.com/hooks/causeway", format: json}`

// Spec is the spec of an Alert.
type Spec struct {
	// Match selects the alerts.
	Match Match `yaml:"match" doc:"Which alerts this routes; empty lists match everything."`
	// OfflineFor is how long a system is offline before KindOffline fires.
	OfflineFor time.Duration `yaml:"offlineFor" default:"5m" doc:"How long a system must be offline or in maintenance before system-offline fires."`
	// ParkedFor is how old the oldest parked delivery is before KindParked fires.
	ParkedFor time.Duration `yaml:"parkedFor" default:"30m" doc:"How long a delivery may stay parked before parked fires."`
	// ErrorsAbove is the errors queue size above which KindErrorsQueue fires.
	ErrorsAbove int `yaml:"errorsAbove" default:"100" doc:"The errors queue size (entries matching systems and flows) above which errors-queue fires."`
	// Throttle is the least time between two notifications of one condition.
	Throttle time.Duration `yaml:"throttle" default:"15m" doc:"The least time between two notifications of the same condition (the same flow and error fingerprint, the same system); what is held back meanwhile is counted in the next."`
	// Resolved sends a notice when a condition clears.
	Resolved bool `yaml:"resolved" default:"true" doc:"Send a resolved notice when a condition that was notified clears."`
	// Sinks are where notifications go.
	Sinks []*Sink `yaml:"sinks" required:"true" doc:"Where notifications go; each is tried on its own, and retried on failure."`
}

// Match selects alerts.
type Match struct {
	Kinds       []string `yaml:"kinds" doc:"Alert kinds: dead-lettered, system-offline, parked, errors-queue. Empty: all."`
	MinSeverity string   `yaml:"minSeverity" default:"low" enum:"low,medium,high" doc:"The lowest severity routed."`
	Systems     []string `yaml:"systems" doc:"Only alerts about these systems. Empty: any."`
	Flows       []string `yaml:"flows" doc:"Only alerts about these flows (dead-lettered). Empty: any."`
}

// Sink is where notifications go: one of webhook or email.
type Sink struct {
	Webhook *Webhook `yaml:"webhook" doc:"An HTTP POST of the notification."`
	Email   *Email   `yaml:"email" doc:"An email, sent through an operation of a System with smtp settings."`
}

// Webhook posts notifications.
type Webhook struct {
	URL     config.Secret     `yaml:"url" required:"true" doc:"Where to POST. Kept secret: webhook URLs of chat tools are credentials." example:"${secret:SLACK_WEBHOOK}"`
	Format  string            `yaml:"format" default:"json" enum:"json,slack,teams" doc:"json: the alert as JSON; slack: a Slack incoming-webhook message; teams: a Microsoft Teams message card."`
	Headers map[string]string `yaml:"headers" doc:"Headers sent with every notification."`
	Timeout time.Duration     `yaml:"timeout" default:"10s" doc:"How long one POST may take."`
}

// Email sends notifications by email.
type Email struct {
	System    string `yaml:"system" required:"true" doc:"A System with smtp settings."`
	Operation string `yaml:"operation" required:"true" doc:"Its email operation; its templates see the alert as .params (kind, severity, state, summary, detail, system, flow, suppressed)."`
}

// Register adds the Alert kind to r.
func Register(r *config.Registry) error {
	return r.Register(config.Kind{Name: Kind, Doc: kindDoc, Example: kindExample, New: func() any { return new(Spec) }})
}

// Validate checks the kinds, the references and the sinks.
func (s *Spec) Validate(ctx *config.Context) error {
	for i, k := range s.Match.Kinds {
		if !slices.Contains(Kinds, k) {
			ctx.Errorf(fmt.Sprintf("match.kinds[%d]", i), "unknown alert kind %q: expected one of %v", k, Kinds)
		}
	}
	for i, name := range s.Match.Systems {
		if _, ok := ctx.Lookup(system.Kind, name); !ok {
			ctx.Errorf(fmt.Sprintf("match.systems[%d]", i), "no System %q is defined", name)
		}
	}
	for i, name := range s.Match.Flows {
		if _, ok := ctx.Lookup("Flow", name); !ok {
			ctx.Errorf(fmt.Sprintf("match.flows[%d]", i), "no Flow %q is defined", name)
		}
	}
	if s.Throttle < 0 || s.OfflineFor < 0 || s.ParkedFor < 0 || s.ErrorsAbove < 0 {
		ctx.Errorf("throttle", "durations and errorsAbove must not be negative")
	}
	if len(s.Sinks) == 0 {
		ctx.Errorf("sinks", "give at least one sink")
	}
	for i, sk := range s.Sinks {
		at := fmt.Sprintf("sinks[%d]", i)
		switch {
		case (sk.Webhook == nil) == (sk.Email == nil):
			ctx.Errorf(at, "a sink is a webhook or an email, one of them")
		case sk.Webhook != nil:
			if sk.Webhook.URL.IsZero() {
				break // not read: validate runs without secrets
			}
			if u, err := url.Parse(sk.Webhook.URL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				// The URL is a secret: the problem says what is wrong, not what it is.
				ctx.Errorf(at+".webhook.url", "not an http or https URL")
			}
		case sk.Email != nil:
			res, ok := ctx.Lookup(system.Kind, sk.Email.System)
			if !ok {
				ctx.Errorf(at+".email.system", "no System %q is defined", sk.Email.System)
				break
			}
			sys := res.Spec.(*system.Spec)
			op, ok := sys.Operations[sk.Email.Operation]
			if !ok || op.Email == nil {
				ctx.Errorf(at+".email.operation", "System %q has no email operation %q", sk.Email.System, sk.Email.Operation)
			}
		}
	}
	return ctx.Err()
}

// matches reports whether the alert routes an event.
func (s *Spec) matches(ev *Event) bool {
	if len(s.Match.Kinds) > 0 && !slices.Contains(s.Match.Kinds, ev.Kind) {
		return false
	}
	if slices.Index(Severities, ev.Severity) < slices.Index(Severities, s.Match.MinSeverity) {
		return false
	}
	if len(s.Match.Systems) > 0 && (ev.System == "" || !slices.Contains(s.Match.Systems, ev.System)) {
		return false
	}
	if len(s.Match.Flows) > 0 && (ev.Flow == "" || !slices.Contains(s.Match.Flows, ev.Flow)) {
		return false
	}
	return true
}
