// Package ingest is the front door of the bus: POST /v1/messages takes CloudEvents in the
// structured, batch and HTTP binary content modes, checks every attribute and the data
// against its MessageType's schema, and answers 202 only once JetStream has acknowledged
// (and, by default, fsynced) every message.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/httpbody"
	"github.com/causeway/causeway/internal/waitctx"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/problem"
)

// Media types accepted by the endpoint.
const (
	ContentTypeStructured = "application/cloudevents+json"
	ContentTypeBatch      = "application/cloudevents-batch+json"
	ContentTypeJSON       = "application/json"
)

// ErrUnknownType is what a Catalog returns for a type no MessageType declares.
var ErrUnknownType = errors.New("unknown message type")

// Violation is one way the data fails its schema, located by a JSON pointer into the data.
type Violation struct{ Pointer, Message string }

// Catalog checks message data against the declared MessageTypes.
type Catalog interface {
	// Check validates data (nil for none) against the schema of the MessageType typ. It
	// returns ErrUnknownType (possibly wrapped, with the known names) when there is none.
	Check(typ string, data []byte) ([]Violation, error)
}

// Publisher is the part of the bus ingestion needs.
type Publisher interface {
	// PublishAll stores events on the bus and returns once every one is stored.
	PublishAll(ctx context.Context, events []*message.Event, node string) error
}

// Options configures the handler.
type Options struct {
	// MaxMessageBytes bounds the body of a single message and each item of a batch.
	MaxMessageBytes int64
	// MaxBatchBytes bounds the body of a batch.
	MaxBatchBytes int64
	// MaxBatchItems bounds the number of messages in one batch.
	MaxBatchItems int
	// AckTimeout is how long to wait for the bus to acknowledge a request's messages.
	AckTimeout time.Duration
	// Node names this node in the messages it accepts.
	Node string
}

// Handler serves POST /v1/messages.
type Handler struct {
	catalog Catalog
	bus     Publisher
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	// acks gives the waits for the bus's acknowledgement their context when nothing else
	// can end them (the lean listener's requests): shared per tick, not one per request.
	acks *waitctx.Timeout
}

// New returns the ingestion handler.
func New(c Catalog, p Publisher, opts Options, log *slog.Logger, m *Metrics) *Handler {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 1 << 20
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 10 << 20
	}
	if opts.MaxBatchItems <= 0 {
		opts.MaxBatchItems = 1000
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 10 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	return &Handler{catalog: c, bus: p, opts: opts, log: log.With("component", "ingest"), metrics: m, now: time.Now,
		acks: waitctx.New(opts.AckTimeout, 0)}
}

// mode is the content mode of a request.
type mode int

const (
	modeStructured mode = iota
	modeBatch
	modeBinary
)

// String names the mode, as the metrics label it.
func (m mode) String() string {
	return [...]string{"structured", "batch", "binary"}[m]
}

// accepted is the 202 body.
type accepted struct {
	IDs []string `json:"ids"`
}

// ServeHTTP ingests one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	md, ok := h.mode(w, r)
	if !ok {
		return
	}
	events, ok := h.decode(w, r, md)
	if !ok {
		return
	}
	ids, ok := h.publish(w, r, events)
	if !ok {
		return
	}
	for _, ev := range events {
		h.metrics.accepted(ev.Type)
	}
	writeAccepted(w, ids)
	h.metrics.modeDuration[md].Observe(time.Since(start).Seconds())
}

