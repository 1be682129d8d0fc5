package platform

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/reliability"
)

// revokeRoutes serves run-time key revocation: a leaked key is refused by every node at
// once, without a deployment, and the audit trail says who did it and why.
func (a *admin) revokeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/revocations", a.listRevocations)
	mux.HandleFunc("PUT /v1/consumers/{name}/keys/{key}/revocation", a.revokeKey)
	mux.HandleFunc("DELETE /v1/consumers/{name}/keys/{key}/revocation", a.reinstateKey)
}

// listRevocations answers GET /v1/revocations.
func (a *admin) listRevocations(w http.ResponseWriter, r *http.Request) {
	out := a.p.gateway.RevokedKeys()
	if out == nil {
		out = []gateway.Revocation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"revocations": out})
}

// reasonBody is the body of a revocation or reinstatement.
type reasonBody struct {
	Reason string `json:"reason"`
}

// readReason reads {"reason": "..."}; an empty body is an empty reason.
func readReason(w http.ResponseWriter, r *http.Request) (string, bool) {
	var b reasonBody
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil && !errors.Is(err, io.EOF) {
		problem.Write(w, r, http.StatusBadRequest, "bad-body", "the body: "+err.Error())
		return "", false
	}
	return strings.TrimSpace(b.Reason), true
}

// revokeKey answers PUT /v1/consumers/{name}/keys/{key}/revocation.
func (a *admin) revokeKey(w http.ResponseWriter, r *http.Request) {
	reason, ok := readReason(w, r)
	if !ok {
		return
	}
	if reason == "" {
		problem.Write(w, r, http.StatusBadRequest, "reason-required", "say why the key is revoked (reason): the audit trail keeps it")
		return
	}
	consumer, key, who := r.PathValue("name"), r.PathValue("key"), actor(r)
	rev, err := a.p.gateway.RevokeKey(r.Context(), consumer, key, reason, who)
	if a.revocationError(w, r, err) {
		return
	}
	_ = a.errq.Audit().Record(r.Context(), reliability.Record{Actor: who, Action: "consumer.key.revoke",
		Target: "consumers/" + consumer + "/keys/" + key, Reason: reason}, a.p.opts.Node)
	writeJSON(w, http.StatusOK, rev)
}

// reinstateKey answers DELETE /v1/consumers/{name}/keys/{key}/revocation.
func (a *admin) reinstateKey(w http.ResponseWriter, r *http.Request) {
	reason, ok := readReason(w, r)
	if !ok {
		return
	}
	consumer, key, who := r.PathValue("name"), r.PathValue("key"), actor(r)
	if _, err := a.p.gateway.ReinstateKey(r.Context(), consumer, key); a.revocationError(w, r, err) {
		return
	}
	_ = a.errq.Audit().Record(r.Context(), reliability.Record{Actor: who, Action: "consumer.key.reinstate",
		Target: "consumers/" + consumer + "/keys/" + key, Reason: reason}, a.p.opts.Node)
	w.WriteHeader(http.StatusNoContent)
}

// revocationError answers err, if there is one, and says whether it did.
func (a *admin) revocationError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, gateway.ErrUnknownKey):
		problem.Write(w, r, http.StatusNotFound, "key-not-found", err.Error())
	case errors.Is(err, gateway.ErrNotRevoked):
		problem.Write(w, r, http.StatusNotFound, "not-revoked", err.Error())
	case errors.Is(err, gateway.ErrNoRevocations):
		problem.Write(w, r, http.StatusConflict, "no-apis", err.Error())
	default:
		a.busProblem(w, r, "the revocation could not be stored", err)
	}
	return true
}
