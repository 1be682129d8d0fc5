package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/connector"
	httpconn "github.com/causeway/causeway/connector/http"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/gateway/jwt"
	"github.com/causeway/causeway/gateway/requests"
	"github.com/causeway/causeway/internal/httpbody"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/system"
)

// Options configures a Gateway.
type Options struct {
	// Config holds the APIs and the systems they call.
	Config *config.Config
	// Answer carries out a system operation (the node's connectors).
	Answer func(ctx context.Context, name string, sys *system.Spec, op string, with map[string]any, info connector.CallInfo) (*connector.Outcome, error)
	// Prepare makes an HTTP operation ready for the fast lane (httpconn.Prepare); without
	// it every request takes the general path.
	Prepare func(name string, sys *system.Spec, op string) (*httpconn.Prepared, error)
	// Webhooks are the paths other handlers of the listener take POST requests on; the
	// fast lane leaves POST requests of an API whose paths they share to the general path.
	Webhooks []string
	// Observe tells the systems' status of a call's outcome, as Answer does for its own
	// calls; the fast lane calls it after each call it makes.
	Observe func(system string, err error)
	// Invoke runs a flow and waits for its reply.
	// gatewayRequest describes the request (see describe): the messages the run publishes
	// show it in their timelines.
	Invoke func(ctx context.Context, name string, input json.RawMessage, gatewayRequest string) (*flow.Answer, *flow.Invocation, error)
	// Unavailable, when set, says whether a system is offline or in maintenance, and until
	// when if that is known.
	Unavailable func(system string) (bool, time.Time)
	// Requests keeps the asynchronous requests (publish routes, and queued ones); without
	// it those answer 503.
	Requests *requests.Store
	// Publish stores a message on the bus, with extra headers, before it returns.
	Publish func(ctx context.Context, ev *message.Event, header map[string]string) error
	// Track records a tracking event in a message's timeline, best effort.
	Track func(ctx context.Context, messageID, event, detail string)
	// Limits holds the rate limits and quotas shared with other nodes; without it they are
	// this node's alone.
	Limits jetstream.KeyValue
	// Revocations holds the keys revoked at run time (RevokeKey); nil when the node has
	// none to follow.
	Revocations *Revocations
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Gateway serves the APIs.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	apis    []*api
	systems map[string]*system.Spec
	tokens  map[*JWTAuth]*jwt.Verifier
	// keys are the Consumers' API keys by hash; subjects the Consumers by JWT subject.
	keys        map[[32]byte]*keyEntry
	subjects    map[string]*consumer
	consumers   map[string]*consumer
	limits      *limiter
	types       *catalog.Catalog
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	refusals    *prometheus.CounterVec
	limitErrors *prometheus.CounterVec
	// byBase are the APIs by base path, longest first; lanes counts the routes the fast
	// lane serves (fast.go).
	byBase []*api
	lanes  int
	fast   *prometheus.CounterVec
}

// api is one API with its routes by method, most literal segments first.
type api struct {
	name     string
	spec     *Spec
	byMethod map[string][]*Route
	g        *Gateway
	// description is the API's metadata.description.
	description string
	// doc is the API's OpenAPI document.
	doc []byte
	// metrics are each route's series, and unmatched those of requests no route took.
	metrics   map[*Route]*routeMetrics
	unmatched *routeMetrics
	// lanes are the routes the fast lane serves, and fast counts the requests it served.
	lanes map[*Route]*lane
	fast  prometheus.Counter
}

