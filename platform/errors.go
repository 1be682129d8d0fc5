package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/reliability"
)

// The errors queue API: list and show entries, replay or discard one or, by filter, many;
// and the audit trail of those actions.

func (a *admin) errorRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/errors", a.listErrors)
	mux.HandleFunc("GET /v1/errors/{id}", a.getError)
	mux.HandleFunc("POST /v1/errors/{id}/replay", a.replayError)
	mux.HandleFunc("DELETE /v1/errors/{id}", a.discardError)
	mux.HandleFunc("POST /v1/errors/replay", a.bulkErrors("replay"))
	mux.HandleFunc("POST /v1/errors/discard", a.bulkErrors("discard"))
	mux.HandleFunc("GET /v1/audit", a.listAudit)
}

// HeaderActor names the person (or automation) behind a management API request, for the
// audit trail. The CLI sends the user's name.
const HeaderActor = "Causeway-Actor"

// actor is who made a request: the actor header, with the client's address.
func actor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	name := strings.TrimSpace(r.Header.Get(HeaderActor))
	if name == "" {
		name = "anonymous"
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name + " (" + host + ")"
}

// filterFromQuery reads an errors filter from query parameters.
func filterFromQuery(r *http.Request) (reliability.Filter, error) {
	q := r.URL.Query()
	f := reliability.Filter{Origin: q.Get("origin"), Flow: q.Get("flow"), Source: q.Get("source"), System: q.Get("system"),
		Type: q.Get("type"), Fingerprint: q.Get("fingerprint"), Class: q.Get("class")}
	for name, dst := range map[string]*time.Time{"from": &f.From, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, fmt.Errorf("query parameter %s: %q is not an RFC 3339 time", name, v)
			}
			*dst = t
		}
	}
	return f, checkFilter(f)
}

// checkFilter rejects values no entry can have, which are typing mistakes.
func checkFilter(f reliability.Filter) error {
	switch f.Origin {
	case "", reliability.OriginFlow, reliability.OriginSource:
	default:
		return fmt.Errorf("origin %q: expected flow or source", f.Origin)
	}
	switch f.Class {
	case "", reliability.ClassTransient, reliability.ClassPermanent:
	default:
		return fmt.Errorf("class %q: expected transient or permanent", f.Class)
	}
	return nil
}

// listErrors answers GET /v1/errors: entries oldest first, without their messages and
// histories (GET /v1/errors/{id} has them), with the cursor of the next page.
func (a *admin) listErrors(w http.ResponseWriter, r *http.Request) {
	f, err := filterFromQuery(r)
	if err != nil {
		problem.Write(w, r, http.StatusBadRequest, "bad-query", err.Error())
		return
	}
	limit, after := 100, uint64(0)
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			problem.Write(w, r, http.StatusBadRequest, "bad-query", "query parameter limit: expected a number from 1 to 1000, got "+strconv.Quote(v))
			return
		}
	}
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			problem.Write(w, r, http.StatusBadRequest, "bad-query", "query parameter after: expected an entry's sequence number, got "+strconv.Quote(v))
			return
		}
	}
	entries, next, err := a.errq.List(r.Context(), f, after, limit)
	if err != nil {
		a.busProblem(w, r, "the errors queue could not be read", err)
		return
	}
	for _, e := range entries {
		e.Message, e.Steps, e.Body, e.BodyBase64, e.Headers = nil, nil, "", nil, nil
		if len(e.Failures) > 1 {
			e.Failures = e.Failures[len(e.Failures)-1:]
		}
	}
	if entries == nil {
		entries = []*reliability.Entry{}
	}
	body := map[string]any{"entries": entries}
	if next > 0 {
		body["next"] = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, body)
}

// getError answers GET /v1/errors/{id}, by sequence number or entry id.
func (a *admin) getError(w http.ResponseWriter, r *http.Request) {
	e, ok := a.entry(w, r)
	if ok {
		writeJSON(w, http.StatusOK, e)
	}
}

// entry looks up the entry a request names, answering the problem when it cannot.
func (a *admin) entry(w http.ResponseWriter, r *http.Request) (*reliability.Entry, bool) {
	id := r.PathValue("id")
	e, err := a.errq.Get(r.Context(), id)
	if errors.Is(err, reliability.ErrNotFound) {
		problem.Write(w, r, http.StatusNotFound, "error-not-found", "no entry "+strconv.Quote(id)+" in the errors queue (replayed or discarded already, or never there)")
		return nil, false
	}
	if err != nil {
		a.busProblem(w, r, "the errors queue could not be read", err)
		return nil, false
	}
	return e, true
}

// actionBody is the body of a replay or discard request.
type actionBody struct {
	// Filter selects the entries of a bulk action.
	Filter reliability.Filter `json:"filter"`
	// All must be set for a bulk action without a filter: every entry.
	All    bool   `json:"all"`
	Reason string `json:"reason"`
	Patch  string `json:"patch"`
	DryRun bool   `json:"dryRun"`
	// Rate is how many entries a second a bulk action works (default 20, at most 1000).
	Rate float64 `json:"rate"`
	// Limit caps the entries a bulk action works (0: all).
	Limit int `json:"limit"`
}

