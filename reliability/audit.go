package reliability

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/message"
)

// Record is one operator action in the audit trail: who did what to what, when and why.
type Record struct {
	ID     string            `json:"id"`
	Time   time.Time         `json:"time"`
	Actor  string            `json:"actor"`
	Action string            `json:"action"`
	Target string            `json:"target"`
	Reason string            `json:"reason,omitempty"`
	Node   string            `json:"node,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`
}

// Audit is the audit trail: the AUDIT stream.
type Audit struct{ bus *bus.Bus }

// NewAudit returns the audit trail of a bus.
func NewAudit(b *bus.Bus) *Audit { return &Audit{bus: b} }

// Record stores a record, stamped with an id, the time and the node.
func (a *Audit) Record(ctx context.Context, r Record, node string) error {
	if r.ID == "" {
		r.ID = message.NewID()
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	if r.Actor == "" {
		r.Actor = "unknown"
	}
	r.Node = node
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = a.bus.JetStream().Publish(ctx, bus.SubjectAudit+r.Action, data,
		jetstream.WithExpectStream(bus.StreamAudit), jetstream.WithMsgID("audit:"+r.ID))
	return err
}

// Recent returns up to limit records, newest first, whose action starts with prefix.
func (a *Audit) Recent(ctx context.Context, prefix string, limit int) ([]Record, error) {
	s, err := a.bus.Stream(ctx, bus.StreamAudit)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := []Record{}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < limit; seq-- {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // removed, or past retention
		}
		var r Record
		if json.Unmarshal(raw.Data, &r) == nil && (prefix == "" || len(r.Action) >= len(prefix) && r.Action[:len(prefix)] == prefix) {
			out = append(out, r)
		}
	}
	return out, nil
}
