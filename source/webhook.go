package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/internal/httpbody"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/reliability"
)

// Publisher stores accepted messages on the bus.
type Publisher interface {
	PublishAll(ctx context.Context, events []*message.Event, node string) error
}

// Options configures the webhook handler.
type Options struct {
	// Bus stores messages and, through its JetStream, the ERRORS entries.
	Bus *bus.Bus
	// Check validates a message's data against its MessageType.
	Check func(typ string, data []byte) error
	// Node names this node on the messages it stores.
	Node string
	// Logger and Registerer receive logs and metrics.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Metrics counts the events of every kind of source; nil counts nothing.
	Metrics *Metrics
	// Connectors carry out the operations schedule sources call.
	Connectors *connector.Set
}

// Handler serves the webhooks of the configured sources.
type Handler struct {
	opts    Options
	log     *slog.Logger
	sources []*webhookSource
}

type webhookSource struct {
	name string
	spec *Spec
}

// NewHandler prepares the webhooks of the sources in cfg.
func NewHandler(cfg *config.Config, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &Handler{opts: opts, log: opts.Logger.With("component", "sources")}
	for _, r := range cfg.ByKind(Kind) {
		h.sources = append(h.sources, &webhookSource{name: r.Metadata.Name, spec: r.Spec.(*Spec)})
	}
	sort.Slice(h.sources, func(i, j int) bool { return h.sources[i].name < h.sources[j].name })
	return h
}

// Register adds each source's webhook to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, s := range h.sources {
		if s.spec.Webhook != nil {
			mux.HandleFunc("POST "+s.spec.Webhook.Path, func(w http.ResponseWriter, r *http.Request) { h.serve(s, w, r) })
		}
	}
}

// Paths are the paths the webhooks take POST requests on.
func (h *Handler) Paths() []string {
	var out []string
	for _, s := range h.sources {
		if s.spec.Webhook != nil {
			out = append(out, s.spec.Webhook.Path)
		}
	}
	return out
}

// serve handles one call of a webhook.
func (h *Handler) serve(s *webhookSource, w http.ResponseWriter, r *http.Request) {
	wh := s.spec.Webhook
	refuse := func(status int, slug, detail string) {
		h.opts.Metrics.count(s.name, "refused", 1)
		h.log.Debug("webhook call refused", "source", s.name, "status", status, "reason", detail)
		problem.Write(w, r, status, slug, detail)
	}
	body, err := httpbody.Read(w, r, wh.MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			refuse(http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body is over the limit of %d bytes", mbe.Limit))
			return
		}
		refuse(http.StatusBadRequest, "malformed", "reading the body: "+err.Error())
		return
	}
	deliveryID := ""
	if sg := wh.Signature; sg != nil {
		if deliveryID, err = verify(sg, r.Header, body, time.Now()); err != nil {
			refuse(http.StatusUnauthorized, "bad-signature", err.Error())
			return
		}
	}
	var payload any
	if len(body) > 0 {
		if payload, err = expr.DecodeJSON(body); err != nil {
			refuse(http.StatusBadRequest, "malformed", "the body is not JSON: "+err.Error())
			return
		}
	}
	headers := map[string]any{}
	for k := range r.Header {
		headers[strings.ToLower(k)] = r.Header.Get(k)
	}
	query := map[string]any{}
	for k, v := range r.URL.Query() {
		query[k] = v[0]
	}
	input := map[string]any{"body": payload, "headers": headers, "query": query}

	ev, err := mapEvent(r.Context(), h.opts, s.spec, input, payload, deliveryID)
	if err != nil {
		// Never dropped: kept with the raw payload for someone to look at and replay.
		id, serr := h.keep(r.Context(), s, r, body, deliveryID, err)
		if serr != nil {
			h.log.Error("webhook payload could not be kept in the ERRORS stream", "source", s.name, "err", serr)
			w.Header().Set("Retry-After", "5")
			problem.Write(w, r, http.StatusServiceUnavailable, "bus-unavailable", "the event could not be mapped and could not be kept either; send it again later")
			return
		}
		h.opts.Metrics.count(s.name, "errors", 1)
		h.log.Warn("webhook event kept in the ERRORS stream", "source", s.name, "error", id, "reason", err)
		writeJSON(w, http.StatusAccepted, map[string]any{"error": id, "reason": err.Error()})
		return
	}
	if err := h.opts.Bus.PublishAll(r.Context(), []*message.Event{ev}, h.opts.Node); err != nil {
		h.log.Error("webhook message not stored", "source", s.name, "id", ev.ID, "err", err)
		w.Header().Set("Retry-After", "1")
		problem.Write(w, r, http.StatusServiceUnavailable, "bus-unavailable", "the bus did not store the message; send it again")
		return
	}
	h.opts.Metrics.count(s.name, "accepted", 1)
	writeJSON(w, http.StatusAccepted, map[string]any{"id": ev.ID})
}

