// Package gateway implements the API kind: a standard face on systems, served on the http
// listener. Each route of an API proxies to an operation of a System (with request and
// response mappings, so that every API speaks the same objects whatever the backend
// returns), invokes a flow and answers with its reply, or publishes a message and answers
// 202 with the URL of the request's status. A proxy or flow route whose system is offline
// can queue its requests on the bus instead of refusing them.
package gateway

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/gateway/requests"
	"github.com/causeway/causeway/system"
)

// Kind is the kind name of API definitions.
const Kind = "API"

const kindDoc = `An API is a standard HTTP face on one or more systems, served by the gateway on the http
listener under its basePath. Each route matches a method and a path with {parameters} and
proxies to an operation of a System — the request mapped into the operation's parameters,
the answer mapped into the API's own objects, backend failures turned into problem+json
without the backend's details — invokes a flow and answers with its reply, or publishes a
message and answers 202 with the URL of the request's status. A proxy or flow route whose
system is offline or in maintenance fails with 503 or, with whenOffline: queue, accepts the
request into the bus and carries it out once the system is back. A proxy can only reach
its System's base URL: the operation says where.`

const kindExample = `apiVersion: causeway/v1
kind: API
metadata:
  name: orders
  description: Orders, whatever system holds them
spec:
  basePath: /api/orders
  version: v1
  policies:
    auth: {apiKey: {header: X-Api-Key}}
    rateLimit: {requests: 100, per: 1s}
  routes:
    - match: POST /{orderId}/shipment
      description: Mark an order as shipped
      proxy:
        call: erp.markShipped
        with: {orderId: "${{ .path.orderId }}", body: {carrier: "${{ .body.carrier }}"}}
        response:
          status: 201
          body: '{orderId: .body.order_no, shippedAt: .body.shipped_at}'`

// Spec is the spec of an API.
type Spec struct {
	// BasePath prefixes every route.
	BasePath string `yaml:"basePath" required:"true" doc:"The path every route is under, starting with / and without a trailing /; not under /v1, which is Causeway's own." example:"/api/orders"`
	// Version names the API's version in its document.
	Version string `yaml:"version" default:"v1" doc:"The API's version, shown in its OpenAPI document."`
	// Routes are the API's operations.
	Routes []*Route `yaml:"routes" required:"true" doc:"The API's routes; a request matches the route with the most literal path segments among those of its method."`
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64 `yaml:"maxBodyBytes" default:"1048576" doc:"The largest request body, in bytes; larger ones get 413."`
	// Timeout bounds a request.
	Timeout time.Duration `yaml:"timeout" default:"30s" doc:"How long a request may take, unless its route says otherwise; then 504."`
	// Callbacks allows clients of asynchronous requests to name a callback URL.
	Callbacks *Callbacks `yaml:"callbacks" doc:"Where clients may ask to be called back when an asynchronous request (202) is done, with the Causeway-Callback header; without it the header is refused."`
	// Policies apply to every route.
	Policies *Policies `yaml:"policies" required:"true" doc:"The rules every request passes: authentication (required, if only as none: true), scopes, rate limit, quota, address lists, CORS, caching, body validation, header forwarding. A route's policies replace these one by one."`
}

