package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/connector"
	httpconn "github.com/causeway/causeway/connector/http"
	sqlconn "github.com/causeway/causeway/connector/sql"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/system"
)

// Options configures a Gateway.
type Options struct {
	// Config holds the APIs and the systems they call.
	Config *config.Config
	// Answer carries out a system operation (the node's connectors).
	Answer func(ctx context.Context, name string, sys *system.Spec, op string, with map[string]any, info connector.CallInfo) (*connector.Outcome, error)
	// Invoke runs a flow and waits for its reply.
	Invoke func(ctx context.Context, name string, input json.RawMessage) (*flow.Answer, *flow.Invocation, error)
	// Unavailable, when set, says whether a system is offline or in maintenance, and until
	// when if that is known.
	Unavailable func(system string) (bool, time.Time)
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Gateway serves the APIs.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	apis     []*api
	systems  map[string]*system.Spec
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// api is one API with its routes by method, most literal segments first.
type api struct {
	name     string
	spec     *Spec
	byMethod map[string][]*Route
	g        *Gateway
}

// New prepares the APIs of a configuration.
func New(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{opts: opts, log: opts.Logger.With("component", "gateway"), systems: map[string]*system.Spec{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_gateway_requests_total", Help: "Gateway requests, by API, route and status.",
		}, []string{"api", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "causeway_gateway_request_duration_seconds", Help: "How long gateway requests took, by API and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12),
		}, []string{"api", "route"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(g.requests, g.duration)
	}
	for _, r := range opts.Config.ByKind(system.Kind) {
		g.systems[r.Metadata.Name] = r.Spec.(*system.Spec)
	}
	for _, r := range opts.Config.ByKind(Kind) {
		a := &api{name: r.Metadata.Name, spec: r.Spec.(*Spec), byMethod: map[string][]*Route{}, g: g}
		for _, rt := range a.spec.Routes {
			a.byMethod[rt.method] = append(a.byMethod[rt.method], rt)
		}
		for _, list := range a.byMethod {
			sort.SliceStable(list, func(i, j int) bool { return list[i].literals > list[j].literals })
		}
		g.apis = append(g.apis, a)
	}
	return g
}

// Register serves every API under its base path on mux.
func (g *Gateway) Register(mux *http.ServeMux) {
	for _, a := range g.apis {
		mux.Handle(a.spec.BasePath, a)
		mux.Handle(a.spec.BasePath+"/", a)
		g.log.Info("API served", "api", a.name, "basePath", a.spec.BasePath, "routes", len(a.spec.Routes))
	}
}

// request is a request as mappings see it.
type request struct {
	method  string
	params  map[string]string
	query   url.Values
	headers http.Header
	body    any
	raw     []byte
}

// doc is the request as an expression's input.
func (rq *request) doc() map[string]any {
	path := make(map[string]any, len(rq.params))
	for k, v := range rq.params {
		path[k] = v
	}
	query := make(map[string]any, len(rq.query))
	for k, vs := range rq.query {
		if len(vs) == 1 {
			query[k] = vs[0]
		} else {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			query[k] = list
		}
	}
	headers := make(map[string]any, len(rq.headers))
	for k, vs := range rq.headers {
		headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return map[string]any{"method": rq.method, "path": path, "query": query, "headers": headers, "body": rq.body}
}

// ServeHTTP routes a request of the API and answers it.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	route := a.serve(sw, r)
	label := "unmatched"
	if route != nil {
		label = route.Match
	}
	a.g.requests.WithLabelValues(a.name, label, strconv.Itoa(sw.status)).Inc()
	a.g.duration.WithLabelValues(a.name, label).Observe(time.Since(start).Seconds())
}

// serve answers a request and returns the route it matched, if any.
func (a *api) serve(w http.ResponseWriter, r *http.Request) *Route {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), a.spec.BasePath)
	var segs []string
	if rest != "" && rest != "/" {
		for _, raw := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
			seg, err := url.PathUnescape(raw)
			if err != nil || seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\\x00") {
				problem.Write(w, r, http.StatusBadRequest, "bad-path", "the path has a segment that is empty, not valid percent-encoding, a dot segment, or an encoded slash")
				return nil
			}
			segs = append(segs, seg)
		}
	}
	route, params := a.match(r.Method, segs)
	if route == nil {
		var allowed []string
		for m := range a.byMethod {
			if rt, _ := a.match(m, segs); rt != nil {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			sort.Strings(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			problem.Write(w, r, http.StatusMethodNotAllowed, "method-not-allowed", r.Method+" is not allowed here; allowed: "+strings.Join(allowed, ", "))
			return nil
		}
		problem.NotFound(w, r)
		return nil
	}
	rq := &request{method: r.Method, params: params, query: r.URL.Query(), headers: r.Header}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.spec.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body is over the limit of %d bytes", mbe.Limit))
			return route
		}
		problem.Write(w, r, http.StatusBadRequest, "malformed", "reading the body: "+err.Error())
		return route
	}
	if len(raw) > 0 {
		if rq.body, err = expr.DecodeJSON(raw); err != nil {
			problem.Write(w, r, http.StatusBadRequest, "malformed", "the body must be JSON")
			return route
		}
		rq.raw = raw
	}
	timeout := a.spec.Timeout
	if route.Timeout > 0 {
		timeout = route.Timeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if route.Proxy != nil {
		a.proxy(ctx, w, r, route, rq)
	} else {
		a.flow(ctx, w, r, route, rq)
	}
	return route
}