// mode picks the content mode from the request headers, answering 415 for a media type
// that is none of them.
func (h *Handler) mode(w http.ResponseWriter, r *http.Request) (mode, bool) {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// A compressed body would otherwise be reported as malformed JSON, which would
		// send the client looking in the wrong place.
		h.reject(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type", fmt.Sprintf("Content-Encoding %q is not supported: send the body uncompressed", ce), "", nil)
		return 0, false
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct != "" && err != nil {
		h.reject(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type", fmt.Sprintf("Content-Type %q cannot be parsed: %v", ct, err), "", nil)
		return 0, false
	}
	switch {
	case mt == ContentTypeStructured:
		return modeStructured, true
	case mt == ContentTypeBatch:
		return modeBatch, true
	case message.IsHTTPBinary(r.Header):
		if mt != "" && !message.IsJSONContentType(mt) {
			h.reject(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type",
				fmt.Sprintf("binary-mode data of type %q: Causeway messages carry JSON data (application/json or a +json type) checked against their MessageType", mt), "", nil)
			return 0, false
		}
		return modeBinary, true
	case mt == ContentTypeJSON:
		return modeStructured, true
	}
	h.reject(w, r, http.StatusUnsupportedMediaType, "unsupported-media-type",
		fmt.Sprintf("Content-Type %q is not accepted: send %s (one event), %s (a JSON array of events), %s, or the CloudEvents binary mode (ce-* headers)", ct, ContentTypeStructured, ContentTypeBatch, ContentTypeJSON), "", nil)
	return 0, false
}

// decode reads the body within its size limit and turns it into checked events, answering
// 400, 413 or 422 when it cannot.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, md mode) ([]*message.Event, bool) {
	limit, flag := h.limit(md)
	if r.ContentLength > limit {
		h.reject(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("body of %d bytes exceeds the limit of %d bytes (%s)", r.ContentLength, limit, flag), "", nil)
		return nil, false
	}
	body, err := httpbody.Read(w, r, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.reject(w, r, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("body exceeds the limit of %d bytes (%s)", limit, flag), "", nil)
		} else {
			h.reject(w, r, http.StatusBadRequest, "unreadable-body", "reading the body: "+err.Error(), "", nil)
		}
		return nil, false
	}
	events, rej := h.parse(md, body, r.Header, r.Header.Get("Traceparent"), r.Header.Get("Tracestate"))
	if rej != nil {
		h.reject(w, r, rej.status, rej.slug, rej.detail, rej.reason, rej.fe)
		return nil, false
	}
	return events, true
}

// limit is the body size limit of a request in mode md, and the flag that sets it.
func (h *Handler) limit(md mode) (int64, string) {
	if md == modeBatch {
		return h.opts.MaxBatchBytes, "--max-batch-bytes"
	}
	return h.opts.MaxMessageBytes, "--max-message-bytes"
}

// rejection is a refused request: its problem, and the reason the metrics count (the
// slug when empty).
type rejection struct {
	status               int
	slug, detail, reason string
	fe                   message.FieldErrors
}

// parse turns a body read within its limit into checked events, or says why it is refused.
// header carries the attributes of the binary mode; traceparent and tracestate are the
// request's trace context, which events without one of their own inherit.
func (h *Handler) parse(md mode, body []byte, header http.Header, traceparent, tracestate string) ([]*message.Event, *rejection) {
	var events []*message.Event
	var err error
	switch md {
	case modeStructured:
		var ev *message.Event
		ev, err = message.DecodeStructured(body, "")
		events = []*message.Event{ev}
	case modeBatch:
		events, err = message.DecodeBatch(body)
		if err == nil && len(events) == 0 {
			return nil, &rejection{status: http.StatusUnprocessableEntity, slug: "empty-batch", detail: "the batch holds no events"}
		}
		if err == nil && len(events) > h.opts.MaxBatchItems {
			return nil, &rejection{status: http.StatusRequestEntityTooLarge, slug: "too-large",
				detail: fmt.Sprintf("the batch holds %d events; at most %d are accepted at once (--max-batch-items)", len(events), h.opts.MaxBatchItems)}
		}
	case modeBinary:
		var ev *message.Event
		ev, err = message.DecodeHTTPBinary(header, body)
		events = []*message.Event{ev}
	}
	if err != nil {
		return nil, decodeRejection(err)
	}
	inheritTrace(events, traceparent, tracestate)
	if problems := h.check(events, md == modeBatch); len(problems) > 0 {
		reason := "invalid"
		for _, p := range problems {
			if strings.Contains(p.Pointer, "/data") {
				reason = "schema"
				break
			}
		}
		return nil, &rejection{status: http.StatusUnprocessableEntity, slug: "invalid-message", detail: summarize(problems), reason: reason, fe: problems}
	}
	return events, nil
}

// decodeRejection is the refusal of a body that does not decode.
func decodeRejection(err error) *rejection {
	var se *message.SyntaxError
	var fe message.FieldErrors
	switch {
	case errors.As(err, &se):
		return &rejection{status: http.StatusBadRequest, slug: "malformed-json", detail: se.Error(), reason: "malformed"}
	case errors.As(err, &fe):
		return &rejection{status: http.StatusUnprocessableEntity, slug: "invalid-message", detail: summarize(fe), reason: "invalid", fe: fe}
	default:
		return &rejection{status: http.StatusBadRequest, slug: "bad-request", detail: err.Error(), reason: "malformed"}
	}
}

