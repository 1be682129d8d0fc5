package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/causeway/causeway/source"
)

// CRM is a small customer system with an HTTP API. It reads customers, keeps notes on
// their timelines, and tells a webhook when a customer changes.
type CRM struct {
	mu        sync.Mutex
	customers map[string]map[string]any
	notes     []map[string]any
	changes   int
	srv       *http.Server
	ln        net.Listener
}

// tiers are the customer tiers, in the order a change moves a customer through them.
var tiers = []string{"bronze", "silver", "gold"}

// NewCRM makes a CRM with a few customers, listening on a loopback port.
func NewCRM() (*CRM, error) {
	c := &CRM{customers: map[string]map[string]any{}}
	for i, name := range []string{"Ada Lovelace", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Ken Thompson"} {
		id := fmt.Sprintf("C-%03d", i+1)
		c.customers[id] = map[string]any{"id": id, "name": name, "email": fmt.Sprintf("customer%d@example.com", i+1), "tier": tiers[i%len(tiers)]}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /customers/{id}", c.getCustomer)
	mux.HandleFunc("POST /customers/{id}/notes", c.addNote)
	mux.HandleFunc("GET /notes", c.listNotes)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.ln, c.srv = ln, &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// URL is the CRM's base URL.
func (c *CRM) URL() string { return "http://" + c.ln.Addr().String() }

// Close stops the CRM's server.
func (c *CRM) Close() { _ = c.srv.Close() }

func (c *CRM) getCustomer(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	cust, ok := c.customers[r.PathValue("id")]
	c.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":"no such customer"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(cust)
}

func (c *CRM) addNote(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Text == "" {
		http.Error(w, `{"error":"a note needs text"}`, http.StatusBadRequest)
		return
	}
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.customers[id]; !ok {
		http.Error(w, `{"error":"no such customer"}`, http.StatusNotFound)
		return
	}
	// A call repeated with its Idempotency-Key adds the note once.
	key := r.Header.Get("Idempotency-Key")
	for _, n := range c.notes {
		if key != "" && n["key"] == key {
			w.WriteHeader(http.StatusOK)
			_ = json.NewEncoder(w).Encode(n)
			return
		}
	}
	note := map[string]any{"noteId": len(c.notes) + 1, "customerId": id, "text": body.Text, "key": key}
	c.notes = append(c.notes, note)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(note)
}

func (c *CRM) listNotes(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.notes)
}

// Notes is how many notes the CRM holds.
func (c *CRM) Notes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.notes)
}

// LastNote is the text of the newest note, or "".
func (c *CRM) LastNote() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.notes) == 0 {
		return ""
	}
	return fmt.Sprint(c.notes[len(c.notes)-1]["text"])
}

// InStep counts the customers whose tier in erp is the CRM's.
func (c *CRM) InStep(erp map[string]string) (same, all int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cust := range c.customers {
		if erp[id] == cust["tier"] {
			same++
		}
	}
	return same, len(c.customers)
}

// Changes is how many customer changes the CRM announced.
func (c *CRM) Changes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changes
}

// Change moves the n-th customer (in id order) to the next tier and sends the change,
// signed, to the webhook.
func (c *CRM) Change(ctx context.Context, n int, hookURL, secret string) error {
	c.mu.Lock()
	ids := make([]string, 0, len(c.customers))
	for id := range c.customers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cust := c.customers[ids[n%len(ids)]]
	for i, t := range tiers {
		if cust["tier"] == t {
			cust["tier"] = tiers[(i+1)%len(tiers)]
			break
		}
	}
	c.changes++
	deliveryID := fmt.Sprintf("crm-change-%d", c.changes)
	body, _ := json.Marshal(cust)
	c.mu.Unlock()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := source.SignStandard(req.Header, secret, deliveryID, time.Now(), body); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return nil
}