// match finds the route of a method for path segments, and its parameters.
func (a *api) match(method string, segs []string) (*Route, map[string]string) {
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
		params := map[string]string{}
		for i, s := range rt.segments {
			if s.param != "" {
				params[s.param] = segs[i]
			}
		}
		return rt, params
	}
	return nil, nil
}

// proxy calls the route's operation and answers with the mapped answer.
func (a *api) proxy(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, rq *request) {
	p := rt.Proxy
	sys := a.g.systems[p.system]
	if a.g.opts.Unavailable != nil {
		if down, until := a.g.opts.Unavailable(p.system); down {
			retry := 30
			if !until.IsZero() {
				retry = max(int(time.Until(until).Seconds())+1, 1)
			}
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the service behind this route is down for maintenance or unavailable; try again later")
			return
		}
	}
	var with map[string]any
	if p.with != nil {
		v, err := p.with.Eval(ctx, rq.doc())
		if err != nil {
			a.mappingProblem(w, r, rt, err)
			return
		}
		with, _ = v.(map[string]any)
	} else {
		with = map[string]any{}
		for k, v := range rq.params {
			with[k] = v
		}
		if rq.body != nil {
			with["body"] = rq.body
		}
	}
	info := connector.CallInfo{Traceparent: r.Header.Get("Traceparent"), IdempotencyKey: r.Header.Get("Idempotency-Key")}
	out, err := a.g.opts.Answer(ctx, p.system, sys, p.op, with, info)
	if err != nil {
		a.backendProblem(ctx, w, r, rt, err)
		return
	}
	status, body := http.StatusOK, out.Body
	if m := p.Response; m != nil {
		if m.body != nil {
			headers := make(map[string]any, len(out.Headers))
			for k, vs := range out.Headers {
				headers[strings.ToLower(k)] = strings.Join(vs, ", ")
			}
			v, err := m.body.Eval(ctx, map[string]any{"status": out.Status, "headers": headers, "body": out.Body})
			if err != nil {
				a.g.log.Error("response mapping failed", "api", a.name, "route", rt.Match, "err", err)
				problem.Write(w, r, http.StatusBadGateway, "bad-gateway", "the answer of the service behind this route could not be mapped")
				return
			}
			body = v
		}
		if m.Status != 0 {
			status = m.Status
		}
		for k, v := range m.Headers {
			w.Header().Set(k, v)
		}
	}
	writeBody(w, status, body)
}

