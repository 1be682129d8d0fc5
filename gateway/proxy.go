package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/connector"
	httpconn "github.com/causeway/causeway/connector/http"
	sqlconn "github.com/causeway/causeway/connector/sql"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/problem"
)

// request is a request as mappings see it.
type request struct {
	r      *http.Request
	params map[string]string
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
	path := make(map[string]any, len(rq.params))
	for k, v := range rq.params {
		path[k] = v
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
// problem itself.
func (a *api) proxy(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, rq *request) *answer {
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
			return nil
		}
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
	out, err := a.g.opts.Answer(ctx, p.system, sys, p.op, with, info)
	if err != nil {
		a.backendProblem(ctx, w, r, rt, err)
		return nil
	}
	an := &answer{status: http.StatusOK, header: http.Header{}}
	body := out.Body
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
				return nil
			}
			body = v
		}
		if m.Status != 0 {
			an.status = m.Status
		}
		for k, v := range m.Headers {
			an.header.Set(k, v)
		}
	}
	if body == nil {
		an.status = http.StatusNoContent
		return an
	}
	data, err := expr.MarshalJSON(body)
	if err != nil {
		problem.Write(w, r, http.StatusBadGateway, "bad-gateway", "the answer could not be encoded")
		return nil
	}
	an.header["Content-Type"] = jsonType
	an.body = data
	return an
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
	case pastDeadline(ctx) || errors.Is(err, context.DeadlineExceeded):
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
