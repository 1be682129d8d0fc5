// Package flow implements the Flow kind: a declarative workflow that a message, a schedule
// or an invocation starts, and whose steps call systems, publish messages, compute values,
// branch, loop, wait and reply. This file holds the definition; compile.go turns it into
// the checked, compiled form that validate reports on and the executor runs.
package flow

import (
	"time"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// Kind is the kind name of flow definitions.
const Kind = "Flow"

const kindDoc = `A Flow is a declarative workflow. A trigger starts a run: a message of a given type
(optionally filtered), a schedule, or an invocation by name. The run's steps call system
operations, publish messages, set variables, branch (if, switch), loop (foreach), run
branches in parallel, wait (delay), reply to an invocation, or fail. Values are literal YAML
or ${{ jq }} templates; every expression is compiled when the definitions load.`

const kindExample = `apiVersion: causeway/v1
kind: Flow
metadata:
  name: confirm-invoices
  description: Confirm every posted invoice in the ERP, then announce it
spec:
  trigger:
    message:
      types: [invoice.posted]
      filter: .data.amount > 0
  key: .data.invoiceId
  steps:
    - id: confirm
      call: erp.markShipped
      with:
        orderId: ${{ .data.invoiceId }}
        body: {carrier: dhl}
      retry: {attempts: 3, backoff: 500ms}
    - id: announce
      if: .steps.confirm.output.shipped == true
      publish:
        type: invoice.posted
        subject: invoice/${{ .data.invoiceId }}
        data: '${{ .data + {currency: "EUR"} }}'`

// Spec is the spec of a Flow.
type Spec struct {
	// Trigger says what starts a run.
	Trigger Trigger `yaml:"trigger" required:"true" doc:"What starts a run: give one of message, schedule or invoke."`
	// Key is a jq expression giving a message's ordering key.
	Key string `yaml:"key" doc:"A jq expression giving the ordering key of a trigger message: runs for messages with the same key happen one at a time, in order; different keys run concurrently. Only for message triggers." example:".data.customerId"`
	// Concurrency bounds the runs in progress at once on one node.
	Concurrency int `yaml:"concurrency" default:"16" doc:"How many runs may be in progress at once on one node (with a key: how many keys)."`
	// Steps run in order.
	Steps []*Step `yaml:"steps" required:"true" doc:"The steps, run in order. Each gives an id and exactly one action: call, publish, set, then/else (with if), switch, foreach, parallel, delay, reply or fail."`
	// OnError steps run when the run fails.
	OnError []*Step `yaml:"onError" doc:"Steps run when the run fails, for compensation; .error holds the failure."`

	compiled *compiled
}

// Trigger says what starts a run. Exactly one field is set.
type Trigger struct {
	// Message starts a run for every matching message.
	Message *MessageTrigger `yaml:"message" doc:"Start a run for every message of the given types that passes the filter. Every flow has a durable consumer of its own, so every flow sees every matching message."`
	// Schedule starts runs on a cron schedule.
	Schedule *ScheduleTrigger `yaml:"schedule" doc:"Start runs on a cron schedule. A tick missed while the platform was down runs once when it starts, not once per missed tick."`
	// Invoke makes the flow callable by name.
	Invoke *InvokeTrigger `yaml:"invoke" doc:"Start a run when the flow is invoked by name (POST /v1/flows/{name}/invoke, causeway flows invoke); the caller waits for the run's reply."`
}

// MessageTrigger starts a run per matching message.
type MessageTrigger struct {
	// Types are the message types that start a run.
	Types []string `yaml:"types" required:"true" ref:"MessageType" doc:"The message types that start a run."`
	// Filter is a jq expression that must yield true for a message to start a run.
	Filter string `yaml:"filter" doc:"A jq expression on {message, data} that must yield true for the message to start a run; false skips it." example:".data.total > 100"`
}

// ScheduleTrigger starts runs on a cron schedule.
type ScheduleTrigger struct {
	// Cron is a five-field cron expression or a descriptor such as @daily.
	Cron string `yaml:"cron" required:"true" doc:"A cron expression with five fields (minute hour day-of-month month day-of-week), or @hourly, @daily, @weekly, @monthly, @yearly, or @every DURATION." example:"0 7 * * MON-FRI"`
	// Timezone is the IANA time zone the schedule is read in.
	Timezone string `yaml:"timezone" default:"UTC" doc:"The IANA time zone the cron expression is read in." example:"Europe/Amsterdam"`
}

// InvokeTrigger makes a flow callable by name.
type InvokeTrigger struct {
	// Timeout bounds how long a caller waits for the reply.
	Timeout time.Duration `yaml:"timeout" default:"30s" doc:"How long an invoker waits for the run's reply before it gets a timeout (the run goes on)."`
}

// Step is one step of a flow. Besides id and the common settings, exactly one action is
// given.
type Step struct {
	// ID names the step in the run history and in expressions (.steps.<id>.output).
	ID string `yaml:"id" required:"true" doc:"The step's name, unique in the flow: letters, digits, '_' and '-'. Expressions read its result as .steps.<id>.output." example:"lookup"`
	// If is a jq guard, or the condition of a then/else step.
	If string `yaml:"if" doc:"A jq expression: the step runs only when it yields true (otherwise it is skipped). With then/else, the condition that picks the branch." example:".data.total > 100"`
	// Timeout bounds one attempt of the step.
	Timeout time.Duration `yaml:"timeout" doc:"How long one attempt of the step may take; for a call, the operation's own timeout applies when this is not set."`
	// Retry retries the step within the run.
	Retry *Retry `yaml:"retry" doc:"Retry the step within the run after a transient failure, for short blips. Longer outages go through the retry path of the system."`
	// Delivery overrides the called system's delivery policy for this step.
	Delivery *StepDelivery `yaml:"delivery" doc:"For a call: this step's own retry path and offline behaviour, instead of the called system's delivery policy."`

	// Call calls a system operation.
	Call string `yaml:"call" doc:"Call a system operation, written <system>.<operation>. The result is the answer's body." example:"erp.markShipped"`
	// With are the call's parameters.
	With config.JSON `yaml:"with" doc:"The call's parameters: values for the operation path's {placeholders} by name, and query, headers and body. Values may be ${{ jq }} templates."`
	// Publish publishes a message.
	Publish *Publish `yaml:"publish" doc:"Publish a new message; its correlationid is the run's and its causationid the trigger message's id."`
	// Set sets run variables.
	Set config.JSON `yaml:"set" doc:"Set run variables: a mapping of names to values (templates allowed), read as .vars.<name>."`
	// Then are the steps run when If yields true.
	Then []*Step `yaml:"then" doc:"With if: the steps run when the condition yields true."`
	// Else are the steps run when If yields false.
	Else []*Step `yaml:"else" doc:"With if: the steps run when the condition yields false."`
	// Switch runs the steps of the first case whose condition holds.
	Switch []*Case `yaml:"switch" doc:"Run the steps of the first case whose when yields true; a case without when matches always (put it last)."`
	// Foreach runs Do once per element of a list.
	Foreach string `yaml:"foreach" doc:"A jq expression yielding a list: the steps in do run once per element, which they read as .vars.<as> (default .vars.item)." example:".data.items"`
	// As names the variable holding the current element.
	As string `yaml:"as" default:"item" doc:"With foreach: the variable that holds the current element."`
	// Concurrency bounds the elements processed at once.
	Concurrency int `yaml:"concurrency" default:"1" doc:"With foreach: how many elements are processed at once."`
	// Do are the steps of each foreach iteration.
	Do []*Step `yaml:"do" doc:"With foreach: the steps run for each element."`
	// Parallel runs branches at once and joins them.
	Parallel []*Branch `yaml:"parallel" doc:"Run branches at the same time; the step ends when all have ended, and fails if one fails."`
	// Delay waits, durably.
	Delay string `yaml:"delay" doc:"Wait this long before the next step: a duration (2s, 1h30m) or a template yielding one. Durable: the wait survives restarts and holds no worker." example:"15m"`
	// Reply answers an invocation.
	Reply *Reply `yaml:"reply" doc:"Answer the invoker of the flow (an invoke trigger), or the gateway request that published the trigger message (a message trigger: the request's status shows the reply; nothing happens when no request waits). The run goes on after replying."`
	// Fail ends the run as failed.
	Fail string `yaml:"fail" doc:"End the run as failed with this reason (a template); onError steps run." example:"order ${{ .data.orderId }} has no lines"`

	compiled *compiledStep
}

// Retry is a step's in-run retry.
type Retry struct {
	// Attempts counts every attempt, the first included.
	Attempts int `yaml:"attempts" default:"3" doc:"How many attempts in all, the first included."`
	// Backoff is the wait before the second attempt; it doubles after each.
	Backoff time.Duration `yaml:"backoff" default:"1s" doc:"The wait before the second attempt; it doubles for every attempt after, up to maxBackoff."`
	// MaxBackoff caps the wait.
	MaxBackoff time.Duration `yaml:"maxBackoff" default:"30s" doc:"The longest wait between two attempts."`
}

// Case is one case of a switch.
type Case struct {
	// When is the case's condition.
	When string `yaml:"when" doc:"A jq expression: the case is taken when it yields true. Leave it out for the default case." example:".data.channel == \"web\""`
	// Steps are run when the case is taken.
	Steps []*Step `yaml:"steps" required:"true" doc:"The steps run when the case is taken."`
}

// Branch is one branch of a parallel step.
type Branch struct {
	// Steps are the branch's steps, run in order.
	Steps []*Step `yaml:"steps" required:"true" doc:"The branch's steps, run in order."`
}

// Publish is a message a step publishes.
type Publish struct {
	// Type is the message's type.
	Type string `yaml:"type" required:"true" ref:"MessageType" doc:"The message type; the data must match its schema."`
	// Subject is the CloudEvents subject.
	Subject string `yaml:"subject" doc:"The message's subject (a template)." example:"order/${{ .data.orderId }}"`
	// Data is the message's data.
	Data config.JSON `yaml:"data" doc:"The message's data: a value with ${{ jq }} templates, or one template yielding the whole value."`
}

// Reply is the answer to an invocation.
type Reply struct {
	// Status is the HTTP status of the answer.
	Status int `yaml:"status" default:"200" doc:"The HTTP status of the answer."`
	// Headers are headers of the answer.
	Headers map[string]string `yaml:"headers" doc:"Headers of the answer; values may be templates." example:"Location: /orders/${{ .data.id }}"`
	// Body is the answer's body.
	Body config.JSON `yaml:"body" doc:"The answer's body: a value with ${{ jq }} templates."`
}

// Register adds the Flow kind to a registry.
func Register(r *config.Registry) error {
	return r.Register(config.Kind{Name: Kind, Doc: kindDoc, Example: kindExample, New: func() any { return new(Spec) }})
}

// StepDelivery is a call step's own delivery policy.
type StepDelivery struct {
	// Retry replaces the system's retry policy.
	Retry *system.RetryPolicy `yaml:"retry" doc:"The retry path of this step's transient failures, instead of the system's delivery.retry."`
	// WhenOffline replaces the system's.
	WhenOffline string `yaml:"whenOffline" enum:"park,retry,fail" doc:"What this step does while the system is offline or in maintenance, instead of the system's delivery.whenOffline."`
}