// check fills each event's defaults and collects every problem: missing attributes, an
// undeclared type, data over the size limit, and schema violations.
func (h *Handler) check(events []*message.Event, batch bool) message.FieldErrors {
	now := h.now()
	var problems message.FieldErrors
	for i, ev := range events {
		prefix := ""
		if batch {
			prefix = "/" + strconv.Itoa(i)
		}
		ev.FillDefaults(now)
		if p := ev.Check(prefix); len(p) > 0 {
			problems = append(problems, p...)
			continue
		}
		if int64(len(ev.Data)) > h.opts.MaxMessageBytes {
			problems = append(problems, message.FieldError{Pointer: prefix + "/data", Detail: fmt.Sprintf("data of %d bytes exceeds the limit of %d bytes (--max-message-bytes)", len(ev.Data), h.opts.MaxMessageBytes)})
			continue
		}
		violations, err := h.catalog.Check(ev.Type, ev.Data)
		if err != nil {
			problems = append(problems, message.FieldError{Pointer: prefix + "/type", Detail: err.Error()})
			continue
		}
		for _, v := range violations {
			problems = append(problems, message.FieldError{Pointer: prefix + "/data" + v.Pointer, Detail: v.Message})
		}
	}
	return problems
}

// publish hands every event to the bus, which pipelines them (or groups them with other
// requests' into atomic batches), and waits for all acknowledgements. It answers 503 when the
// bus does not confirm them: the body lists the ids, so a client that resends with the same
// ids cannot create duplicates.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request, events []*message.Event) ([]string, bool) {
	ids, p := h.send(r.Context(), events)
	if p != nil {
		w.Header().Set("Retry-After", "1")
		p.Write(w, r)
		return nil, false
	}
	return ids, true
}

// send publishes events and waits for the bus's acknowledgement of each, within the
// acknowledgement timeout and the life of parent. It returns their ids, or the problem to
// answer when the bus did not confirm them all (a 503 listing the ids).
func (h *Handler) send(parent context.Context, events []*message.Event) ([]string, *problem.Details) {
	start := time.Now()
	ids := make([]string, len(events))
	for i, ev := range events {
		ids[i] = ev.ID
	}
	var ctx context.Context
	if parent == context.Background() {
		// Nothing but the timeout ends the wait, and the request's context carries
		// nothing (a request on the lean listener has no context of its own): the wait
		// shares its tick's context, which ends up to AckTimeout/100 after AckTimeout.
		ctx = h.acks.Context(start)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, h.opts.AckTimeout)
		defer cancel()
	}
	failed := h.bus.PublishAll(ctx, events, h.opts.Node)
	h.metrics.publishStream.Observe(time.Since(start).Seconds())
	if failed != nil {
		h.log.Error("bus did not acknowledge messages", "count", len(events), "err", failed)
		p := problem.New(http.StatusServiceUnavailable, "bus-unavailable",
			"the bus did not acknowledge every message ("+failed.Error()+"); some may be stored: resend the same messages with these ids, and duplicates will be dropped")
		p.IDs = ids
		for range events {
			h.metrics.rejected("unavailable")
		}
		return nil, p
	}
	return ids, nil
}

// reject answers a problem and counts the rejection.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, slug, detail, reason string, fe message.FieldErrors) {
	p := problem.New(status, slug, detail)
	for _, e := range fe {
		p.Errors = append(p.Errors, problem.FieldError{Pointer: e.Pointer, Detail: e.Detail})
	}
	p.Write(w, r)
	if reason == "" {
		reason = slug
	}
	h.metrics.rejected(reason)
	// Refusals are the client's problem, not the node's: debug level keeps a misbehaving
	// client from flooding the logs, while the metric above counts every one.
	h.log.Debug("message refused", "status", status, "reason", reason, "detail", detail, "remote", r.RemoteAddr)
}

// summarize gives the problems in one detail line, short enough to read in a log.
func summarize(fe message.FieldErrors) string {
	const show = 3
	if len(fe) <= show {
		return fe.Error()
	}
	return fmt.Sprintf("%s; and %d more problems (see errors)", fe[:show].Error(), len(fe)-show)
}

// inheritTrace gives events without their own trace context the W3C trace context of the
// HTTP request that carried them, so that a trace started by the producer continues through
// the bus to whatever handles the message.
func inheritTrace(events []*message.Event, traceparent, tracestate string) {
	if !message.ValidTraceparent(traceparent) {
		return
	}
	for _, ev := range events {
		if ev.TraceParent == "" {
			ev.TraceParent, ev.TraceState = traceparent, tracestate
		}
	}
}