// readAction decodes an action's body, strictly; an empty body is an empty action.
func readAction(w http.ResponseWriter, r *http.Request) (actionBody, bool) {
	var b actionBody
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		problem.Write(w, r, http.StatusBadRequest, "bad-body", "reading the body: "+err.Error())
		return b, false
	}
	if len(strings.TrimSpace(string(data))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			problem.Write(w, r, http.StatusBadRequest, "bad-body", "the body: "+err.Error())
			return b, false
		}
	}
	if v := r.URL.Query().Get("dryRun"); v == "true" || v == "1" {
		b.DryRun = true
	}
	if v := r.URL.Query().Get("reason"); v != "" && b.Reason == "" {
		b.Reason = v
	}
	if err := checkFilter(b.Filter); err != nil {
		problem.Write(w, r, http.StatusBadRequest, "bad-body", "filter: "+err.Error())
		return b, false
	}
	if b.Rate < 0 || b.Rate > 1000 || b.Limit < 0 {
		problem.Write(w, r, http.StatusBadRequest, "bad-body", "rate must be from 0 to 1000 entries a second, limit 0 or more")
		return b, false
	}
	return b, true
}

func (a *admin) replayError(w http.ResponseWriter, r *http.Request) {
	b, ok := readAction(w, r)
	if !ok {
		return
	}
	e, ok := a.entry(w, r)
	if !ok {
		return
	}
	out, err := a.errq.Replay(r.Context(), e, reliability.Action{Actor: actor(r), Reason: b.Reason, Patch: b.Patch, DryRun: b.DryRun}, flow.RunID)
	switch {
	case errors.Is(err, reliability.ErrBadPatch):
		problem.Write(w, r, http.StatusUnprocessableEntity, "bad-patch", err.Error())
	case errors.Is(err, reliability.ErrNotReplayable):
		problem.Write(w, r, http.StatusConflict, "not-replayable", err.Error())
	case err != nil:
		a.busProblem(w, r, "the entry could not be replayed", err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"dryRun": b.DryRun, "replayed": out})
	}
}

func (a *admin) discardError(w http.ResponseWriter, r *http.Request) {
	b, ok := readAction(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(b.Reason) == "" {
		problem.Write(w, r, http.StatusBadRequest, "reason-required", "say why the entry is discarded (reason): the audit trail keeps it")
		return
	}
	e, ok := a.entry(w, r)
	if !ok {
		return
	}
	out, err := a.errq.Discard(r.Context(), e, reliability.Action{Actor: actor(r), Reason: b.Reason, DryRun: b.DryRun})
	if err != nil {
		a.busProblem(w, r, "the entry could not be discarded", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"dryRun": b.DryRun, "discarded": out})
}

// bulkErrors answers POST /v1/errors/replay and /v1/errors/discard: the action on every
// entry the filter selects, throttled, with what happened to each.
func (a *admin) bulkErrors(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, ok := readAction(w, r)
		if !ok {
			return
		}
		if b.Filter.Empty() && !b.All {
			problem.Write(w, r, http.StatusBadRequest, "filter-required", "give a filter, or all: true to "+action+" every entry in the errors queue")
			return
		}
		if action == "discard" && strings.TrimSpace(b.Reason) == "" {
			problem.Write(w, r, http.StatusBadRequest, "reason-required", "say why the entries are discarded (reason): the audit trail keeps it")
			return
		}
		act := reliability.Action{Actor: actor(r), Reason: b.Reason, Patch: b.Patch, DryRun: b.DryRun}
		if b.Patch != "" && !b.DryRun {
			// A patch that cannot work fails every entry alike: check it on none first.
			if _, err := reliability.CheckPatch(b.Patch); err != nil {
				problem.Write(w, r, http.StatusUnprocessableEntity, "bad-patch", err.Error())
				return
			}
		}
		outs, err := a.errq.Bulk(r.Context(), b.Filter, action, act, b.Rate, b.Limit, flow.RunID)
		if err != nil && len(outs) == 0 {
			a.busProblem(w, r, "the errors queue could not be worked", err)
			return
		}
		failed := 0
		for _, o := range outs {
			if o.Error != "" {
				failed++
			}
		}
		key := map[string]string{"replay": "replayed", "discard": "discarded"}[action]
		body := map[string]any{"dryRun": b.DryRun, "matched": len(outs), "failed": failed, key: outs}
		if err != nil {
			body["interrupted"] = err.Error()
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// listAudit answers GET /v1/audit: operator actions, newest first.
func (a *admin) listAudit(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem.Write(w, r, http.StatusBadRequest, "bad-query", "query parameter limit: expected a number from 1 to 1000, got "+strconv.Quote(v))
			return
		}
		limit = n
	}
	recs, err := a.errq.Audit().Recent(r.Context(), r.URL.Query().Get("action"), limit)
	if err != nil {
		a.busProblem(w, r, "the audit trail could not be read", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
}

// busProblem answers 503 for a failure of the bus under a management request.
func (a *admin) busProblem(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.p.log.Error(what, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "1")
	problem.Write(w, r, http.StatusServiceUnavailable, "bus-unavailable", what+": "+err.Error())
}
