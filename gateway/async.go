package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/gateway/requests"
	"github.com/causeway/causeway/problem"
)

// Asynchronous requests: a publish route, and a proxy or flow route with whenOffline: queue
// whose system is unavailable, answer 202 Accepted once the bus holds the request, with
// Location: /v1/requests/{id}. The requests store (gateway/requests) keeps the record, the
// queue and the result; this file turns routes into records and back.

// HeaderCallback is the header a client names its callback URL in.
const HeaderCallback = "Causeway-Callback"

// StatusPath is where a request's status is served, on the http listener.
const StatusPath = "/v1/requests/"

// newRequestID names a request. The id is the capability to read the status of a request
// made without authentication, so its 80 random bits come from the system's secure source
// rather than a monotonic one, whose successors are easy to guess.
func newRequestID() string {
	return ulid.MustNew(ulid.Timestamp(time.Now()), rand.Reader).String()
}

// queuedCall is what the worker needs to carry out a queued proxy or flow request: the
// request as mapped when it was accepted, so that a later change of the client's view does
// not matter.
type queuedCall struct {
	With           json.RawMessage `json:"with,omitempty"`
	Input          json.RawMessage `json:"input,omitempty"`
	Forward        http.Header     `json:"forward,omitempty"`
	Traceparent    string          `json:"traceparent,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
}

// offline reports whether the route's system is unavailable, and answers 503 when the route
// fails rather than queues. It returns (down, answered).
func (a *api) offline(w http.ResponseWriter, r *http.Request, rt *Route, system string) (bool, bool) {
	if a.g.opts.Unavailable == nil || system == "" {
		return false, false
	}
	down, until := a.g.opts.Unavailable(system)
	if !down {
		return false, false
	}
	if rt.WhenOffline == "queue" {
		return true, false
	}
	retry := 30
	if !until.IsZero() {
		retry = max(int(time.Until(until).Seconds())+1, 1)
	}
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	a.g.refused(a, rt, "offline")
	problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the service behind this route is down for maintenance or unavailable; try again later")
	return true, true
}

// accept stores rec as an accepted request and returns the 202 answer; nil when it
// answered a problem itself (a refused callback, the bus not storing the request).
func (a *api) accept(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, who *caller, rec requests.Record) *answer {
	store := a.g.opts.Requests
	if store == nil {
		w.Header().Set("Retry-After", "5")
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "asynchronous requests are not available on this node")
		return nil
	}
	if !a.callback(w, r, rt, &rec) {
		return nil
	}
	rec.API, rec.Route = a.name, rt.Match
	if !rt.policies.Auth.None && who != nil {
		rec.Owner = who.name
	}
	if err := store.Accept(ctx, rec); err != nil {
		a.g.log.Error("request not accepted: the bus did not store it", "api", a.name, "route", rt.Match, "request", rec.ID, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the request could not be stored; try again")
		return nil
	}
	state := requests.StateAccepted
	if rec.System != "" {
		state = requests.StateQueued
	}
	body := map[string]any{"id": rec.ID, "state": state, "status": StatusPath + rec.ID}
	if rec.MessageID != "" {
		body["messageId"] = rec.MessageID
	}
	data, _ := json.Marshal(body)
	an := &answer{status: http.StatusAccepted, header: http.Header{"Content-Type": jsonType}, body: data}
	an.header.Set("Location", StatusPath+rec.ID)
	return an
}

// callback checks the client's callback URL, if it named one, against the API's
// allow-list; false means it answered the request.
func (a *api) callback(w http.ResponseWriter, r *http.Request, rt *Route, rec *requests.Record) bool {
	url := r.Header.Get(HeaderCallback)
	if url == "" {
		return true
	}
	if a.spec.Callbacks == nil {
		a.g.refused(a, rt, "callback")
		problem.Write(w, r, http.StatusBadRequest, "callback-refused", "this API takes no callbacks; poll the status URL instead")
		return false
	}
	pol := a.spec.Callbacks.policy()
	if err := pol.Check(url); err != nil {
		a.g.refused(a, rt, "callback")
		problem.Write(w, r, http.StatusBadRequest, "callback-refused", "the callback URL is not allowed: "+err.Error())
		return false
	}
	rec.Callback, rec.CallbackPolicy = url, pol
	return true
}

// queue accepts a proxy or flow request whose system is unavailable.
func (a *api) queue(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, who *caller, system string, qc queuedCall) *answer {
	id := newRequestID()
	if qc.IdempotencyKey == "" {
		// The call runs at least once; a second run after a crash carries the same key.
		qc.IdempotencyKey = id
	}
	payload, err := json.Marshal(qc)
	if err != nil {
		a.mappingProblem(w, r, rt, err)
		return nil
	}
	kind := requests.KindProxy
	if rt.Flow != nil {
		kind = requests.KindFlow
	}
	return a.accept(ctx, w, r, rt, who, requests.Record{ID: id, Kind: kind, System: system, Payload: payload})
}

// Run carries out a queued request once its system is back: the worker of the requests
// store calls it. Failures the system may get over are returned as transient errors, for
// the store to try again; the result says what the client is told, never the backend's
// words.
func (g *Gateway) Run(ctx context.Context, rec requests.Record) (requests.Result, error) {
	a, rt := g.route(rec.API, rec.Route)
	if rt == nil {
		return requests.Result{Status: http.StatusGone, Error: "the route of this request is no longer defined"}, nil
	}
	var qc queuedCall
	if err := json.Unmarshal(rec.Payload, &qc); err != nil {
		return requests.Result{Status: http.StatusInternalServerError, Error: "the queued request could not be read"}, nil
	}
	timeout := a.spec.Timeout
	if rt.Timeout > 0 {
		timeout = rt.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case rt.Proxy != nil:
		return a.runProxy(ctx, rt, qc)
	case rt.Flow != nil:
		return a.runFlow(ctx, rt, qc, a.describe(rt, rec.Owner, rec.ID))
	}
	return requests.Result{Status: http.StatusGone, Error: "the route of this request no longer queues"}, nil
}

// route finds an API's route by its match.
func (g *Gateway) route(apiName, match string) (*api, *Route) {
	for _, a := range g.apis {
		if a.name != apiName {
			continue
		}
		for _, rt := range a.spec.Routes {
			if rt.Match == match {
				return a, rt
			}
		}
	}
	return nil, nil
}

// runProxy makes a queued proxy request's call.
func (a *api) runProxy(ctx context.Context, rt *Route, qc queuedCall) (requests.Result, error) {
	var with map[string]any
	if len(qc.With) > 0 {
		v, err := expr.DecodeJSON(qc.With)
		if err != nil {
			return requests.Result{Status: http.StatusInternalServerError, Error: "the queued request could not be read"}, nil
		}
		with, _ = v.(map[string]any)
	}
	info := callInfo(qc)
	an, err := a.callAndMap(ctx, rt, with, info)
	if err != nil {
		f := a.classify(ctx, rt, err)
		res := requests.Result{Status: f.status, Error: f.detail, Body: problemBody(f)}
		if f.transient {
			return res, requests.Retry(err, f.retryAfter)
		}
		return res, nil
	}
	return resultOf(an), nil
}

// runFlow invokes a queued flow request's flow.
func (a *api) runFlow(ctx context.Context, rt *Route, qc queuedCall, gatewayRequest string) (requests.Result, error) {
	input := qc.Input
	if len(input) == 0 {
		input = []byte("null")
	}
	reply, inv, err := a.g.opts.Invoke(ctx, rt.Flow.Name, input, gatewayRequest)
	if err != nil {
		res := requests.Result{Status: http.StatusServiceUnavailable, Error: "the flow could not be started"}
		if inv != nil {
			res = requests.Result{Status: http.StatusGatewayTimeout, RunID: inv.RunID, Error: "no answer in time; the run goes on"}
			return res, nil
		}
		return res, requests.Retry(err, 0)
	}
	res := requests.Result{Status: reply.Status, Headers: reply.Headers, Body: reply.Body, RunID: reply.RunID}
	if reply.Error != "" {
		res = requests.Result{Status: http.StatusBadGateway, RunID: reply.RunID, Error: "the request failed; its run is " + reply.RunID}
	}
	return res, nil
}

// callInfo is the call information of a queued request.
func callInfo(qc queuedCall) connector.CallInfo {
	return connector.CallInfo{Traceparent: qc.Traceparent, IdempotencyKey: qc.IdempotencyKey, Forward: qc.Forward}
}

// resultOf is an answer as a request's result.
func resultOf(an *answer) requests.Result {
	res := requests.Result{Status: an.status, Body: an.body}
	for k := range an.header {
		if k == "Content-Type" || k == "Content-Length" {
			continue
		}
		if res.Headers == nil {
			res.Headers = map[string]string{}
		}
		res.Headers[k] = an.header.Get(k)
	}
	return res
}

// problemBody is a failure as the problem+json body a client would have got.
func problemBody(f failure) json.RawMessage {
	data, _ := json.Marshal(problem.New(f.status, f.typ, f.detail))
	return data
}

// ServeStatus answers GET /v1/requests/{id}: what is known of an asynchronous request. A
// request made by an authenticated caller is shown to that caller only, authenticated as
// its API asks; to anyone else it does not exist.
func (g *Gateway) ServeStatus(w http.ResponseWriter, r *http.Request) {
	store := g.opts.Requests
	if store == nil {
		problem.NotFound(w, r)
		return
	}
	id := r.PathValue("id")
	st, err := store.Status(r.Context(), id)
	switch {
	case errors.Is(err, requests.ErrNotFound):
		problem.NotFound(w, r)
		return
	case err != nil:
		g.log.Warn("request status: the bus did not answer", "request", id, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the status could not be read; try again")
		return
	}
	if owner := st.Record.Owner; owner != "" {
		a, rt := g.route(st.Record.API, st.Record.Route)
		if rt == nil {
			problem.NotFound(w, r)
			return
		}
		c := &caller{addr: clientAddr(r, rt.policies.IP)}
		if !a.authenticate(w, r, rt, c) {
			return
		}
		if c.name != owner {
			problem.NotFound(w, r)
			return
		}
	}
	if st.State == requests.StateQueued || st.State == requests.StateAccepted {
		w.Header().Set("Retry-After", "1")
	}
	data, err := json.Marshal(st)
	if err != nil {
		problem.Write(w, r, http.StatusInternalServerError, "internal", "the status could not be encoded")
		return
	}
	w.Header()["Content-Type"] = jsonType
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}
