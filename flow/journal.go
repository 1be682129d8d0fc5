package flow

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
)

// The journal.
//
// Every run has a record in the JetStream key-value bucket JournalBucket, written when a step
// starts (with its attempt number) and when it ends (with its output or error), before the
// next step begins. A run that a crash interrupted is picked up again when its trigger
// message is delivered again: steps the record shows as done are not run again (their
// outputs come from the record), and the step that was in progress runs again with the same
// idempotency key. The record is also the run's history: GET /v1/runs/{id} reads it.

// JournalBucket is the key-value bucket of run records, created by the bus.
const JournalBucket = bus.BucketRuns

// Run statuses.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusWaiting   = "waiting"
	// StatusRetrying is a run whose call failed transiently and that a retry message (or
	// a delayed redelivery) will continue from the failed step.
	StatusRetrying = "retrying"
	// StatusParked is a run held while a system it calls is offline or in maintenance:
	// released when the system is back, it continues from the step it parked at.
	StatusParked = "parked"
)

// Step statuses.
const (
	StepRunning   = "running"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
	// StepRetrying is a failed step that the run's next retry runs again.
	StepRetrying = "retrying"
	// StepParked is a call step whose system was not available: it runs when the run's
	// delivery is released.
	StepParked = "parked"
)

// Run is the record of one run.
type Run struct {
	ID            string     `json:"id"`
	Flow          string     `json:"flow"`
	Status        string     `json:"status"`
	Trigger       RunTrigger `json:"trigger"`
	Key           string     `json:"key,omitempty"`
	CorrelationID string     `json:"correlationId,omitempty"`
	Started       time.Time  `json:"started"`
	Ended         time.Time  `json:"ended,omitzero"`
	Error         string     `json:"error,omitempty"`
	// ResubmitOf names the run this one was resubmitted from.
	ResubmitOf string `json:"resubmitOf,omitempty"`
	// Attempt counts the deliveries of the trigger that worked on the run.
	Attempt int `json:"attempt"`
	// Steps are in the order they started; Key is the step's id, with the iteration for
	// steps inside a foreach ("each[2].check").
	Steps []*StepRecord `json:"steps"`
	// Vars are the run's variables as the last step left them.
	Vars map[string]any `json:"vars,omitempty"`
	// Node is the node that last worked on the run.
	Node string `json:"node,omitempty"`
	// Retries counts the retries scheduled for the run; NextRetry is when the last is due.
	Retries   int       `json:"retries,omitempty"`
	NextRetry time.Time `json:"nextRetry,omitzero"`
	// Parks counts the times the run was parked; ParkedOn is the system it waited for last.
	Parks    int    `json:"parks,omitempty"`
	ParkedOn string `json:"parkedOn,omitempty"`
	// Failures are the run's failed deliveries, oldest first.
	Failures []Failure `json:"failures,omitempty"`

	byKey map[string]int // index into Steps by key
	rev   uint64         // the key-value revision last written
}

// RunTrigger says what started a run.
type RunTrigger struct {
	Kind      string `json:"kind"`
	MessageID string `json:"messageId,omitempty"`
	Type      string `json:"type,omitempty"`
	Source    string `json:"source,omitempty"`
	// Stream and Seq locate the trigger on the bus, for resubmitting it.
	Stream string `json:"stream,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
}

// StepRecord is one step's part of a run record.
type StepRecord struct {
	Key      string    `json:"key"`
	ID       string    `json:"id"`
	Action   string    `json:"action"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	Input    any       `json:"input,omitempty"`
	Output   any       `json:"output,omitempty"`
	Error    string    `json:"error,omitempty"`
	// DurationMS is how long the step took, its attempts and waits included.
	DurationMS int64 `json:"durationMs,omitempty"`
}

// RunID is the id of the run a flow makes for a trigger message: derived from both, so
// that the same message delivered again finds the same run.
func RunID(flow, messageID string) string {
	sum := sha256.Sum256([]byte(flow + "\x00" + messageID))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// journal reads and writes run records.
type journal struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
}

