package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/reliability"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/system/status"
	"github.com/causeway/causeway/tracking"
)

// The systems' statuses: probes, status changes as tracking events and audit records, and
// the API (GET /v1/systems, GET /v1/systems/{name}, PUT /v1/systems/{name}/status).

// systemsOf returns the defined systems by name.
func systemsOf(cfg *config.Config) map[string]*system.Spec {
	out := map[string]*system.Spec{}
	for _, r := range cfg.ByKind(system.Kind) {
		out[r.Metadata.Name] = r.Spec.(*system.Spec)
	}
	return out
}

// probe runs a system's health probe: its probe operation, or its connection check.
func (p *Platform) probe(ctx context.Context, name string, spec *system.Spec) error {
	if op := spec.Health.Probe.Operation; op != "" {
		_, err := p.conns.Call(ctx, name, spec, op, map[string]any{}, connector.CallInfo{})
		return err
	}
	res := p.conns.Check(ctx, name, spec)
	if res.OK {
		return nil
	}
	var msgs []string
	for _, c := range res.Checks {
		if !c.OK {
			msgs = append(msgs, c.Connector+": "+c.Error)
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// statusChanged records a status change in the system's timeline (a tracking event on
// "system:<name>") and in the audit trail, with who or what made it and why.
func (p *Platform) statusChanged(c status.Change) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	by := c.To.Actor
	if by == "" {
		by = "causeway (" + c.To.Cause + ")"
	}
	detail := fmt.Sprintf("%s → %s (%s): %s; by %s", c.From.Status, c.To.Status, c.To.Cause, c.To.Reason, by)
	if !c.To.Until.IsZero() {
		detail += "; until " + c.To.Until.Format(time.RFC3339)
	}
	ev := tracking.Event{MessageID: "system:" + c.To.System, Event: "system.status", Time: c.To.Since, Node: p.opts.Node, Detail: detail}
	if err := tracking.Publish(ctx, p.bus.JetStream(), ev); err != nil {
		p.log.Warn("system status change: tracking event not stored", "system", c.To.System, "err", err)
	}
	rec := reliability.Record{Time: c.To.Since, Actor: by, Action: "system.status", Target: "systems/" + c.To.System, Reason: c.To.Reason,
		Detail: map[string]string{"from": c.From.Status, "to": c.To.Status, "cause": c.To.Cause}}
	if !c.To.Until.IsZero() {
		rec.Detail["until"] = c.To.Until.Format(time.RFC3339)
	}
	if err := reliability.NewAudit(p.bus).Record(ctx, rec, p.opts.Node); err != nil {
		p.log.Warn("system status change: audit record not stored", "system", c.To.System, "err", err)
	}
}

func (a *admin) systemRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/systems", a.listSystems)
	mux.HandleFunc("GET /v1/systems/{name}", a.getSystem)
	mux.HandleFunc("PUT /v1/systems/{name}/status", a.setSystemStatus)
}

// systemView is a system's status with the deliveries waiting for it.
type systemView struct {
	Name string `json:"name"`
	status.Status
	// Switch is the operator's switch in force, if any.
	Switch *status.Switch `json:"switch,omitempty"`
	// Parked, Retrying and Errored count the deliveries held for the system, waiting for a
	// retry, and in the errors queue with it as the failing system.
	Parked   int `json:"parked"`
	Retrying int `json:"retrying"`
	Errored  int `json:"errored"`
	// OldestParked is when the oldest delivery parked for the system was parked.
	OldestParked time.Time `json:"oldestParked,omitzero"`
	// History is the system's recent status changes, newest first (GET /v1/systems/{name}).
	History []reliability.Record `json:"history,omitempty"`
}

// waiting counts, per system, the deliveries waiting for a retry and the entries of the
// errors queue.
func (a *admin) waiting(ctx context.Context) (retrying, errored map[string]int, err error) {
	retrying, errored = map[string]int{}, map[string]int{}
	if a.p.bus.Schedules() {
		s, err := a.p.bus.Stream(ctx, bus.StreamMessages)
		if err != nil {
			return nil, nil, err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(bus.SubjectSchedules+"retry.>"))
		if err != nil {
			return nil, nil, err
		}
		// cw.sched.retry.<run>.<n>.<system>: the system is the rest after two tokens.
		for subj, n := range info.State.Subjects {
			parts := strings.SplitN(strings.TrimPrefix(subj, bus.SubjectSchedules+"retry."), ".", 3)
			if len(parts) == 3 {
				retrying[parts[2]] += int(n)
			}
		}
	}
	err = a.errq.Each(ctx, reliability.Filter{Origin: reliability.OriginFlow}, 0, func(e *reliability.Entry) bool {
		if e.System != "" {
			errored[e.System]++
		}
		return true
	})
	return retrying, errored, err
}

func (a *admin) view(ctx context.Context, s status.Status, parked, retrying, errored map[string]int) systemView {
	v := systemView{Name: s.System, Status: s, Parked: parked[s.System], Retrying: retrying[s.System], Errored: errored[s.System]}
	if v.Parked > 0 {
		if oldest, err := a.p.flows.OldestParked(ctx); err == nil {
			v.OldestParked = oldest[s.System]
		}
	}
	if sw, ok := a.p.status.Switch(s.System); ok {
		v.Switch = &sw
	}
	return v
}

// listSystems answers GET /v1/systems.
func (a *admin) listSystems(w http.ResponseWriter, r *http.Request) {
	retrying, errored, err := a.waiting(r.Context())
	if err != nil {
		a.busProblem(w, r, "the systems' deliveries could not be counted", err)
		return
	}
	parked := a.p.flows.Parked()
	out := []systemView{}
	for _, s := range a.p.status.List() {
		out = append(out, a.view(r.Context(), s, parked, retrying, errored))
	}
	writeJSON(w, http.StatusOK, map[string]any{"systems": out})
}

// getSystem answers GET /v1/systems/{name}: the status, the counts and the recent changes.
func (a *admin) getSystem(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s, ok := a.p.status.Get(name)
	if !ok {
		problem.Write(w, r, http.StatusNotFound, "system-not-found", "no System "+strconv.Quote(name)+" is defined")
		return
	}
	retrying, errored, err := a.waiting(r.Context())
	if err != nil {
		a.busProblem(w, r, "the system's deliveries could not be counted", err)
		return
	}
	v := a.view(r.Context(), s, a.p.flows.Parked(), retrying, errored)
	recs, err := a.errq.Audit().Recent(r.Context(), "system.", 500)
	if err != nil {
		a.busProblem(w, r, "the system's history could not be read", err)
		return
	}
	v.History = []reliability.Record{}
	for _, rec := range recs {
		if rec.Target == "systems/"+name && len(v.History) < 50 {
			v.History = append(v.History, rec)
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// statusBody is the body of PUT /v1/systems/{name}/status.
type statusBody struct {
	// Status is online, degraded, offline, maintenance, or auto to clear the switch.
	Status string `json:"status"`
	// Until ends the switch: a duration from now ("2h") or an RFC 3339 time; empty holds it
	// until it is cleared.
	Until  string `json:"until"`
	Reason string `json:"reason"`
}

// setSystemStatus answers PUT /v1/systems/{name}/status: an operator's switch.
func (a *admin) setSystemStatus(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := a.p.status.Get(name); !ok {
		problem.Write(w, r, http.StatusNotFound, "system-not-found", "no System "+strconv.Quote(name)+" is defined")
		return
	}
	var b statusBody
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		problem.Write(w, r, http.StatusBadRequest, "bad-body", "the body: "+err.Error())
		return
	}
	sw := status.Switch{Status: b.Status, Reason: strings.TrimSpace(b.Reason), Actor: actor(r)}
	switch b.Status {
	case "auto":
	case status.Online, status.Degraded, status.Offline, status.Maintenance:
		if sw.Reason == "" {
			problem.Write(w, r, http.StatusBadRequest, "reason-required", "say why (reason): the status shows it, and the audit trail keeps it")
			return
		}
	default:
		problem.Write(w, r, http.StatusBadRequest, "bad-body", "status "+strconv.Quote(b.Status)+": expected online, degraded, offline, maintenance, or auto to clear the switch")
		return
	}
	if b.Until != "" {
		if d, err := time.ParseDuration(b.Until); err == nil && d > 0 {
			sw.Until = time.Now().Add(d).UTC()
		} else if t, err := time.Parse(time.RFC3339, b.Until); err == nil && t.After(time.Now()) {
			sw.Until = t.UTC()
		} else {
			problem.Write(w, r, http.StatusBadRequest, "bad-body", "until "+strconv.Quote(b.Until)+": expected a duration from now (2h) or a future RFC 3339 time")
			return
		}
	}
	if err := a.p.status.SetSwitch(r.Context(), name, sw); err != nil {
		a.busProblem(w, r, "the switch could not be stored", err)
		return
	}
	_ = a.errq.Audit().Record(r.Context(), reliability.Record{Actor: sw.Actor, Action: "system.switch", Target: "systems/" + name,
		Reason: sw.Reason, Detail: map[string]string{"status": b.Status, "until": b.Until}}, a.p.opts.Node)
	s, _ := a.p.status.Get(name)
	retrying, errored, _ := a.waiting(r.Context())
	writeJSON(w, http.StatusOK, a.view(r.Context(), s, a.p.flows.Parked(), retrying, errored))
}