// Route is one operation of an API.
type Route struct {
	// Match is the method and path.
	Match string `yaml:"match" required:"true" doc:"The method and the path under basePath, with {name} for a parameter segment." example:"GET /{orderId}"`
	// Description says what the route does.
	Description string `yaml:"description" doc:"What the route does, for the API's document."`
	// Timeout overrides the API's.
	Timeout time.Duration `yaml:"timeout" doc:"How long a request of this route may take; the API's timeout when not set."`
	// Proxy calls a system operation.
	Proxy *Proxy `yaml:"proxy" doc:"Call an operation of a System and answer with its (mapped) answer."`
	// Flow invokes a flow.
	Flow *FlowRoute `yaml:"flow" doc:"Invoke a flow (with an invoke trigger) and answer with its reply."`
	// Publish publishes a message and answers 202.
	Publish *PublishRoute `yaml:"publish" doc:"Validate the request and publish it as a message; answer 202 Accepted with Location: /v1/requests/{id}, where the client finds the reply of the flow the message triggers."`
	// WhenOffline says what a proxy or flow route does while its system is unavailable.
	WhenOffline string `yaml:"whenOffline" enum:"fail,queue" doc:"While the route's system (the proxy's, or flow.system) is offline or in maintenance: fail answers 503 with Retry-After; queue accepts the request into the bus, answers 202 with Location: /v1/requests/{id}, and carries it out, in order, once the system is back. fail when not set."`
	// Policies replace the API's for this route.
	Policies *Policies `yaml:"policies" doc:"Policies that replace the API's for this route, one by one (for example scopes, or a rate limit of its own)."`

	method   string
	segments []segment
	literals int
	// policies are the API's and the route's together.
	policies *Policies
	// cache keeps the route's GET answers, when its policy says so.
	cache *responseCache
	// rateScope and quotaScope name the buckets the route counts in: the API's, or the
	// route's own when it declares a limit.
	rateScope, quotaScope string
}

// Proxy is a route to a system operation.
type Proxy struct {
	// Call names the operation.
	Call string `yaml:"call" required:"true" doc:"The operation, written <system>.<operation>." example:"erp.getOrder"`
	// With maps the request into the call's parameters.
	With config.JSON `yaml:"with" doc:"The call's parameters, as in a flow's call step; templates read the request as .path, .query, .headers (lower-case names) and .body. Without with, the path parameters are passed by name and the body as the body."`
	// Response maps the answer.
	Response *Response `yaml:"response" doc:"How the backend's answer becomes the API's; without it the backend's body is passed on with status 200."`

	system, op string
	with       *expr.Value
	needs      needs
}

// Response maps a backend's answer.
type Response struct {
	// Body is a jq program over {status, headers, body} of the backend's answer.
	Body string `yaml:"body" doc:"A jq program over the backend's answer as {status, headers, body} (headers with lower-case names) yielding the body to answer; null answers 204." example:"{id: .body.order_no, total: .body.amount}"`
	// Status is the status to answer.
	Status int `yaml:"status" doc:"The status to answer on success; 200 when not set (204 when the body is null)."`
	// Headers are set on the answer.
	Headers map[string]string `yaml:"headers" doc:"Headers to set on the answer."`

	body *expr.Program
	// readsHeaders says the body mapping mentions the answer's headers.
	readsHeaders bool
}

// FlowRoute is a route to a flow.
type FlowRoute struct {
	// Name is the flow.
	Name string `yaml:"name" required:"true" doc:"The flow to invoke; it must have an invoke trigger."`
	// Input maps the request into the flow's input.
	Input string `yaml:"input" doc:"A jq program over the request (.method, .path, .query, .headers, .body) yielding the flow's input; the request body when not set." example:"{orderId: .path.orderId} + .body"`

	// System is the system the flow depends on.
	System string `yaml:"system" doc:"The system the flow depends on: while it is offline or in maintenance the route does what whenOffline says."`

	input *expr.Program
	needs needs
}

// PublishRoute is a route that publishes a message.
type PublishRoute struct {
	// Type is the message's type.
	Type string `yaml:"type" required:"true" doc:"The MessageType of the message; the message's data is validated against its schema (422 with the failing fields when it does not match)."`
	// Source is the message's source.
	Source string `yaml:"source" doc:"The message's source attribute; /apis/<api name> when not set."`
	// Data maps the request into the message's data.
	Data string `yaml:"data" doc:"A jq program over the request (.method, .path, .query, .headers, .body) yielding the message's data; the request body when not set." example:"{orderId: .path.orderId} + .body"`
	// Subject maps the request into the message's subject.
	Subject string `yaml:"subject" doc:"A jq program over the request yielding the message's subject attribute (a string), for example a business key." example:".path.orderId"`

	data, subject *expr.Program
	needs         needs
}

