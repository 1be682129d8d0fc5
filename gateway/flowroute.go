package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/problem"
)

// flow invokes the route's flow and returns its reply; nil when it answered a problem
// itself.
func (a *api) flow(ctx context.Context, w http.ResponseWriter, r *http.Request, rt *Route, rq *request) *answer {
	input := rq.raw
	if rt.Flow.input != nil {
		v, err := rt.Flow.input.Eval(ctx, rq.doc(rt.Flow.needs))
		if err == nil {
			input, err = expr.MarshalJSON(v)
		}
		if err != nil {
			a.mappingProblem(w, r, rt, err)
			return nil
		}
	}
	if len(input) == 0 {
		input = []byte("null")
	}
	if down, answered := a.offline(w, r, rt, rt.Flow.System); answered {
		return nil
	} else if down {
		return a.queue(ctx, w, r, rt, rq.caller, rt.Flow.System, queuedCall{Input: input, Traceparent: traceparent(r)})
	}
	reply, inv, err := a.g.opts.Invoke(ctx, rt.Flow.Name, input, a.describe(rt, callerName(rt, rq.caller), ""))
	switch {
	case errors.Is(err, flow.ErrNoAnswer):
		w.Header().Set("Causeway-Run-Id", inv.RunID)
		problem.Write(w, r, http.StatusGatewayTimeout, "timeout", "no answer in time; the request is still being worked on")
		return nil
	case err != nil:
		a.g.log.Error("flow route", "api", a.name, "flow", rt.Flow.Name, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "the request could not be taken; try again")
		return nil
	}
	w.Header().Set("Causeway-Run-Id", reply.RunID)
	if reply.Error != "" {
		a.g.log.Warn("flow route: the run failed before it answered", "api", a.name, "flow", rt.Flow.Name, "run", reply.RunID, "err", reply.Error)
		problem.Write(w, r, http.StatusBadGateway, "failed", "the request failed; its run is "+reply.RunID)
		return nil
	}
	an := &answer{status: reply.Status, header: http.Header{}}
	for k, v := range reply.Headers {
		an.header.Set(k, v)
	}
	if len(reply.Body) == 0 || reply.Status == http.StatusNoContent {
		return an
	}
	if an.header.Get("Content-Type") == "" {
		an.header["Content-Type"] = jsonType
	}
	an.body = reply.Body
	return an
}