// New prepares the APIs of a configuration.
func New(opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{opts: opts, log: opts.Logger.With("component", "gateway"), systems: map[string]*system.Spec{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_requests_total", Help: "Gateway requests, by API, route, consumer (a Consumer's name; - for callers that are not one) and status.",
		}, []string{"api", "route", "consumer", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "causeway_gateway_request_duration_seconds", Help: "How long gateway requests took, by API and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12),
		}, []string{"api", "route"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_refused_total", Help: "Requests a policy refused, by API, route and reason (no-key, wrong-key, revoked-key, bad-token, scope, ip, rate-limit, quota, ...).",
		}, []string{"api", "route", "reason"}),
		limitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_limit_errors_total", Help: "Requests let through because their rate limit or quota could not be checked, by API.",
		}, []string{"api"}),
		fast: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_fast_lane_requests_total", Help: "Requests the fast lane served (ADR 0013), by API; the others took the general path. Each is also counted in causeway_gateway_requests_total.",
		}, []string{"api"}),
		keys: map[[32]byte]*keyEntry{}, subjects: map[string]*consumer{}, consumers: map[string]*consumer{},
		limits: &limiter{kv: opts.Limits, now: time.Now},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(g.requests, g.duration, g.refusals, g.limitErrors, g.fast)
	}
	for _, r := range opts.Config.ByKind(ConsumerKind) {
		spec := r.Spec.(*ConsumerSpec)
		c := &consumer{name: r.Metadata.Name, spec: spec}
		if len(spec.APIs) > 0 {
			c.apis = map[string]bool{}
			for _, name := range spec.APIs {
				c.apis[name] = true
			}
		}
		for _, k := range spec.Keys {
			g.keys[k.hash] = &keyEntry{consumer: c, key: k}
		}
		for _, s := range spec.Subjects {
			g.subjects[s] = c
		}
		g.consumers[c.name] = c
	}
	for _, r := range opts.Config.ByKind(system.Kind) {
		g.systems[r.Metadata.Name] = r.Spec.(*system.Spec)
	}
	for _, r := range opts.Config.ByKind(Kind) {
		a := &api{name: r.Metadata.Name, spec: r.Spec.(*Spec), byMethod: map[string][]*Route{}, g: g,
			metrics: map[*Route]*routeMetrics{}, unmatched: g.routeMetrics(r.Metadata.Name, "unmatched")}
		for _, rt := range a.spec.Routes {
			a.byMethod[rt.method] = append(a.byMethod[rt.method], rt)
			a.metrics[rt] = g.routeMetrics(a.name, rt.Match)
		}
		for _, list := range a.byMethod {
			sort.SliceStable(list, func(i, j int) bool { return list[i].literals > list[j].literals })
		}
		g.apis = append(g.apis, a)
	}
	types := catalog.New(opts.Config)
	g.types = types
	for _, a := range g.apis {
		for _, rt := range a.spec.Routes {
			if v := rt.policies.Validate; v != nil && v.MessageType != "" {
				v.typ, _ = types.Lookup(v.MessageType)
			}
			if c := rt.policies.Cache; c != nil && rt.method == http.MethodGet {
				rt.cache = newResponseCache(c)
			}
		}
	}
	for i, r := range opts.Config.ByKind(Kind) {
		doc, err := g.apis[i].document(r.Metadata.Description)
		if err != nil {
			return nil, fmt.Errorf("API %s: its OpenAPI document: %w", r.Metadata.Name, err)
		}
		g.apis[i].doc, g.apis[i].description = doc, r.Metadata.Description
	}
	if err := g.verifiers(); err != nil {
		return nil, err
	}
	if opts.Registerer != nil && len(g.tokens) > 0 {
		opts.Registerer.MustRegister(newTokenStats(g))
	}
	g.prepareLanes()
	return g, nil
}

// Close gives back what the node holds of shared quotas.
func (g *Gateway) Close(ctx context.Context) {
	g.limits.release(ctx)
}

// Register serves every API under its base path on mux.
func (g *Gateway) Register(mux *http.ServeMux) {
	for _, a := range g.apis {
		mux.Handle(a.spec.BasePath, a)
		mux.Handle(a.spec.BasePath+"/", a)
		g.log.Info("API served", "api", a.name, "basePath", a.spec.BasePath, "routes", len(a.spec.Routes), "fastLane", len(a.lanes))
	}
}

// ServeHTTP routes a request of the API and answers it.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	route, who := a.serve(sw, r)
	m, consumer := a.unmatched, "-"
	if route != nil {
		m = a.metrics[route]
	}
	if who != nil && who.consumer != nil {
		consumer = who.consumer.name
	}
	m.count(consumer, sw.status)
	m.latency.Observe(time.Since(start).Seconds())
}