// Callbacks is the allow-list of callback URLs.
type Callbacks struct {
	// Allow are the URL prefixes callbacks may go to.
	Allow []string `yaml:"allow" required:"true" doc:"URL prefixes a callback may go to, such as https://partner.example.com/hooks/: the scheme, host and port must be the prefix's and the path must start with its path."`
	// AllowPrivate allows private addresses.
	AllowPrivate bool `yaml:"allowPrivate" doc:"Allow callback hosts on loopback, private and shared address ranges (on-premises clients, tests). Refused by default."`
	// AllowLinkLocal allows link-local and metadata addresses.
	AllowLinkLocal bool `yaml:"allowLinkLocal" doc:"Allow callback hosts on link-local addresses, cloud metadata addresses included. Refused by default."`
}

// policy is the callbacks' policy as the requests store takes it.
func (c *Callbacks) policy() *requests.CallbackPolicy {
	return &requests.CallbackPolicy{Allow: c.Allow, AllowPrivate: c.AllowPrivate, AllowLinkLocal: c.AllowLinkLocal}
}

// segment is a piece of a route's path: a literal, or a parameter.
type segment struct {
	literal string
	param   string
}

// Register adds the API kind to r.
func Register(r *config.Registry) error {
	return r.Register(config.Kind{Name: Kind, Doc: kindDoc, Example: kindExample, New: func() any { return new(Spec) }})
}

var (
	literalSegment = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@-]+$`)
	paramSegment   = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)\}$`)
	methods        = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}
)

// reserved are the paths of the http listener that APIs may not take.
var reserved = []string{"/v1", "/healthz", "/readyz"}

// Provision parses the routes and compiles their expressions.
func (s *Spec) Provision(ctx *config.Context) error {
	if !strings.HasPrefix(s.BasePath, "/") || (len(s.BasePath) > 1 && strings.HasSuffix(s.BasePath, "/")) || s.BasePath == "/" {
		ctx.Errorf("basePath", "%q: start with / and do not end with /, e.g. /api/orders", s.BasePath)
	} else {
		for _, seg := range strings.Split(s.BasePath[1:], "/") {
			if !literalSegment.MatchString(seg) || seg == "." || seg == ".." {
				ctx.Errorf("basePath", "%q: segment %q is not a plain path segment", s.BasePath, seg)
			}
		}
		for _, r := range reserved {
			if s.BasePath == r || strings.HasPrefix(s.BasePath, r+"/") {
				ctx.Errorf("basePath", "%q is under %s, which is Causeway's own", s.BasePath, r)
			}
		}
	}
	if s.Policies != nil {
		s.Policies.provision(ctx, "policies")
		if s.Policies.Auth == nil {
			ctx.Errorf("policies.auth", "every API says who may call it: apiKey, jwt, or none: true for an open API")
		}
	}
	seen := map[string]int{}
	for i, rt := range s.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		rt.parse(ctx, at)
		if rt.method == "GET" && rt.shapeNamed() == documentPath {
			ctx.Errorf(at+".match", "GET %s is where the API serves its OpenAPI document", documentPath)
		}
		if rt.Policies != nil {
			rt.Policies.provision(ctx, at+".policies")
		}
		if s.Policies != nil {
			rt.policies = s.Policies.merge(rt.Policies)
		}
		rt.rateScope, rt.quotaScope = ctx.Name(), ctx.Name()
		if rt.Policies != nil && rt.Policies.RateLimit != nil {
			rt.rateScope = fmt.Sprintf("%s.r%d", ctx.Name(), i)
		}
		if rt.Policies != nil && rt.Policies.Quota != nil {
			rt.quotaScope = fmt.Sprintf("%s.r%d", ctx.Name(), i)
		}
		key := rt.method + " " + rt.shape()
		if j, dup := seen[key]; dup && rt.method != "" {
			ctx.Errorf(at+".match", "the same method and path as routes[%d]", j)
		}
		seen[key] = i
		kinds := 0
		for _, set := range []bool{rt.Proxy != nil, rt.Flow != nil, rt.Publish != nil} {
			if set {
				kinds++
			}
		}
		switch {
		case kinds != 1:
			ctx.Errorf(at, "a route has one of proxy, flow and publish")
		case rt.Proxy != nil:
			rt.Proxy.provision(ctx, at+".proxy")
		case rt.Flow != nil && rt.Flow.Input != "":
			rt.Flow.input, rt.Flow.needs = compileProgram(ctx, at+".flow.input", rt.Flow.Input)
		case rt.Publish != nil:
			p := rt.Publish
			if p.Data != "" {
				p.data, p.needs = compileProgram(ctx, at+".publish.data", p.Data)
			}
			if p.Subject != "" {
				var n needs
				p.subject, n = compileProgram(ctx, at+".publish.subject", p.Subject)
				p.needs |= n
			}
			if rt.WhenOffline != "" {
				ctx.Errorf(at+".whenOffline", "a publish route always queues: its message waits on the bus for whatever handles it")
			}
		}
		if rt.WhenOffline != "" && rt.Flow != nil && rt.Flow.System == "" {
			ctx.Errorf(at+".whenOffline", "a flow route says which system it depends on (flow.system) for whenOffline to know when it is offline")
		}
	}
	if c := s.Callbacks; c != nil {
		if len(c.Allow) == 0 {
			ctx.Errorf("callbacks.allow", "name at least one URL prefix callbacks may go to")
		}
		for i, prefix := range c.Allow {
			if err := (requests.CallbackPolicy{Allow: []string{prefix}}).Validate(); err != nil {
				ctx.Errorf(fmt.Sprintf("callbacks.allow[%d]", i), "%v", err)
			}
		}
	}
	return ctx.Err()
}

