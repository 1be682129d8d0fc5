package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// layoutV1 is the messages table and its index as written until 2026-11-24: ordered by id.
const layoutV1 = `
CREATE TABLE messages (
	id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	source TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	correlation_id TEXT NOT NULL DEFAULT '',
	stream TEXT NOT NULL,
	seq INTEGER NOT NULL,
	accepted_at INTEGER NOT NULL,
	node TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX messages_accepted ON messages(accepted_at);
CREATE TABLE positions (
	stream TEXT PRIMARY KEY,
	epoch TEXT NOT NULL,
	seq INTEGER NOT NULL
) WITHOUT ROWID;
`

// TestIndexOfAnEarlierLayoutIsMigrated opens a database whose messages table is ordered by
// id: its rows are kept, found by id, not indexed twice when read again, and the table is
// in the current layout afterwards (and left alone by the next open).
func TestIndexOfAnEarlierLayoutIsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracking.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(layoutV1); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	const n = 250
	for i := range n {
		id := fmt.Sprintf("%08x-old", (i*7919)%100000) // not in acceptance order
		if _, err := old.Exec(`INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?)`, id, "order.created", "shop", "", id, "MESSAGES", i+1, t0.Add(time.Duration(i)*time.Millisecond).UnixNano(), "n1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Exec(`INSERT INTO positions VALUES ('MESSAGES','e1',?)`, n); err != nil {
		t.Fatal(err)
	}
	old.Close()

	ctx := context.Background()
	want, last := int64(n), n
	for round := range 2 {
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		if c, _ := s.Count(ctx); c != want {
			t.Fatalf("open %d: %d messages, want %d", round, c, want)
		}
		if wantMigrated := []int64{n, 0}[round]; s.Migrated != wantMigrated {
			t.Fatalf("open %d: Migrated %d, want %d", round, s.Migrated, wantMigrated)
		}
		m, _, err := s.Message(ctx, fmt.Sprintf("%08x-old", (17*7919)%100000))
		if err != nil || m.Sequence != 18 || !m.AcceptedAt.Equal(t0.Add(17*time.Millisecond)) || m.CorrelationID != m.ID {
			t.Fatalf("open %d: message 18: %+v, %v", round, m, err)
		}
		if pos, err := s.Position(ctx, "MESSAGES"); err != nil || pos.Seq != uint64(last) {
			t.Fatalf("open %d: position %+v, %v; want %d", round, pos, err, last)
		}
		// Read again from the stream: nothing is indexed twice.
		again := []Message{{ID: m.ID, Type: m.Type, Source: m.Source, CorrelationID: m.ID, Stream: "MESSAGES", Sequence: 18, AcceptedAt: m.AcceptedAt, Node: "n1"},
			{ID: "new-1", Type: "order.created", Source: "shop", Stream: "MESSAGES", Sequence: n + 1, AcceptedAt: t0.Add(time.Second), Node: "n1"}}
		if err := s.Index(ctx, Position{Stream: "MESSAGES", Epoch: "e1", Seq: n + 1}, Batch{Messages: again}); err != nil {
			t.Fatal(err)
		}
		want, last = int64(n+1), n+1
		if c, _ := s.Count(ctx); c != want {
			t.Fatalf("open %d: %d messages after indexing one again and one new, want %d", round, c, want)
		}
		var ddl string
		if err := s.db.QueryRow(`SELECT sql FROM sqlite_master WHERE name='messages'`).Scan(&ddl); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(ddl, "WITHOUT ROWID") {
			t.Fatalf("open %d: messages table still ordered by id: %s", round, ddl)
		}
		if plan := queryPlan(t, s.db, `SELECT * FROM messages WHERE id='x'`); !strings.Contains(plan, "messages_id") {
			t.Fatalf("open %d: a lookup by id does not use messages_id: %s", round, plan)
		}
		s.Close()
	}
}

// queryPlan returns SQLite's plan for query, its steps' details joined.
func queryPlan(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN " + query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	return strings.Join(steps, "; ")
}
