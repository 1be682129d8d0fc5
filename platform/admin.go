package platform

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/reliability"
	"github.com/causeway/causeway/store"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// admin serves the management API on the admin listener.
type admin struct {
	p        *Platform
	messages jetstream.Stream
	errq     *reliability.Queue
}

func newAdmin(ctx context.Context, p *Platform, check func(typ string, data []byte) error) (*admin, error) {
	s, err := p.bus.Stream(ctx, bus.StreamMessages)
	if err != nil {
		return nil, err
	}
	q := reliability.NewQueue(reliability.Options{Bus: p.bus, FlowTrigger: p.flows.TriggerOf, Check: check,
		Node: p.opts.Node, Logger: p.log, Registerer: p.reg})
	return &admin{p: p, messages: s, errq: q}, nil
}

func (a *admin) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/messages/{id}", a.getMessage)
	mux.HandleFunc("GET /v1/runs/{id}", a.getRun)
	mux.HandleFunc("GET /v1/runs", a.listRuns)
	mux.HandleFunc("POST /v1/flows/{name}/invoke", a.invokeFlow)
	mux.HandleFunc("POST /v1/runs/{id}/resubmit", a.resubmitRun)
	mux.HandleFunc("GET /v1/systems/{name}/check", a.checkSystem)
	a.errorRoutes(mux)
	a.systemRoutes(mux)
	a.revokeRoutes(mux)
	a.p.gateway.RegisterAdmin(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.p.reg, promhttp.HandlerOpts{Registry: a.p.reg}))
	a.p.health(mux)
	mux.HandleFunc("/", problem.NotFound)
	return mux
}

// messageView is the body of GET /v1/messages/{id}.
type messageView struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Source     string         `json:"source"`
	Stream     string         `json:"stream"`
	Sequence   uint64         `json:"sequence"`
	AcceptedAt time.Time      `json:"acceptedAt"`
	Node       string         `json:"node,omitempty"`
	Message    *message.Event `json:"message"`
	// Retained is false when the stream no longer holds the message (past its retention);
	// the index entry and timeline remain.
	Retained bool          `json:"retained"`
	Timeline []store.Event `json:"timeline"`
	// Runs are the flow runs the message triggered.
	Runs []store.Run `json:"runs"`
}

func (a *admin) getMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, events, err := a.p.store.Message(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "message-not-found", "no message with id "+strconv.Quote(id)+" has been accepted (or it is not indexed yet)")
		return
	}
	if err != nil {
		a.p.log.Error("message lookup", "id", id, "err", err)
		problem.Write(w, r, http.StatusInternalServerError, "internal", "the tracking store could not be read")
		return
	}
	view := messageView{ID: m.ID, Type: m.Type, Source: m.Source, Stream: m.Stream, Sequence: m.Sequence,
		AcceptedAt: m.AcceptedAt, Node: m.Node, Timeline: events}
	if view.Timeline == nil {
		view.Timeline = []store.Event{}
	}
	if view.Runs, err = a.p.store.Runs(r.Context(), store.RunFilter{TriggerMessageID: id}); err != nil {
		a.p.log.Error("runs of a message", "id", id, "err", err)
		view.Runs = []store.Run{}
	}
	raw, err := a.messages.GetMsg(r.Context(), m.Sequence)
	switch {
	case err == nil:
		ev, derr := message.FromNATS(raw.Header, raw.Data)
		if derr == nil && ev.ID == m.ID {
			view.Message, view.Retained = ev, true
		}
	case errors.Is(err, jetstream.ErrMsgNotFound):
	default:
		a.p.log.Warn("message body lookup", "id", id, "seq", m.Sequence, "err", err)
	}
	writeJSON(w, http.StatusOK, view)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		problem.Write(w, nil, http.StatusInternalServerError, "internal", "encoding the response failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// getRun answers GET /v1/runs/{id}: a run's record, its steps with their inputs, outputs,
// attempts and errors.
func (a *admin) getRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	run, err := a.p.flows.Run(r.Context(), id)
	if err != nil {
		a.p.log.Error("run lookup", "id", id, "err", err)
		problem.Write(w, r, http.StatusServiceUnavailable, "bus-unavailable", "the run journal could not be read")
		return
	}
	if run == nil {
		problem.Write(w, r, http.StatusNotFound, "run-not-found", "no run with id "+strconv.Quote(id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(run)
}

// listRuns answers GET /v1/runs: runs from the index, the latest first, filtered by flow,
// status, key, correlationId, message (the trigger's id), from/to (RFC 3339 start times)
// and limit.
func (a *admin) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.RunFilter{Flow: q.Get("flow"), Status: q.Get("status"), Key: q.Get("key"),
		CorrelationID: q.Get("correlationId"), TriggerMessageID: q.Get("message")}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				problem.Write(w, r, http.StatusBadRequest, "invalid-query", "query parameter "+p.name+"="+strconv.Quote(v)+" is not an RFC 3339 time such as 2026-11-23T08:00:00Z")
				return
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem.Write(w, r, http.StatusBadRequest, "invalid-query", "query parameter limit="+strconv.Quote(v)+" must be a number from 1 to 1000")
			return
		}
		f.Limit = n
	}
	switch f.Status {
	case "", "running", "succeeded", "failed", "waiting":
	default:
		problem.Write(w, r, http.StatusBadRequest, "invalid-query", "query parameter status="+strconv.Quote(f.Status)+" must be running, succeeded, failed or waiting")
		return
	}
	runs, err := a.p.store.Runs(r.Context(), f)
	if err != nil {
		a.p.log.Error("run list", "err", err)
		problem.Write(w, r, http.StatusInternalServerError, "internal", "the run index could not be read")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"runs": runs})
}

// resubmitRun answers POST /v1/runs/{id}/resubmit: a new run of the same flow from the same
// trigger, linked to the old one. 202 with the new run's id once the trigger is stored.
func (a *admin) resubmitRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	newID, err := a.p.flows.Resubmit(r.Context(), id)
	if errors.Is(err, flow.ErrNoRun) {
		problem.Write(w, r, http.StatusNotFound, "run-not-found", err.Error())
		return
	}
	if err != nil {
		a.p.log.Error("resubmit", "run", id, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "bus-unavailable", "the run could not be resubmitted: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/v1/runs/"+newID)
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"runId": newID, "resubmitOf": id})
}

// checkSystem answers GET /v1/systems/{name}/check: it tries the system's connections and
// answers 200 when all work, 503 when one does not, with what each showed.
func (a *admin) checkSystem(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	res, err := a.p.flows.CheckSystem(r.Context(), name)
	if errors.Is(err, flow.ErrNoSystem) {
		problem.Write(w, r, http.StatusNotFound, "system-not-found", "no System "+strconv.Quote(name)+" is defined")
		return
	}
	if err != nil {
		problem.Write(w, r, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if !res.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(res)
}
