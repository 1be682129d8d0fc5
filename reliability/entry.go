// Package reliability holds what keeps deliveries from being lost when systems fail: the
// errors queue (its entries, the operators' workbench over it: list, show, replay, discard)
// and the audit trail of operator actions.
package reliability

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
)

// Origins of errors queue entries.
const (
	// OriginFlow is a flow run's delivery that failed for good.
	OriginFlow = "flow"
	// OriginSource is a system's event that a source could not turn into a message.
	OriginSource = "source"
)

// Error classes.
const (
	// ClassTransient is a failure that might have passed: the entry ran out of retries.
	ClassTransient = "transient"
	// ClassPermanent is a failure that trying again cannot fix.
	ClassPermanent = "permanent"
)

// Entry is an entry of the errors queue: enough to see why a delivery failed, to group it
// with its like (the fingerprint), and to replay it.
type Entry struct {
	// Seq is the entry's place in the ERRORS stream: its handle in the API and the CLI.
	// It is not stored in the entry but read with it.
	Seq uint64 `json:"seq,omitempty"`
	// ID identifies the entry for good (a ULID).
	ID     string `json:"id"`
	Origin string `json:"origin,omitempty"`
	Flow   string `json:"flow,omitempty"`
	// Source names the source of a source entry.
	Source    string `json:"source,omitempty"`
	RunID     string `json:"runId,omitempty"`
	Step      string `json:"step,omitempty"`
	System    string `json:"system,omitempty"`
	Operation string `json:"operation,omitempty"`
	// Type and MessageID are the failed message's.
	Type      string `json:"type,omitempty"`
	MessageID string `json:"messageId,omitempty"`
	Reason    string `json:"reason"`
	Class     string `json:"class,omitempty"`
	// Fingerprint groups entries that failed the same way: the same flow, step, system,
	// operation, class and reason, numbers in the reason aside.
	Fingerprint string    `json:"fingerprint,omitempty"`
	RetryCount  int       `json:"retrycount"`
	Time        time.Time `json:"time"`
	// Message is the failed message (the last delivery: a retry message when there were
	// retries), as structured CloudEvents JSON. When it did not fit in the entry, it is
	// left out and MessageStream and MessageSeq say where it is on the bus.
	Message       json.RawMessage `json:"message,omitempty"`
	MessageStream string          `json:"messageStream,omitempty"`
	MessageSeq    uint64          `json:"messageSeq,omitempty"`
	// Failures are the delivery's failed attempts, oldest first: the original and each
	// retry.
	Failures []Failure `json:"failures,omitempty"`
	// Steps are the run's steps as they ended (the run history), when they fit.
	Steps json.RawMessage `json:"steps,omitempty"`
	// The raw event of a source entry: its delivery id, headers (without credentials) and
	// body, as text when it is UTF-8 and base64 otherwise.
	DeliveryID string            `json:"deliveryId,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
	BodyBase64 []byte            `json:"bodyBase64,omitempty"`
}

// Failure is one failed delivery of a run.
type Failure struct {
	// RetryCount is the delivery's: 0 for the original, n for the nth retry.
	RetryCount int       `json:"retrycount"`
	Time       time.Time `json:"time"`
	Step       string    `json:"step,omitempty"`
	System     string    `json:"system,omitempty"`
	Operation  string    `json:"operation,omitempty"`
	Error      string    `json:"error"`
	Transient  bool      `json:"transient"`
	// NextRetry is when the delivery is tried again; zero when it is not.
	NextRetry time.Time `json:"nextRetry,omitzero"`
}

// digits are replaced in fingerprints, so that one failure with different numbers in it
// (an order number, a port, a line) groups together.
var digits = regexp.MustCompile(`[0-9]+`)

// SetFingerprint computes e.Fingerprint from what identifies the failure.
func (e *Entry) SetFingerprint() {
	sum := sha256.Sum256([]byte(e.Origin + "\x00" + e.Flow + "\x00" + e.Source + "\x00" + e.Step + "\x00" + e.System + "\x00" +
		e.Operation + "\x00" + e.Class + "\x00" + digits.ReplaceAllString(e.Reason, "#")))
	e.Fingerprint = hex.EncodeToString(sum[:8])
}

// Subject is the subject of the entry in the ERRORS stream.
func (e *Entry) Subject() string {
	if e.Origin == OriginSource {
		return bus.SubjectErrors + "source." + e.Source
	}
	return bus.SubjectErrors + "flow." + e.Flow
}

// Put stores an entry in the errors queue. dedupID, when not empty, makes the bus keep one
// entry for one failure however often it is put (within its de-duplication window). An
// entry larger than the bus carries loses its steps, then all failures but the last, then
// its message (which stays findable on the bus by MessageStream and MessageSeq).
func Put(ctx context.Context, b *bus.Bus, e *Entry, dedupID string) error {
	if e.Fingerprint == "" {
		e.SetFingerprint()
	}
	limit := int(b.MaxMessageBytes())
	data, err := json.Marshal(e)
	for shrink := 0; err == nil && len(data) > limit && shrink < 3; shrink++ {
		switch {
		case len(e.Steps) > 0:
			e.Steps = nil
		case len(e.Failures) > 1:
			e.Failures = e.Failures[len(e.Failures)-1:]
		case e.MessageSeq > 0:
			e.Message = nil
		}
		data, err = json.Marshal(e)
	}
	if err != nil {
		return err
	}
	if len(data) > limit {
		return fmt.Errorf("errors queue entry of %d bytes: larger than the bus carries (%d)", len(data), limit)
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(bus.StreamErrors)}
	if dedupID != "" {
		opts = append(opts, jetstream.WithMsgID(dedupID))
	}
	_, err = b.JetStream().Publish(ctx, e.Subject(), data, opts...)
	return err
}