// writeBody answers a JSON body; null or nothing answers 204.
func writeBody(w http.ResponseWriter, status int, body any) {
	if body == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	data, err := expr.MarshalJSON(body)
	if err != nil {
		problem.Write(w, nil, http.StatusBadGateway, "bad-gateway", "the answer could not be encoded")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// backendProblem answers a failed call as problem+json, saying what happened without the
// backend's details (its address, its body, its words), which go to the log.
func (a *api) backendProblem(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, err error) {
	a.g.log.Warn("backend call failed", "api", a.name, "route", rt.Match, "call", rt.Proxy.Call, "err", err)
	var he *httpconn.Error
	status := 0
	if errors.As(err, &he) {
		status = he.Status
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		problem.Write(w, r, http.StatusGatewayTimeout, "timeout", "the service behind this route did not answer in time")
	case status == http.StatusNotFound || errors.Is(err, sqlconn.ErrNoRow):
		problem.Write(w, r, http.StatusNotFound, "not-found", "no such resource")
	case status == http.StatusConflict:
		problem.Write(w, r, http.StatusConflict, "conflict", "the request conflicts with the resource's state")
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		problem.Write(w, r, http.StatusUnprocessableEntity, "rejected", "the request was refused as invalid")
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		retry := 5
		if he.RetryAfter > 0 {
			retry = int(he.RetryAfter.Seconds())
		}
		w.Header().Set("Retry-After", strconv.Itoa(max(retry, 1)))
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the service behind this route is busy or unavailable; try again later")
	default:
		problem.Write(w, r, http.StatusBadGateway, "bad-gateway", "the service behind this route failed")
	}
}

// mappingProblem answers a request the route's mapping could not take: 400, saying so
// without the mapping itself (the API's internals), which goes to the log with the error.
func (a *api) mappingProblem(w http.ResponseWriter, r *http.Request, rt *Route, err error) {
	a.g.log.Info("request mapping failed", "api", a.name, "route", rt.Match, "err", err)
	problem.Write(w, r, http.StatusBadRequest, "bad-request", "the request does not have the shape this route needs")
}

// flow invokes the route's flow and answers with its reply.
func (a *api) flow(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, rq *request) {
	input := rq.raw
	if rt.Flow.input != nil {
		v, err := rt.Flow.input.Eval(ctx, rq.doc())
		if err == nil {
			input, err = expr.MarshalJSON(v)
		}
		if err != nil {
			a.mappingProblem(w, r, rt, err)
			return
		}
	}
	if len(input) == 0 {
		input = []byte("null")
	}
	answer, inv, err := a.g.opts.Invoke(ctx, rt.Flow.Name, input)
	switch {
	case errors.Is(err, flow.ErrNoAnswer):
		w.Header().Set("Causeway-Run-Id", inv.RunID)
		problem.Write(w, r, http.StatusGatewayTimeout, "timeout", "no answer in time; the request is still being worked on")
		return
	case err != nil:
		a.g.log.Error("flow route", "api", a.name, "flow", rt.Flow.Name, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the request could not be taken; try again")
		return
	}
	w.Header().Set("Causeway-Run-Id", answer.RunID)
	if answer.Error != "" {
		a.g.log.Warn("flow route: the run failed before it answered", "api", a.name, "flow", rt.Flow.Name, "run", answer.RunID, "err", answer.Error)
		problem.Write(w, r, http.StatusBadGateway, "failed", "the request failed; its run is "+answer.RunID)
		return
	}
	for k, v := range answer.Headers {
		w.Header().Set(k, v)
	}
	if len(answer.Body) == 0 || answer.Status == http.StatusNoContent {
		w.WriteHeader(answer.Status)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(answer.Status)
	_, _ = w.Write(answer.Body)
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