// emitEvent maps a raw event to a message.
func emitEvent(ctx context.Context, spec *Spec, input, payload any, deliveryID string) (*message.Event, error) {
	c := spec.compiled
	ev := &message.Event{Source: spec.System, Type: spec.Emit.Type, ID: deliveryID}
	if c.id != nil {
		v, err := c.id.Eval(ctx, input)
		if err != nil {
			return nil, fmt.Errorf("emit.id: %w", err)
		}
		ev.ID = expr.ToString(v)
	}
	if c.subject != nil {
		v, err := c.subject.Eval(ctx, input)
		if err != nil {
			return nil, fmt.Errorf("emit.subject: %w", err)
		}
		ev.Subject = expr.ToString(v)
	}
	if c.key != nil {
		v, err := c.key.Eval(ctx, input)
		if err != nil {
			return nil, fmt.Errorf("emit.key: %w", err)
		}
		if k := expr.ToString(v); k != "" {
			ev.Extensions = map[string]string{"partitionkey": k}
		}
	}
	data := payload
	if c.data != nil {
		v, err := c.data.Eval(ctx, input)
		if err != nil {
			return nil, fmt.Errorf("emit.data: %w", err)
		}
		data = v
	}
	if data != nil {
		raw, err := expr.MarshalJSON(data)
		if err != nil {
			return nil, fmt.Errorf("emit.data: %w", err)
		}
		ev.Data, ev.DataContentType = raw, "application/json"
	}
	ev.FillDefaults(time.Now())
	if problems := ev.Check(""); len(problems) > 0 {
		return nil, fmt.Errorf("emit: %v", problems)
	}
	return ev, nil
}

// mapEvent maps a raw event to a message, and checks it against its MessageType and the
// size the bus takes, so that what cannot be stored goes to ERRORS instead of failing the
// publish again and again.
func mapEvent(ctx context.Context, opts Options, spec *Spec, input, payload any, deliveryID string) (*message.Event, error) {
	ev, err := emitEvent(ctx, spec, input, payload, deliveryID)
	if err != nil {
		return nil, err
	}
	if opts.Check != nil {
		if err := opts.Check(ev.Type, ev.Data); err != nil {
			return nil, fmt.Errorf("the message does not match %s: %w", ev.Type, err)
		}
	}
	ev.TraceParent, ev.TraceState = traceOf(input)
	if opts.Bus != nil {
		if limit := opts.Bus.MaxMessageBytes(); limit > 0 && int64(len(ev.Data)) > limit {
			return nil, fmt.Errorf("the message's data has %d bytes, more than the bus takes (%d)", len(ev.Data), limit)
		}
	}
	return ev, nil
}

// traceOf finds the W3C trace context a system sent with an event — in its HTTP, AMQP,
// NATS or Kafka headers, or its MQTT user properties — so that the trace goes on through
// the bus; an event without one starts a trace of its own.
func traceOf(input any) (traceparent, tracestate string) {
	in, _ := input.(map[string]any)
	for _, field := range []string{"headers", "properties"} {
		h, _ := in[field].(map[string]any)
		for _, name := range []string{"traceparent", "Traceparent", "TraceParent"} {
			if tp, ok := h[name].(string); ok && message.ValidTraceparent(tp) {
				ts, _ := h[strings.Replace(name, "parent", "state", 1)].(string)
				if ts == "" {
					ts, _ = h["tracestate"].(string)
				}
				return tp, ts
			}
		}
	}
	return message.NewTraceparent(), ""
}

// keep stores a webhook event that could not become a message in the ERRORS stream,
// without the headers that carry signatures and credentials.
func (h *Handler) keep(ctx context.Context, s *webhookSource, r *http.Request, body []byte, deliveryID string, reason error) (string, error) {
	headers := map[string]string{}
	for k := range r.Header {
		switch strings.ToLower(k) {
		case "authorization", "webhook-signature", "x-hub-signature-256", "x-hub-signature", "cookie":
			continue
		}
		headers[k] = r.Header.Get(k)
	}
	return keepError2(ctx, h.opts.Bus, s.name, deliveryID, body, headers, reason)
}

// keepError stores what a source could not turn into a message in the ERRORS stream.
func keepError(ctx context.Context, b *bus.Bus, source, deliveryID string, body []byte, headers map[string]string, reason error) error {
	_, err := keepError2(ctx, b, source, deliveryID, body, headers, reason)
	return err
}

func keepError2(ctx context.Context, b *bus.Bus, source, deliveryID string, body []byte, headers map[string]string, reason error) (string, error) {
	e := reliability.Entry{ID: message.NewID(), Origin: reliability.OriginSource, Source: source, Reason: reason.Error(),
		Class: reliability.ClassPermanent, Time: time.Now().UTC(), DeliveryID: deliveryID, Headers: headers}
	if utf8.Valid(body) {
		e.Body = string(body)
	} else {
		e.BodyBase64 = body
	}
	dedup := ""
	if deliveryID != "" {
		// An event read or sent again is kept once.
		dedup = "source:" + source + ":" + deliveryID
	}
	if err := reliability.Put(ctx, b, &e, dedup); err != nil {
		return "", err
	}
	return e.ID, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