// compileProgram compiles a route's jq program and finds the parts of the request it reads.
func compileProgram(ctx *config.Context, at, src string) (*expr.Program, needs) {
	p, err := expr.Compile(src)
	if err != nil {
		ctx.Errorf(at, "%v", err)
	}
	return p, needsOf([]byte(src))
}

// parse reads the route's match.
func (rt *Route) parse(ctx *config.Context, at string) {
	method, path, ok := strings.Cut(strings.TrimSpace(rt.Match), " ")
	path = strings.TrimSpace(path)
	if !ok || !methods[method] {
		ctx.Errorf(at+".match", "%q: write METHOD /path, with METHOD one of GET, POST, PUT, PATCH, DELETE", rt.Match)
		return
	}
	if !strings.HasPrefix(path, "/") {
		ctx.Errorf(at+".match", "%q: the path starts with /", rt.Match)
		return
	}
	rt.method, rt.segments, rt.literals = method, nil, 0
	params := map[string]bool{}
	if path == "/" {
		return
	}
	for _, seg := range strings.Split(path[1:], "/") {
		if m := paramSegment.FindStringSubmatch(seg); m != nil {
			if params[m[1]] {
				ctx.Errorf(at+".match", "%q: parameter %s appears twice", rt.Match, m[1])
			}
			params[m[1]] = true
			rt.segments = append(rt.segments, segment{param: m[1]})
			continue
		}
		if !literalSegment.MatchString(seg) || seg == "." || seg == ".." || strings.ContainsAny(seg, "{}") {
			ctx.Errorf(at+".match", "%q: segment %q is neither a plain segment nor a {parameter}", rt.Match, seg)
			return
		}
		rt.segments = append(rt.segments, segment{literal: seg})
		rt.literals++
	}
}

// shape is the route's path with parameters unnamed, to find duplicates.
func (rt *Route) shape() string { return rt.pathOf(false) }

// shapeNamed is the route's path with its parameters named.
func (rt *Route) shapeNamed() string { return rt.pathOf(true) }

