package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/causeway/causeway/connector"
	httpconn "github.com/causeway/causeway/connector/http"
	sqlconn "github.com/causeway/causeway/connector/sql"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/problem"
)

// request is a request as mappings see it.
type request struct {
	r *http.Request
	// params are the path's parameters, as strings; the mappings read them as .path.
	params map[string]any
	body   any
	raw    []byte
	caller *caller
}

// needs says which parts of the request a route's expressions read, so that only those are
// built for each request: turning every header and query parameter into a document costs
// more than the rest of a small request.
type needs uint8

const (
	needQuery needs = 1 << iota
	needHeaders
)

// needsOf finds the parts an expression's source mentions. It errs on the side of building
// a part: a mention inside a string literal counts too.
func needsOf(src []byte) needs {
	var n needs
	if bytes.Contains(src, []byte("query")) {
		n |= needQuery
	}
	if bytes.Contains(src, []byte("headers")) {
		n |= needHeaders
	}
	return n
}

// doc is the request as an expression's input: .method, .path, .query, .headers (names in
// lower case, values joined) and .body.
func (rq *request) doc(n needs) map[string]any {
	path := rq.params
	if path == nil {
		path = map[string]any{}
	}
	d := map[string]any{"method": rq.r.Method, "path": path, "body": rq.body}
	if n&needQuery != 0 {
		q := rq.r.URL.Query()
		query := make(map[string]any, len(q))
		for k, vs := range q {
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
		d["query"] = query
	} else {
		d["query"] = map[string]any{}
	}
	if n&needHeaders != 0 {
		headers := make(map[string]any, len(rq.r.Header))
		for k, vs := range rq.r.Header {
			headers[strings.ToLower(k)] = strings.Join(vs, ", ")
		}
		d["headers"] = headers
	} else {
		d["headers"] = map[string]any{}
	}
	return d
}

// jsonType is the content type of the gateway's answers.
var jsonType = []string{"application/json"}

// proxy calls the route's operation and returns the mapped answer; nil when it answered a
// problem itself. While the system is unavailable the route fails or queues the request,
// as its whenOffline says.
func (a *api) proxy(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, rq *request) *answer {
	p := rt.Proxy
	down, answered := a.offline(w, r, rt, p.system)
	if answered {
		return nil
	}
	var with map[string]any
	if p.with != nil {
		v, err := p.with.Eval(ctx, rq.doc(p.needs))
		if err != nil {
			a.mappingProblem(w, r, rt, err)
			return nil
		}
		with, _ = v.(map[string]any)
	} else {
		with = make(map[string]any, len(rq.params)+1)
		for k, v := range rq.params {
			with[k] = v
		}
		if rq.body != nil {
			with["body"] = rq.body
		}
	}
	info := connector.CallInfo{Traceparent: traceparent(r), IdempotencyKey: r.Header.Get("Idempotency-Key"), Forward: forwardHeaders(r, rt.policies)}
	if down {
		raw, err := expr.MarshalJSON(with)
		if err != nil {
			a.mappingProblem(w, r, rt, err)
			return nil
		}
		return a.queue(ctx, w, r, rt, rq.caller, p.system, queuedCall{With: raw, Forward: info.Forward, Traceparent: info.Traceparent, IdempotencyKey: info.IdempotencyKey})
	}
	an, err := a.callAndMap(ctx, rt, with, info)
	if err != nil {
		f := a.classify(ctx, rt, err)
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(int(f.retryAfter.Seconds()), 1)))
		}
		problem.Write(w, r, f.status, f.typ, f.detail)
		return nil
	}
	return an
}

// errResponseMapping is a backend answer the route's response mapping could not take.
var errResponseMapping = errors.New("the response mapping failed")

// callAndMap makes a proxy route's call with the parameters with and maps the answer. Its
// error is the call's, or wraps errResponseMapping.
func (a *api) callAndMap(ctx context.Context, rt *Route, with map[string]any, info connector.CallInfo) (*answer, error) {
	p := rt.Proxy
	// Without a body mapping the backend's JSON is passed on as it came, not decoded and
	// encoded again; a body mapping reads its fields from it.
	info.Raw = p.wantsRaw()
	// A body mapping that does not read the answer's headers sees an empty object.
	info.NoHeaders = !info.Raw && !p.Response.readsHeaders
	out, err := a.g.opts.Answer(ctx, p.system, a.g.systems[p.system], p.op, with, info)
	if err != nil {
		return nil, err
	}
	return mapAnswer(ctx, rt, out)
}

// passesRaw reports whether a raw JSON answer of the backend is the route's answer as it
// is: the route sets no status and no header of its own.
func (p *Proxy) passesRaw() bool {
	return p.Response == nil || (p.Response.body == nil && p.Response.Status == 0 && len(p.Response.Headers) == 0)
}

// wantsRaw reports whether a proxy route asks the backend for its JSON answer as it came
// (connector.CallInfo.Raw): when the route passes it on, and when its body mapping reads
// no header of the answer (Raw leaves only Content-Type and Retry-After), so that the
// mapping reads its fields from the text (expr.RawJSON) instead of a decoded copy.
func (p *Proxy) wantsRaw() bool {
	return p.Response == nil || p.Response.body == nil || !p.Response.readsHeaders
}

