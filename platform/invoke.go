package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/internal/httpbody"
	"github.com/causeway/causeway/problem"
)

// HeaderRunID names, on an invocation's answer, the run that made it.
const HeaderRunID = "Causeway-Run-Id"

// invokeFlow answers POST /v1/flows/{name}/invoke: it starts a run of the flow with the
// request body (JSON) as its trigger's data and answers with the flow's reply.
func (a *admin) invokeFlow(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := httpbody.Read(w, r, a.p.bus.MaxMessageBytes())
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem.Write(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the input is over the limit of %d bytes", mbe.Limit))
			return
		}
		problem.Write(w, r, http.StatusBadRequest, "malformed", "reading the input: "+err.Error())
		return
	}
	if len(body) == 0 {
		body = []byte("null")
	}
	if !json.Valid(body) {
		problem.Write(w, r, http.StatusBadRequest, "malformed", "the input must be JSON")
		return
	}
	answer, inv, err := a.p.flows.Invoke(r.Context(), name, body)
	switch {
	case errors.Is(err, flow.ErrNoFlow):
		problem.Write(w, r, http.StatusNotFound, "flow-not-found", "no flow "+strconv.Quote(name)+" with an invoke trigger is defined")
		return
	case errors.Is(err, flow.ErrNoAnswer):
		p := problem.New(http.StatusGatewayTimeout, "flow-timeout",
			fmt.Sprintf("the flow did not answer within %s; the run goes on: GET /v1/runs/%s", inv.Timeout, inv.RunID))
		p.RunID = inv.RunID
		w.Header().Set(HeaderRunID, inv.RunID)
		p.Write(w, r)
		return
	case err != nil:
		a.p.log.Error("invoke", "flow", name, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "bus-unavailable", err.Error())
		return
	}
	w.Header().Set(HeaderRunID, answer.RunID)
	if answer.Error != "" {
		p := problem.New(http.StatusInternalServerError, "flow-failed", "the run failed before it answered: "+answer.Error)
		p.RunID = answer.RunID
		p.Write(w, r)
		return
	}
	for k, v := range answer.Headers {
		w.Header().Set(k, v)
	}
	raw := answer.Body
	if len(raw) == 0 || answer.Status == http.StatusNoContent {
		w.WriteHeader(answer.Status)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(answer.Status)
	_, _ = w.Write(raw)
}