// pathOf writes the route's path, its parameters as {name} or as {}.
func (rt *Route) pathOf(named bool) string {
	var b strings.Builder
	for _, s := range rt.segments {
		b.WriteByte('/')
		switch {
		case s.param == "":
			b.WriteString(s.literal)
		case named:
			b.WriteString("{" + s.param + "}")
		default:
			b.WriteString("{}")
		}
	}
	return b.String()
}

// provision compiles a proxy's call and mappings.
func (p *Proxy) provision(ctx *config.Context, at string) {
	sys, op, ok := system.SplitCall(p.Call)
	if !ok || sys == "" || op == "" {
		ctx.Errorf(at+".call", "%q: write <system>.<operation>", p.Call)
	}
	p.system, p.op = sys, op
	if !p.With.IsZero() {
		v, errs := expr.CompileValue(p.With.Raw)
		for _, e := range errs {
			ctx.ErrorAt(p.With.PosOf(e.Pointer), "spec.%s.with%s: %v", at, e.Pointer, e.Err)
		}
		p.with, p.needs = v, needsOf(p.With.Raw)
	}
	if r := p.Response; r != nil {
		if r.Body != "" {
			prog, err := expr.Compile(r.Body)
			if err != nil {
				ctx.Errorf(at+".response.body", "%v", err)
			}
			r.body, r.readsHeaders = prog, needsOf([]byte(r.Body))&needHeaders != 0
		}
		if r.Status != 0 && (r.Status < 200 || r.Status > 299) {
			ctx.Errorf(at+".response.status", "a success status, from 200 to 299")
		}
	}
}

// Validate checks the references: systems and operations, flows with invoke triggers, and
// that no two APIs share a base path.
func (s *Spec) Validate(ctx *config.Context) error {
	for i, rt := range s.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if p := rt.Proxy; p != nil && p.system != "" {
			res, ok := ctx.Lookup(system.Kind, p.system)
			if !ok {
				ctx.Errorf(at+".proxy.call", "no System %q is defined", p.system)
			} else if _, ok := res.Spec.(*system.Spec).Operation(p.op); !ok {
				ctx.Errorf(at+".proxy.call", "System %q has no operation %q", p.system, p.op)
			}
		}
		if p := rt.Publish; p != nil {
			if _, ok := ctx.Lookup(catalog.Kind, p.Type); !ok {
				ctx.Errorf(at+".publish.type", "no MessageType %q is defined", p.Type)
			}
		}
		if f := rt.Flow; f != nil && f.System != "" {
			if _, ok := ctx.Lookup(system.Kind, f.System); !ok {
				ctx.Errorf(at+".flow.system", "no System %q is defined", f.System)
			}
		}
		if f := rt.Flow; f != nil {
			res, ok := ctx.Lookup(flow.Kind, f.Name)
			if !ok {
				ctx.Errorf(at+".flow.name", "no Flow %q is defined", f.Name)
			} else if res.Spec.(*flow.Spec).Trigger.Invoke == nil {
				ctx.Errorf(at+".flow.name", "Flow %q has no invoke trigger: a route can only invoke a flow that answers", f.Name)
			}
		}
	}
	validateType := func(at string, p *Policies) {
		if p != nil && p.Validate != nil && p.Validate.MessageType != "" {
			if _, ok := ctx.Lookup(catalog.Kind, p.Validate.MessageType); !ok {
				ctx.Errorf(at+".validate.messageType", "no MessageType %q is defined", p.Validate.MessageType)
			}
		}
	}
	validateType("policies", s.Policies)
	for i, rt := range s.Routes {
		validateType(fmt.Sprintf("routes[%d].policies", i), rt.Policies)
	}
	for _, other := range ctx.All(Kind) {
		if other.Metadata.Name != ctx.Name() && other.Spec.(*Spec).BasePath == s.BasePath {
			ctx.Errorf("basePath", "%q is also the base path of API %s", s.BasePath, other.Metadata.Name)
		}
	}
	return ctx.Err()
}