// mapAnswer turns a proxy route's backend answer into the route's answer, as its response
// mapping says. Its error wraps errResponseMapping.
func mapAnswer(ctx context.Context, rt *Route, out *connector.Outcome) (*answer, error) {
	p := rt.Proxy
	if out.Raw != nil && p.passesRaw() {
		// The backend's JSON as it came, with nothing of the route's own: the usual proxy
		// answer, whose header is shared.
		return &answer{status: http.StatusOK, header: rawJSONHeader, body: out.Raw}, nil
	}
	an := &answer{status: http.StatusOK}
	m := p.Response
	if m != nil && m.Status != 0 {
		an.status = m.Status
	}
	if out.Raw != nil && (m == nil || m.body == nil) {
		an.header, an.body = m.header(true), out.Raw
		return an, nil
	}
	body := out.Body
	if m != nil && m.body != nil {
		// The mapping's input is made anew for every answer only in what differs: the
		// document's map is reused (an expression never changes its input: jq copies what
		// it updates, and the direct evaluator builds new values), and a mapping that
		// reads no header sees the one empty object.
		doc := mappingDocs.Get().(map[string]any)
		defer func() {
			clear(doc)
			mappingDocs.Put(doc)
		}()
		headers := noHeaders
		if m.readsHeaders {
			h := make(map[string]any, len(out.Headers))
			for k, vs := range out.Headers {
				h[strings.ToLower(k)] = strings.Join(vs, ", ")
			}
			headers = h
		}
		doc["status"], doc["headers"], doc["body"] = out.Status, headers, out.Body
		if out.Raw != nil {
			doc["body"] = expr.RawJSON(out.Raw)
		}
		if data, ok := m.body.EncodeObject(doc); ok {
			// The usual mapping, an object of the answer's fields, written directly.
			an.header, an.body = m.header(true), data
			return an, nil
		}
		if out.Raw != nil {
			// Anything else runs on the decoded answer, as Eval takes no JSON text.
			decoded, err := expr.DecodeJSON(out.Raw)
			if err != nil {
				return nil, fmt.Errorf("%w: the answer says it is JSON but is not: %w", errResponseMapping, err)
			}
			doc["body"] = decoded
		}
		v, err := m.body.Eval(ctx, doc)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errResponseMapping, err)
		}
		body = v
	}
	if body == nil {
		an.status, an.header = http.StatusNoContent, m.header(false)
		return an, nil
	}
	// The answer is encoded before the document goes back to be reused: the mapping's
	// value may hold parts of it.
	data, err := expr.MarshalJSON(body)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the answer: %w", errResponseMapping, err)
	}
	an.header, an.body = m.header(true), data
	return an, nil
}

// mappingDocs are the input documents of response mappings, reused.
var mappingDocs = sync.Pool{New: func() any { return make(map[string]any, 3) }}

// noHeaders is the headers a response mapping that reads none sees: an empty object,
// shared, because an expression never changes its input.
var noHeaders = map[string]any{}

// noHeader is the header of an answer with neither body nor headers of the route's own,
// shared read-only as rawJSONHeader is.
var noHeader = http.Header{}

// header is the header of a mapped answer: the route's own headers, and the JSON content
// type when the answer has a body. Without headers of the route's own it is shared.
func (m *Response) header(withBody bool) http.Header {
	if m == nil || len(m.Headers) == 0 {
		if withBody {
			return rawJSONHeader
		}
		return noHeader
	}
	h := make(http.Header, len(m.Headers)+1)
	for k, v := range m.Headers {
		h.Set(k, v)
	}
	if withBody {
		h["Content-Type"] = jsonType
	}
	return h
}

// failure is a failed call as the client is told of it.
type failure struct {
	status      int
	typ, detail string
	retryAfter  time.Duration
	transient   bool
}

// classify turns a failed call into what the client is told: what happened, without the
// backend's details (its address, its body, its words), which go to the log.
func (a *api) classify(ctx context.Context, rt *Route, err error) failure {
	if errors.Is(err, errResponseMapping) {
		a.g.log.Error("response mapping failed", "api", a.name, "route", rt.Match, "err", err)
		return failure{status: http.StatusBadGateway, typ: "bad-gateway", detail: "the answer of the service behind this route could not be mapped"}
	}
	a.g.log.Warn("backend call failed", "api", a.name, "route", rt.Match, "call", rt.Proxy.Call, "err", err)
	var he *httpconn.Error
	status := 0
	if errors.As(err, &he) {
		status = he.Status
	}
	transient := connector.Transient(err)
	switch {
	case pastDeadline(ctx) || errors.Is(err, context.DeadlineExceeded):
		return failure{status: http.StatusGatewayTimeout, typ: "timeout", detail: "the service behind this route did not answer in time", transient: true}
	case status == http.StatusNotFound || errors.Is(err, sqlconn.ErrNoRow):
		return failure{status: http.StatusNotFound, typ: "not-found", detail: "no such resource"}
	case status == http.StatusConflict:
		return failure{status: http.StatusConflict, typ: "conflict", detail: "the request conflicts with the resource's state"}
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return failure{status: http.StatusUnprocessableEntity, typ: "rejected", detail: "the request was refused as invalid"}
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		retry := 5 * time.Second
		if he.RetryAfter > 0 {
			retry = he.RetryAfter
		}
		return failure{status: http.StatusServiceUnavailable, typ: "unavailable", detail: "the service behind this route is busy or unavailable; try again later", retryAfter: retry, transient: true}
	}
	return failure{status: http.StatusBadGateway, typ: "bad-gateway", detail: "the service behind this route failed", transient: transient}
}

// mappingProblem answers a request the route's mapping could not take: 400, saying so
// without the mapping itself (the API's internals), which goes to the log with the error.
func (a *api) mappingProblem(w http.ResponseWriter, r *http.Request, rt *Route, err error) {
	a.g.log.Info("request mapping failed", "api", a.name, "route", rt.Match, "err", err)
	problem.Write(w, r, http.StatusBadRequest, "bad-request", "the request does not have the shape this route needs")
}

// pastDeadline reports that the request's time is up. The backend client gives up at the
// same deadline as the context, and can report it a moment before the context's own timer
// has marked it done.
func pastDeadline(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}