// openJournal binds the bucket, which the bus creates with the streams.
func openJournal(ctx context.Context, js jetstream.JetStream) (*journal, error) {
	kv, err := js.KeyValue(ctx, JournalBucket)
	if err != nil {
		return nil, fmt.Errorf("flow: journal bucket %s: %w", JournalBucket, err)
	}
	return &journal{kv: kv, js: js}, nil
}

// load returns the record of a run, or nil when there is none.
func (j *journal) load(ctx context.Context, id string) (*Run, error) {
	e, err := j.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("flow: journal: read run %s: %w", id, err)
	}
	r := &Run{}
	if err := json.Unmarshal(e.Value(), r); err != nil {
		return nil, fmt.Errorf("flow: journal: run %s: %w", id, err)
	}
	r.rev = e.Revision()
	r.index()
	return r, nil
}

// maxRecordBytes bounds a run record, well under the bus's largest message: a run with
// thousands of steps (a long foreach) must still be journaled.
const maxRecordBytes = 512 << 10

// save writes the record.
func (j *journal) save(ctx context.Context, r *Run) error {
	data, err := encodeRecord(r)
	if err != nil {
		return fmt.Errorf("flow: journal: encode run %s: %w", r.ID, err)
	}
	rev, err := j.kv.Put(ctx, r.ID, data)
	if err != nil {
		return fmt.Errorf("flow: journal: write run %s: %w", r.ID, err)
	}
	r.rev = rev
	return nil
}

// note writes the record without waiting for the bus: for progress that only the run
// history shows (a step has started), not for outcomes a resumed run relies on. Writes on
// one connection arrive in order, so a later save is never overtaken by an earlier note.
func (j *journal) note(r *Run) {
	data, err := encodeRecord(r)
	if err != nil {
		return
	}
	_, _ = j.js.PublishAsync("$KV."+JournalBucket+"."+r.ID, data)
}

// index rebuilds the lookup of steps by key.
func (r *Run) index() {
	r.byKey = make(map[string]int, len(r.Steps))
	for i, s := range r.Steps {
		r.byKey[s.Key] = i
	}
}

// step returns the record of a step, or nil.
func (r *Run) step(key string) *StepRecord {
	if i, ok := r.byKey[key]; ok {
		return r.Steps[i]
	}
	return nil
}

// addStep appends a new step record.
func (r *Run) addStep(s *StepRecord) {
	if r.byKey == nil {
		r.index()
	}
	r.byKey[s.Key] = len(r.Steps)
	r.Steps = append(r.Steps, s)
}

// encodeRecord encodes a run record, keeping it under maxRecordBytes: first the steps'
// inputs and outputs give way to markers (the outcomes and errors stay, which is what a
// resumed run needs), and if that is not enough, the record keeps the latest steps and says
// how many earlier ones it left out. A resumed run then repeats a left-out step with the
// same idempotency key.
func encodeRecord(r *Run) ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil || len(data) <= maxRecordBytes {
		return data, err
	}
	c := *r
	c.Steps = make([]*StepRecord, len(r.Steps))
	for i, s := range r.Steps {
		cs := *s
		if cs.Input != nil {
			cs.Input = map[string]any{"truncated": true}
		}
		if cs.Output != nil && cs.Action != ActionDelay {
			cs.Output = map[string]any{"truncated": true}
		}
		c.Steps[i] = &cs
	}
	if data, err = json.Marshal(&c); err != nil || len(data) <= maxRecordBytes {
		return data, err
	}
	for len(data) > maxRecordBytes && len(c.Steps) > 1 {
		drop := len(c.Steps) / 2
		c.Error = fmt.Sprintf("%s (run record: %d earlier steps left out to stay under %d bytes)", r.Error, drop, maxRecordBytes)
		c.Steps = c.Steps[drop:]
		if data, err = json.Marshal(&c); err != nil {
			return nil, err
		}
	}
	return data, nil
}
