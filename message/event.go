// Package message defines Causeway's canonical message: a CloudEvents 1.0 event with the
// extension attributes the platform relies on, and its codecs (structured JSON, batches, the
// HTTP binary content mode, and the NATS binary mode used on the bus).
package message

import (
	"encoding/json"
	"time"

	"github.com/oklog/ulid/v2"
)

// SpecVersion is the only CloudEvents version Causeway speaks.
const SpecVersion = "1.0"

// Message kinds: an original is what a producer sent; a retry is a later re-delivery attempt
// made by the platform after a transient failure.
const (
	KindOriginal = "original"
	KindRetry    = "retry"
)

// Event is one canonical message. The well-known CloudEvents attributes and Causeway's own
// extensions have fields of their own; any other extension attribute is kept, as its string
// form, in Extensions.
type Event struct {
	ID              string
	Source          string
	SpecVersion     string
	Type            string
	Subject         string
	Time            time.Time
	DataContentType string
	DataSchema      string

	// Kind is "original" or "retry".
	Kind string
	// RetryCount is 0 for originals and grows by one with every retry.
	RetryCount int
	// CorrelationID is shared by everything one business transaction causes.
	CorrelationID string
	// CausationID is the id of the message that caused this one.
	CausationID string
	// Target and Operation address a message to one system's operation.
	Target    string
	Operation string
	// TraceParent and TraceState carry W3C trace context.
	TraceParent string
	TraceState  string

	// Extensions holds every other extension attribute by name.
	Extensions map[string]string

	// Data is the event's data as JSON; nil when the event has none.
	Data json.RawMessage
}

// FillDefaults gives an accepted event the attributes the platform guarantees: an id (a
// ULID, so ids sort by time), a time, the spec version, kind "original", and a correlation id
// equal to its own id when the producer did not continue an existing transaction.
func (e *Event) FillDefaults(now time.Time) {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.Time.IsZero() {
		e.Time = now.UTC()
	}
	if e.SpecVersion == "" {
		e.SpecVersion = SpecVersion
	}
	if e.Kind == "" {
		e.Kind = KindOriginal
	}
	if e.CorrelationID == "" {
		e.CorrelationID = e.ID
	}
	if e.DataContentType == "" && e.Data != nil {
		e.DataContentType = "application/json"
	}
}

// NewID returns a new message id: a ULID, unique and sortable by creation time.
func NewID() string { return ulid.Make().String() }
