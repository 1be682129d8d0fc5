package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/gateway/requests"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/problem"
)

// publish validates a publish route's message, stores the request and then the message,
// and answers 202; nil when it answered a problem itself. The record goes first so that
// the reply of a flow the message triggers always finds its request; when the message is
// then not stored, the request is completed as failed and the client is told to try again.
func (a *api) publish(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, rq *request) *answer {
	p := rt.Publish
	data := rq.raw
	if p.data != nil {
		v, err := p.data.Eval(ctx, rq.doc(p.needs))
		if err == nil {
			data, err = expr.MarshalJSON(v)
		}
		if err != nil {
			a.mappingProblem(w, r, rt, err)
			return nil
		}
	}
	var subject string
	if p.subject != nil {
		v, err := p.subject.Eval(ctx, rq.doc(p.needs))
		if err != nil {
			a.mappingProblem(w, r, rt, err)
			return nil
		}
		if v != nil {
			subject = expr.ToString(v)
		}
	}
	if typ, ok := a.g.types.Lookup(p.Type); ok {
		if err := typ.Validate(data); err != nil {
			a.g.refused(a, rt, "schema")
			var ve *catalog.ValidationError
			if errors.As(err, &ve) {
				schemaProblem(w, r, ve, "the message does not match the schema of "+p.Type)
				return nil
			}
			problem.Write(w, r, http.StatusBadRequest, "malformed", "the message's data must be JSON")
			return nil
		}
	}
	id := newRequestID()
	source := p.Source
	if source == "" {
		source = "/apis/" + a.name
	}
	ev := newEvent(id, source, p.Type, subject, data, traceparent(r))
	an := a.accept(ctx, w, r, rt, rq.caller, requests.Record{ID: id, Kind: requests.KindPublish, MessageID: id})
	if an == nil {
		return nil
	}
	if err := a.g.opts.Publish(ctx, ev, map[string]string{bus.HeaderReplyTo: requests.ReplySubject(id)}); err != nil {
		a.g.log.Error("publish route: the bus did not store the message", "api", a.name, "route", rt.Match, "request", id, "err", err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.g.opts.Requests.Complete(cctx, id, requests.Result{Status: http.StatusServiceUnavailable, Error: "the message could not be published"}); err != nil {
			a.g.log.Warn("publish route: the failed request could not be completed", "request", id, "err", err)
		}
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the message could not be stored; try again")
		return nil
	}
	if a.g.opts.Track != nil {
		a.g.opts.Track(ctx, id, "gateway.accepted", a.describe(rt, callerName(rt, rq.caller), id))
	}
	return an
}

// callerName is who a request came from, as timelines show it: the Consumer or token
// subject, when the route authenticates.
func callerName(rt *Route, c *caller) string {
	if c == nil || rt.policies.Auth.None {
		return ""
	}
	return c.name
}

// describe is how a tracking event names a gateway request: API, route, caller and (when
// it has one) the request's id.
func (a *api) describe(rt *Route, by, id string) string {
	s := "API " + a.name + ", " + rt.Match
	if by != "" {
		s += " by " + by
	}
	if id != "" {
		s += "; request " + id
	}
	return s
}

// newEvent is the message a publish route publishes: its id is the request's, so that the
// message's timeline and the request's status go by one name, and its correlation id too.
func newEvent(id, source, typ, subject string, data []byte, tp string) *message.Event {
	ev := &message.Event{ID: id, Source: source, Type: typ, Subject: subject, TraceParent: tp}
	if len(data) > 0 {
		ev.Data, ev.DataContentType = data, "application/json"
	}
	ev.FillDefaults(time.Now())
	return ev
}

// schemaProblem answers 422 with the failing fields.
func schemaProblem(w http.ResponseWriter, r *http.Request, ve *catalog.ValidationError, detail string) {
	p := problem.New(http.StatusUnprocessableEntity, "schema-violation", detail)
	for _, viol := range ve.Violations {
		p.Errors = append(p.Errors, problem.FieldError{Pointer: viol.Pointer, Detail: viol.Message})
	}
	p.Write(w, r)
}