// serve answers a request and returns the route it matched, if any, and the caller the
// policies found.
func (a *api) serve(w http.ResponseWriter, r *http.Request) (*Route, *caller) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), a.spec.BasePath)
	if rest == documentPath && r.Method == http.MethodGet {
		a.serveDocument(w)
		return nil, nil
	}
	segs, ok := splitPath(rest)
	if !ok {
		problem.Write(w, r, http.StatusBadRequest, "bad-path", "the path has a segment that is empty, not valid percent-encoding, a dot segment, or an encoded slash")
		return nil, nil
	}
	route, params := a.match(r.Method, segs)
	if route == nil {
		var (
			allowed []string
			any     *Route
		)
		for m := range a.byMethod {
			if rt, _ := a.match(m, segs); rt != nil {
				allowed = append(allowed, m)
				any = rt
			}
		}
		if r.Method == http.MethodOptions && any != nil && any.policies.CORS != nil && r.Header.Get("Origin") != "" {
			sort.Strings(allowed)
			any.policies.CORS.preflight(w, r, allowed)
			return any, nil
		}
		if len(allowed) > 0 {
			sort.Strings(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			problem.Write(w, r, http.StatusMethodNotAllowed, "method-not-allowed", r.Method+" is not allowed here; allowed: "+strings.Join(allowed, ", "))
			return nil, nil
		}
		problem.NotFound(w, r)
		return nil, nil
	}
	who, ok := a.guard(w, r, route)
	if !ok {
		// who is the caller when a limit refused it, nil when it did not get that far.
		return route, who
	}
	var rc *responseCache
	if route.cache != nil && r.Method == http.MethodGet {
		rc = route.cache
		if ca, ok := rc.get(cacheKey(who, r), time.Now()); ok {
			writeCached(w, ca, time.Now())
			return route, who
		}
	}
	rq := &request{r: r, params: params, caller: who}
	var (
		raw []byte
		err error
	)
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// A request that says it has no body (most GETs) is not read for one.
		raw, err = httpbody.Read(w, r, a.spec.MaxBodyBytes)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body is over the limit of %d bytes", mbe.Limit))
			return route, who
		}
		problem.Write(w, r, http.StatusBadRequest, "malformed", "reading the body: "+err.Error())
		return route, who
	}
	if !a.validateBody(w, r, route, raw) {
		return route, who
	}
	if len(raw) > 0 {
		if rq.body, err = expr.DecodeJSON(raw); err != nil {
			problem.Write(w, r, http.StatusBadRequest, "malformed", "the body must be JSON")
			return route, who
		}
		rq.raw = raw
	}
	timeout := a.spec.Timeout
	if route.Timeout > 0 {
		timeout = route.Timeout
	}
	ctx, cancel := withDeadline(r.Context(), time.Now().Add(timeout))
	defer cancel()
	var an *answer
	switch {
	case route.Proxy != nil:
		an = a.proxy(ctx, w, r, route, rq)
	case route.Publish != nil:
		an = a.publish(ctx, w, r, route, rq)
	default:
		an = a.flow(ctx, w, r, route, rq)
	}
	if an == nil {
		return route, who
	}
	if rc != nil && an.status == http.StatusOK {
		rc.put(cacheKey(who, r), an, time.Now())
	}
	an.write(w)
	return route, who
}

// splitPath splits a path under an API's base path into its decoded segments; ok is false
// for a segment that is empty, not valid percent-encoding, a dot segment, or holds an
// encoded slash, backslash or NUL.
func splitPath(rest string) (segs []string, ok bool) {
	if rest == "" || rest == "/" {
		return nil, true
	}
	for _, raw := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
		seg, err := url.PathUnescape(raw)
		if err != nil || seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\\x00") {
			return nil, false
		}
		segs = append(segs, seg)
	}
	return segs, true
}

// match finds the route of a method for path segments, and its parameters.
func (a *api) match(method string, segs []string) (*Route, map[string]any) {
	for _, rt := range a.byMethod[method] {
		if len(rt.segments) != len(segs) {
			continue
		}
		ok := true
		for i, s := range rt.segments {
			if s.param == "" && s.literal != segs[i] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		var params map[string]any
		if n := len(rt.segments) - rt.literals; n > 0 {
			params = make(map[string]any, n)
		}
		for i, s := range rt.segments {
			if s.param != "" {
				params[s.param] = segs[i]
			}
		}
		return rt, params
	}
	return nil, nil
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
