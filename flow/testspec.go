package flow

import (
	"strconv"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// TestKind is the kind name of flow test cases.
const TestKind = "FlowTest"

const testKindDoc = `A FlowTest is a test case for a flow, run by causeway test without any live system or
data directory: a trigger message (or invoke input), stubbed answers for the system
operations the flow calls, and expectations on the calls made, the messages published, the
reply, the final status and the variables. Expected values are matched as subsets: an
expected object may leave out keys, and lists must have the expected length.`

const testKindExample = `apiVersion: causeway/v1
kind: FlowTest
metadata:
  name: confirm-invoices-happy-path
  description: A posted invoice is confirmed in the ERP and announced
spec:
  flow: confirm-invoices
  message:
    type: invoice.posted
    source: erp
    data: {invoiceId: INV-1, amount: 120}
  stubs:
    - call: erp.markShipped
      respond: {status: 200, body: {shipped: true}}
  expect:
    status: succeeded
    calls:
      - call: erp.markShipped
        with: {orderId: INV-1}
    published:
      - type: invoice.posted
        subject: invoice/INV-1`

// TestSpec is the spec of a FlowTest.
type TestSpec struct {
	// Flow is the flow under test.
	Flow string `yaml:"flow" required:"true" ref:"Flow" doc:"The flow under test."`
	// Message is the trigger message, for flows with a message trigger.
	Message *TestMessage `yaml:"message" doc:"The trigger message, for a flow with a message trigger (a schedule tick, for a scheduled flow, when data is set)."`
	// Input is the invocation input, for flows with an invoke trigger.
	Input config.JSON `yaml:"input" doc:"The invocation's input, for a flow with an invoke trigger: the run's .data."`
	// Stubs answer the calls the flow makes.
	Stubs []*Stub `yaml:"stubs" doc:"Answers for the operations the flow calls. A call takes the first stub of its operation whose match holds; a call that no stub answers fails the run's step."`
	// Expect is what the run must do.
	Expect Expectations `yaml:"expect" doc:"What the run must have done; leave out what does not matter."`
}

// TestMessage is a trigger message in a test.
type TestMessage struct {
	// Type is the message type.
	Type string `yaml:"type" required:"true" ref:"MessageType" doc:"The message type; the data must match its schema."`
	// Source is the message's source.
	Source string `yaml:"source" default:"test" doc:"The message's source."`
	// Subject is the message's subject.
	Subject string `yaml:"subject" doc:"The message's subject."`
	// ID is the message id.
	ID string `yaml:"id" default:"test-message" doc:"The message id."`
	// Data is the message's data.
	Data config.JSON `yaml:"data" doc:"The message's data."`
}

// Stub answers calls of one operation.
type Stub struct {
	// Call is the operation, <system>.<operation>.
	Call string `yaml:"call" required:"true" doc:"The operation the stub answers: <system>.<operation>." example:"erp.getOrder"`
	// Match selects the calls by their parameters.
	Match config.JSON `yaml:"match" doc:"Answer only calls whose with holds these values (a subset match); leave it out to answer every call of the operation."`
	// Respond is the answer to every matching call.
	Respond *StubAnswer `yaml:"respond" doc:"The answer to every matching call. Give respond or responses."`
	// Responses answer successive matching calls, the last one repeating.
	Responses []*StubAnswer `yaml:"responses" doc:"Answers to the first, second, … matching call; the last one answers the calls after it."`
}

// StubAnswer is a stubbed HTTP answer.
type StubAnswer struct {
	// Status is the HTTP status.
	Status int `yaml:"status" default:"200" doc:"The HTTP status: 2xx succeeds, 408, 425, 429 and 5xx fail transiently (the step's retry applies), other codes fail permanently."`
	// Body is the answer's body.
	Body config.JSON `yaml:"body" doc:"The answer's body, as the step's output."`
}

// Expectations is what a test expects of a run.
type Expectations struct {
	// Status is the run's final status.
	Status string `yaml:"status" enum:"succeeded,failed" doc:"The run's final status."`
	// Error is text the run's error must contain.
	Error string `yaml:"error" doc:"Text the run's error must contain."`
	// Calls are the calls the run must have made, in order.
	Calls []*ExpectedCall `yaml:"calls" doc:"The calls the run made, all of them, in order."`
	// Published are the messages the run must have published, in order.
	Published []*ExpectedMessage `yaml:"published" doc:"The messages the run published, all of them, in order."`
	// Reply is the answer to the invocation.
	Reply config.JSON `yaml:"reply" doc:"The reply the run gave: status, headers and body (a subset match)."`
	// Vars are the run's variables at its end.
	Vars config.JSON `yaml:"vars" doc:"Variables the run ended with (a subset match)."`
}

// ExpectedCall is a call a test expects.
type ExpectedCall struct {
	// Call is the operation.
	Call string `yaml:"call" required:"true" doc:"The operation called: <system>.<operation>."`
	// With are parameters the call must have had.
	With config.JSON `yaml:"with" doc:"Parameters the call had (a subset match)."`
}

// ExpectedMessage is a published message a test expects.
type ExpectedMessage struct {
	// Type is the message's type.
	Type string `yaml:"type" required:"true" doc:"The message's type."`
	// Subject is the message's subject.
	Subject string `yaml:"subject" doc:"The message's subject."`
	// Data is data the message must hold.
	Data config.JSON `yaml:"data" doc:"Data the message held (a subset match)."`
}

// RegisterTests adds the FlowTest kind to a registry.
func RegisterTests(r *config.Registry) error {
	return r.Register(config.Kind{Name: TestKind, Doc: testKindDoc, Example: testKindExample, New: func() any { return new(TestSpec) }})
}

var _ config.Validator = (*TestSpec)(nil)

// Validate checks the test against its flow: the right kind of trigger input, and stubs for
// operations that exist.
func (t *TestSpec) Validate(ctx *config.Context) error {
	res, ok := ctx.Lookup(Kind, t.Flow)
	if !ok {
		return ctx.Err() // the ref check has said so
	}
	fs := res.Spec.(*Spec)
	switch {
	case fs.Trigger.Message != nil && t.Message == nil:
		ctx.Errorf("message", "flow %q has a message trigger: give the trigger message", t.Flow)
	case fs.Trigger.Invoke != nil && t.Message != nil:
		ctx.Errorf("message", "flow %q is invoked: give input, not message", t.Flow)
	case fs.Trigger.Message == nil && t.Message != nil && fs.Trigger.Schedule == nil:
		ctx.Errorf("message", "flow %q has no message trigger", t.Flow)
	}
	if fs.Trigger.Invoke == nil && !t.Input.IsZero() {
		ctx.Errorf("input", "flow %q is not invoked: input applies to flows with an invoke trigger", t.Flow)
	}
	if fs.Trigger.Invoke == nil && !t.Expect.Reply.IsZero() {
		ctx.Errorf("expect.reply", "flow %q is not invoked, so it does not reply", t.Flow)
	}
	for i, s := range t.Stubs {
		field := "stubs[" + strconv.Itoa(i) + "]"
		if (s.Respond == nil) == (len(s.Responses) == 0) {
			ctx.Errorf(field, "give respond or responses (one of them)")
		}
		sysName, op, ok := system.SplitCall(s.Call)
		if !ok {
			ctx.Errorf(field+".call", "%q: write <system>.<operation>", s.Call)
			continue
		}
		r, ok := ctx.Lookup(system.Kind, sysName)
		if !ok {
			ctx.Errorf(field+".call", "System %q is not defined", sysName)
			continue
		}
		if _, ok := r.Spec.(*system.Spec).Operation(op); !ok {
			ctx.Errorf(field+".call", "System %q has no operation %q", sysName, op)
		}
	}
	return ctx.Err()
}
