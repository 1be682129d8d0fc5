package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"
)

// Run is the index entry of one flow run: what the run list and search need. The whole
// record (steps, inputs, outputs) stays in the journal; the index only finds runs.
type Run struct {
	ID               string    `json:"id"`
	Flow             string    `json:"flow"`
	Status           string    `json:"status"`
	Started          time.Time `json:"started"`
	Ended            time.Time `json:"ended,omitzero"`
	Key              string    `json:"key,omitempty"`
	CorrelationID    string    `json:"correlationId,omitempty"`
	TriggerMessageID string    `json:"triggerMessageId,omitempty"`
	TriggerType      string    `json:"triggerType,omitempty"`
	Error            string    `json:"error,omitempty"`
	Node             string    `json:"node,omitempty"`
	// Stream and Sequence locate the journal entry the row was derived from: a row is only
	// replaced by a later entry, so indexing an entry twice changes nothing.
	Stream   string `json:"-"`
	Sequence uint64 `json:"-"`
}

const runsSchema = `
CREATE TABLE IF NOT EXISTS runs (
	id TEXT PRIMARY KEY,
	flow TEXT NOT NULL,
	status TEXT NOT NULL,
	started INTEGER NOT NULL,
	ended INTEGER NOT NULL DEFAULT 0,
	run_key TEXT NOT NULL DEFAULT '',
	correlation_id TEXT NOT NULL DEFAULT '',
	trigger_message_id TEXT NOT NULL DEFAULT '',
	trigger_type TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	node TEXT NOT NULL DEFAULT '',
	seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_flow ON runs(flow, started);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started);
CREATE INDEX IF NOT EXISTS runs_correlation ON runs(correlation_id) WHERE correlation_id != '';
CREATE INDEX IF NOT EXISTS runs_key ON runs(flow, run_key) WHERE run_key != '';
CREATE INDEX IF NOT EXISTS runs_trigger ON runs(trigger_message_id) WHERE trigger_message_id != '';
`

// upsertRuns writes run rows, each replacing an older row of the same run.
func upsertRuns(ctx context.Context, tx *sql.Tx, runs []Run) error {
	if len(runs) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO runs(id,flow,status,started,ended,run_key,correlation_id,trigger_message_id,trigger_type,error,node,seq)
VALUES(?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET flow=excluded.flow, status=excluded.status, started=excluded.started, ended=excluded.ended,
 run_key=excluded.run_key, correlation_id=excluded.correlation_id, trigger_message_id=excluded.trigger_message_id,
 trigger_type=excluded.trigger_type, error=excluded.error, node=excluded.node, seq=excluded.seq
WHERE excluded.seq > runs.seq`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range runs {
		var ended int64
		if !r.Ended.IsZero() {
			ended = r.Ended.UnixNano()
		}
		if _, err := stmt.ExecContext(ctx, r.ID, r.Flow, r.Status, r.Started.UnixNano(), ended, r.Key, r.CorrelationID,
			r.TriggerMessageID, r.TriggerType, r.Error, r.Node, int64(r.Sequence)); err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
	}
	return nil
}

// RunFilter selects runs. Zero fields select everything.
type RunFilter struct {
	Flow, Status, Key, CorrelationID, TriggerMessageID string
	// From and To bound the start time: From <= started < To.
	From, To time.Time
	// Limit bounds the answer (default 100, at most 1000).
	Limit int
}

// Runs returns the runs that match f, the latest started first.
func (s *SQLite) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Flow != "" {
		add("flow = ?", f.Flow)
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Key != "" {
		add("run_key = ?", f.Key)
	}
	if f.CorrelationID != "" {
		add("correlation_id = ?", f.CorrelationID)
	}
	if f.TriggerMessageID != "" {
		add("trigger_message_id = ?", f.TriggerMessageID)
	}
	if !f.From.IsZero() {
		add("started >= ?", nanos(f.From))
	}
	if !f.To.IsZero() {
		add("started < ?", nanos(f.To))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	q := `SELECT id,flow,status,started,ended,run_key,correlation_id,trigger_message_id,trigger_type,error,node FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY started DESC, id LIMIT %d", limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: runs: %w", err)
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		var r Run
		var started, ended int64
		if err := rows.Scan(&r.ID, &r.Flow, &r.Status, &started, &ended, &r.Key, &r.CorrelationID, &r.TriggerMessageID, &r.TriggerType, &r.Error, &r.Node); err != nil {
			return nil, fmt.Errorf("store: runs: %w", err)
		}
		r.Started = time.Unix(0, started).UTC()
		if ended != 0 {
			r.Ended = time.Unix(0, ended).UTC()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// nanos is t in Unix nanoseconds, clamped to what an int64 holds (years 1678 to 2262), so
// that a far-off bound in a query still means "before everything" or "after everything".
func nanos(t time.Time) int64 {
	switch {
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	}
	return t.UnixNano()
}

// Prune removes what the bus no longer holds: index entries of messages accepted, timeline
// events that happened, and runs started before cutoff. The bus keeps messages and run
// records for its retention; without pruning, the index would grow forever. It returns how
// many rows it removed.
func (s *SQLite) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	n := nanos(cutoff)
	var total int64
	for _, q := range []string{
		`DELETE FROM messages WHERE accepted_at < ?`,
		`DELETE FROM events WHERE at < ?`,
		`DELETE FROM runs WHERE started < ?`,
	} {
		res, err := s.db.ExecContext(ctx, q, n)
		if err != nil {
			return total, fmt.Errorf("store: prune: %w", err)
		}
		if k, err := res.RowsAffected(); err == nil {
			total += k
		}
	}
	return total, nil
}
