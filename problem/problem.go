// Package problem writes HTTP error responses as RFC 9457 problem details
// (application/problem+json), the one error shape every Causeway API answers with.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// FieldError locates one problem inside the request by JSON pointer.
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// Details is a problem details object.
type Details struct {
	// Type identifies the kind of problem; Causeway uses urn:causeway:problem:<slug>.
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// IDs lists message ids the problem concerns, where some may have been stored.
	IDs []string `json:"ids,omitempty"`
	// RunID names the flow run the problem concerns (GET /v1/runs/{id}).
	RunID string `json:"runId,omitempty"`
}

// New returns a problem of the given kind (a short slug such as "schema-violation").
func New(status int, slug, detail string) *Details {
	return &Details{Type: "urn:causeway:problem:" + slug, Title: http.StatusText(status), Status: status, Detail: detail}
}

// Write sends the problem as the response.
func (d *Details) Write(w http.ResponseWriter, r *http.Request) {
	instance := ""
	if r != nil {
		instance = r.URL.Path
	}
	status, body := d.Encode(instance)
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Encode returns the status and the JSON body to answer, for a server that writes its
// answers without net/http (the gateway's fast lane); the answer's headers are those
// Write sets. instance fills the problem's instance when it has none (the request's path).
func (d *Details) Encode(instance string) (int, []byte) {
	if d.Instance == "" {
		d.Instance = instance
	}
	body, err := json.Marshal(d)
	if err != nil {
		body = []byte(`{"type":"urn:causeway:problem:internal","title":"Internal Server Error","status":500}`)
		d.Status = http.StatusInternalServerError
	}
	return d.Status, body
}

// Write is a shorthand for New(status, slug, detail).Write(w, r).
func Write(w http.ResponseWriter, r *http.Request, status int, slug, detail string) {
	New(status, slug, detail).Write(w, r)
}

// NotFound answers any request no route matched, so that even a wrong URL gets a problem
// details body rather than plain text.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Write(w, r, http.StatusNotFound, "not-found", "no route for "+r.Method+" "+r.URL.Path)
}
