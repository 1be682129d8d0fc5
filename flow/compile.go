package flow

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/internal/cronspec"
	"github.com/causeway/causeway/system"
)

// compiled is a flow's checked form: its expressions compiled, its schedule parsed.
type compiled struct {
	filter   *expr.Program
	key      *expr.Program
	schedule cron.Schedule
	// replies says the flow has a reply step somewhere.
	replies bool
}

// compiledStep is a step's checked form.
type compiledStep struct {
	action  string // which action the step takes: "call", "publish", …
	guard   *expr.Program
	system  string
	op      string
	with    *expr.Value
	set     *expr.Value
	data    *expr.Value
	subject *expr.Template
	foreach *expr.Program
	when    []*expr.Program // per switch case; nil for the default case
	delay   *expr.Template
	reply   *expr.Value
	headers map[string]*expr.Template // reply headers
	fail    *expr.Template
}

// Action names, as the run history shows them.
const (
	ActionCall     = "call"
	ActionPublish  = "publish"
	ActionSet      = "set"
	ActionIf       = "if"
	ActionSwitch   = "switch"
	ActionForeach  = "foreach"
	ActionParallel = "parallel"
	ActionDelay    = "delay"
	ActionReply    = "reply"
	ActionFail     = "fail"
)

// stepID is what a step id may look like: it appears in journal keys and in .steps.<id>.
var stepID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,62}$`)

var _ config.Provisioner = (*Spec)(nil)

// Provision compiles every expression and template of the flow and parses its schedule, so
// that each problem is a validate error with its position, and a running flow never
// compiles anything. It also runs every other check (see check) in the same pass, so that
// validate reports all of a flow's problems at once rather than in rounds.
func (s *Spec) Provision(ctx *config.Context) error {
	c := &compiled{}
	t := s.Trigger
	if m := t.Message; m != nil && m.Filter != "" {
		c.filter = compileProgram(ctx, "trigger.message.filter", m.Filter)
	}
	if s.Key != "" {
		c.key = compileProgram(ctx, "key", s.Key)
	}
	if sc := t.Schedule; sc != nil {
		if sched, errs := cronspec.Parse(sc.Cron, sc.Timezone); errs != nil {
			for _, e := range errs {
				ctx.Errorf("trigger.schedule."+e.Field, "%s", e.Msg)
			}
		} else {
			c.schedule = sched
		}
	}
	s.compiled = c
	compileSteps(ctx, "steps", s.Steps)
	compileSteps(ctx, "onError", s.OnError)
	s.check(ctx)
	return ctx.Err()
}

func compileSteps(ctx *config.Context, field string, steps []*Step) {
	for i, st := range steps {
		if st != nil {
			compileStep(ctx, fmt.Sprintf("%s[%d]", field, i), st)
		}
	}
}

// compileStep works out the step's action and compiles its expressions.
func compileStep(ctx *config.Context, field string, st *Step) {
	c := &compiledStep{}
	st.compiled = c
	var actions []string
	add := func(set bool, name string) {
		if set {
			actions = append(actions, name)
		}
	}
	add(st.Call != "", ActionCall)
	add(st.Publish != nil, ActionPublish)
	add(!st.Set.IsZero(), ActionSet)
	add(st.Then != nil || st.Else != nil, ActionIf)
	add(st.Switch != nil, ActionSwitch)
	add(st.Foreach != "", ActionForeach)
	add(st.Parallel != nil, ActionParallel)
	add(st.Delay != "", ActionDelay)
	add(st.Reply != nil, ActionReply)
	add(st.Fail != "", ActionFail)
	switch len(actions) {
	case 0:
		if st.If != "" {
			ctx.Errorf(field, "step %q has if but nothing to do: give then (and else), or an action that if guards", st.ID)
		} else {
			ctx.Errorf(field, "step %q does nothing: give one of call, publish, set, then/else, switch, foreach, parallel, delay, reply or fail", st.ID)
		}
	case 1:
		c.action = actions[0]
	default:
		ctx.Errorf(field, "step %q has more than one action (%s): give each its own step", st.ID, strings.Join(actions, ", "))
	}
	if st.If != "" {
		c.guard = compileProgram(ctx, field+".if", st.If)
	}
	if c.action == ActionIf && st.If == "" {
		ctx.Errorf(field, "step %q has then/else but no if to choose between them", st.ID)
	}
	if c.action != ActionForeach {
		if st.Do != nil {
			ctx.Errorf(field+".do", "do belongs to foreach")
		}
		if st.As != "item" {
			ctx.Errorf(field+".as", "as belongs to foreach")
		}
		if st.Concurrency != 1 {
			ctx.Errorf(field+".concurrency", "concurrency belongs to foreach")
		}
	}
	if c.action != ActionCall && !st.With.IsZero() {
		ctx.Errorf(field+".with", "with belongs to call")
	}
	if st.Timeout < 0 {
		ctx.Errorf(field+".timeout", "must be positive")
	}
	if r := st.Retry; r != nil {
		if r.Attempts < 1 || r.Attempts > 100 {
			ctx.Errorf(field+".retry.attempts", "must be between 1 and 100, got %d", r.Attempts)
		}
		if r.Backoff <= 0 || r.MaxBackoff < r.Backoff {
			ctx.Errorf(field+".retry", "backoff must be positive and at most maxBackoff")
		}
	}

	if d := st.Delivery; d != nil {
		if c.action != ActionCall {
			ctx.Errorf(field+".delivery", "delivery belongs to call")
		}
		if d.Retry != nil {
			system.CheckRetry(ctx, field+".delivery.retry", d.Retry)
		}
	}

	switch c.action {
	case ActionCall:
		sys, op, ok := system.SplitCall(st.Call)
		if !ok || sys == "" || op == "" {
			ctx.Errorf(field+".call", "%q: write <system>.<operation>", st.Call)
		}
		c.system, c.op = sys, op
		c.with = compileValue(ctx, field+".with", st.With)
	case ActionPublish:
		c.data = compileValue(ctx, field+".publish.data", st.Publish.Data)
		if st.Publish.Subject != "" {
			c.subject = compileTemplate(ctx, field+".publish.subject", st.Publish.Subject)
		}
	case ActionSet:
		c.set = compileValue(ctx, field+".set", st.Set)
	case ActionIf:
		compileSteps(ctx, field+".then", st.Then)
		compileSteps(ctx, field+".else", st.Else)
	case ActionSwitch:
		if len(st.Switch) == 0 {
			ctx.Errorf(field+".switch", "a switch needs at least one case")
		}
		for i, cs := range st.Switch {
			cf := fmt.Sprintf("%s.switch[%d]", field, i)
			var p *expr.Program
			if cs.When != "" {
				p = compileProgram(ctx, cf+".when", cs.When)
			} else if i != len(st.Switch)-1 {
				ctx.Errorf(cf, "the default case (no when) must be the last")
			}
			c.when = append(c.when, p)
			compileSteps(ctx, cf+".steps", cs.Steps)
		}
	case ActionForeach:
		c.foreach = compileProgram(ctx, field+".foreach", st.Foreach)
		if len(st.Do) == 0 {
			ctx.Errorf(field, "foreach needs do: the steps to run for each element")
		}
		if !varName.MatchString(st.As) {
			ctx.Errorf(field+".as", "invalid variable name %q: letters, digits and '_'", st.As)
		}
		if st.Concurrency < 1 || st.Concurrency > 1000 {
			ctx.Errorf(field+".concurrency", "must be between 1 and 1000, got %d", st.Concurrency)
		}
		compileSteps(ctx, field+".do", st.Do)
	case ActionParallel:
		if len(st.Parallel) < 2 {
			ctx.Errorf(field+".parallel", "parallel needs at least two branches")
		}
		for i, b := range st.Parallel {
			compileSteps(ctx, fmt.Sprintf("%s.parallel[%d].steps", field, i), b.Steps)
		}
	case ActionDelay:
		c.delay = compileTemplate(ctx, field+".delay", st.Delay)
		if c.delay != nil && c.delay.IsLiteral() {
			if d, err := time.ParseDuration(c.delay.Literal()); err != nil || d <= 0 {
				ctx.Errorf(field+".delay", "%q is not a positive duration such as 30s or 1h30m", st.Delay)
			}
		}
	case ActionReply:
		if st.Reply.Status < 100 || st.Reply.Status > 599 {
			ctx.Errorf(field+".reply.status", "%d is not an HTTP status", st.Reply.Status)
		}
		c.reply = compileValue(ctx, field+".reply.body", st.Reply.Body)
		for name, v := range st.Reply.Headers {
			if c.headers == nil {
				c.headers = map[string]*expr.Template{}
			}
			c.headers[name] = compileTemplate(ctx, config.MapPath(field+".reply.headers", name), v)
		}
	case ActionFail:
		c.fail = compileTemplate(ctx, field+".fail", st.Fail)
	}
}

// varName is what a variable may be called.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// compileProgram compiles a jq program written in a spec field, reporting a syntax error at
// the field.
func compileProgram(ctx *config.Context, field, src string) *expr.Program {
	p, err := expr.Compile(src)
	if err != nil {
		ctx.Errorf(field, "%v", err)
		return nil
	}
	return p
}

// compileTemplate compiles a string field that may hold ${{ }} templates.
func compileTemplate(ctx *config.Context, field, src string) *expr.Template {
	t, err := expr.ParseTemplate(src)
	if err != nil {
		ctx.Errorf(field, "%v", err)
		return nil
	}
	return t
}

// compileValue compiles the templates in a JSON-valued field, reporting each bad one at the
// line of the string that holds it.
func compileValue(ctx *config.Context, field string, j config.JSON) *expr.Value {
	if j.IsZero() {
		return nil
	}
	v, errs := expr.CompileValue(j.Raw)
	for _, e := range errs {
		ctx.ErrorAt(j.PosOf(e.Pointer), "spec.%s%s: %v", field, pointerPath(e.Pointer), e.Err)
	}
	return v
}

// pointerPath writes a JSON pointer as a field path suffix: /body/lines/0 → .body.lines[0].
func pointerPath(ptr string) string {
	if ptr == "" {
		return ""
	}
	var b strings.Builder
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
		} else {
			b.WriteString(config.MapPath("", tok))
		}
	}
	return b.String()
}

// check checks the flow as a whole and against the other definitions: the trigger, unique
// step ids, the systems and operations called, and replies only where someone waits. The
// systems it looks up are decoded, which is all it needs of them.
func (s *Spec) check(ctx *config.Context) {
	t := s.Trigger
	n := 0
	for _, set := range []bool{t.Message != nil, t.Schedule != nil, t.Invoke != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		ctx.Errorf("trigger", "give exactly one of message, schedule or invoke")
	}
	if s.Key != "" && t.Message == nil {
		ctx.Errorf("key", "key orders messages, so it needs a message trigger")
	}
	if s.Concurrency < 1 || s.Concurrency > 10000 {
		ctx.Errorf("concurrency", "must be between 1 and 10000, got %d", s.Concurrency)
	}
	if t.Invoke != nil && t.Invoke.Timeout <= 0 {
		ctx.Errorf("trigger.invoke.timeout", "must be positive")
	}
	ids := map[string]string{}
	walk(s, func(field string, st *Step) {
		if !stepID.MatchString(st.ID) {
			ctx.Errorf(field+".id", "invalid step id %q: start with a letter, then letters, digits, '_' or '-' (at most 63)", st.ID)
		} else if first, dup := ids[st.ID]; dup {
			ctx.Errorf(field+".id", "step id %q is already used by spec.%s; step ids are unique in a flow", st.ID, first)
		} else {
			ids[st.ID] = field
		}
		c := st.compiled
		if c == nil {
			return
		}
		switch c.action {
		case ActionCall:
			checkCall(ctx, field, st)
		case ActionReply:
			if t.Invoke == nil && t.Message == nil {
				ctx.Errorf(field+".reply", "reply answers an invocation, or the gateway request that published a message; a scheduled run has nobody to answer")
			}
			if s.compiled != nil {
				s.compiled.replies = true
			}
		}
	})
}

// checkCall checks that the system and operation a call names exist, and that the call
// gives every parameter the operation's path needs.
func checkCall(ctx *config.Context, field string, st *Step) {
	c := st.compiled
	if c.system == "" || c.op == "" {
		return
	}
	res, ok := ctx.Lookup(system.Kind, c.system)
	if !ok {
		ctx.Errorf(field+".call", "System %q is not defined", c.system)
		return
	}
	sys, _ := res.Spec.(*system.Spec)
	op, ok := sys.Operation(c.op)
	if !ok {
		ctx.Errorf(field+".call", "System %q has no operation %q%s", c.system, c.op, known(sys))
		return
	}
	params := map[string]any{}
	if !st.With.IsZero() {
		if err := st.With.Unmarshal(&params); err != nil {
			// A with that is one template yields its parameters only when the flow runs.
			return
		}
	}
	switch {
	case op.HTTP != nil:
		for _, p := range op.HTTP.PathParams() {
			if _, ok := params[p]; !ok {
				ctx.Errorf(field+".with", "the call of %s needs with.%s for the path %s", st.Call, p, op.HTTP.Path)
			}
		}
	case op.SQL != nil:
		want := op.SQL.Params()
		for _, p := range want {
			if _, ok := params[p]; !ok {
				ctx.Errorf(field+".with", "the call of %s needs with.%s for its statement's :%s", st.Call, p, p)
			}
		}
		names := make([]string, 0, len(params))
		for k := range params {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			if !slices.Contains(want, k) {
				ctx.Errorf(config.MapPath(field+".with", k), "%s is not a parameter of %s (its statements use %s)", k, st.Call, paramList(want))
			}
		}
	}
}

// paramList shows statement parameters in a message: ":a, :b", or "none".
func paramList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return ":" + strings.Join(names, ", :")
}

// known lists a system's operations for a message.
func known(sys *system.Spec) string {
	if len(sys.Operations) == 0 {
		return " (it declares none)"
	}
	names := make([]string, 0, len(sys.Operations))
	for n := range sys.Operations {
		names = append(names, n)
	}
	slices.Sort(names)
	return " (it has " + strings.Join(names, ", ") + ")"
}

// walk calls fn for every step of the flow, nested ones included, with its field path.
func walk(s *Spec, fn func(field string, st *Step)) {
	var steps func(field string, list []*Step)
	steps = func(field string, list []*Step) {
		for i, st := range list {
			if st == nil {
				continue
			}
			f := fmt.Sprintf("%s[%d]", field, i)
			fn(f, st)
			steps(f+".then", st.Then)
			steps(f+".else", st.Else)
			for j, cs := range st.Switch {
				steps(fmt.Sprintf("%s.switch[%d].steps", f, j), cs.Steps)
			}
			steps(f+".do", st.Do)
			for j, b := range st.Parallel {
				steps(fmt.Sprintf("%s.parallel[%d].steps", f, j), b.Steps)
			}
		}
	}
	steps("steps", s.Steps)
	steps("onError", s.OnError)
}

// Action names what the step does ("call", "publish", …), or "" for a step that did not
// compile.
func (st *Step) Action() string {
	if st.compiled == nil {
		return ""
	}
	return st.compiled.action
}

// Walk calls fn for every step of the flow, nested ones included, with its field path
// ("steps[2].then[0]").
func (s *Spec) Walk(fn func(field string, st *Step)) { walk(s, fn) }
