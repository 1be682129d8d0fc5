// Package store is Causeway's tracking read model: an index of every accepted message and
// the timeline of what happened to it, derived from the bus. It is rebuilt from the streams
// if lost, so it is a cache of the bus, never the system of record.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

// EventAccepted is the first entry of every timeline: the message was stored on the bus.
const EventAccepted = "accepted"

// ErrNotFound is returned for an id the index does not know.
var ErrNotFound = errors.New("not found")

// Message is the index entry of one accepted message.
type Message struct {
	ID            string
	Type          string
	Source        string
	Subject       string
	CorrelationID string
	Stream        string
	Sequence      uint64
	AcceptedAt    time.Time
	Node          string
}

// Event is one entry of a message's tracking timeline.
type Event struct {
	MessageID string    `json:"-"`
	Event     string    `json:"event"`
	Time      time.Time `json:"time"`
	Node      string    `json:"node,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	// Stream and Sequence locate the bus entry the event was derived from; together they
	// make indexing idempotent when the indexer sees an entry twice.
	Stream   string `json:"-"`
	Sequence uint64 `json:"-"`
}

// SQLite is the embedded tracking store.
type SQLite struct {
	// Migrated is how many message entries opening the database copied from an earlier
	// layout (ADR 0017); zero when it was in the current one.
	Migrated int64

	db *sql.DB
	// fullMessages and fullEvents insert rowsPerInsert rows at once. Prepared once: parsing
	// a statement with hundreds of parameters costs more than running it.
	fullMessages, fullEvents *sql.Stmt
}

// Columns of the two indexed tables, in insert order.
const (
	messageColumns = "messages(id,type,source,subject,correlation_id,stream,seq,accepted_at,node)"
	eventColumns   = "events(message_id,event,at,node,detail,stream,seq)"
)

// The messages table keeps its rows in the order they are indexed (a rowid table), and
// finds them by id through an index of its own. Message ids are the producers': CloudEvents
// SDKs make random UUIDs, and a table ordered by id takes each of those into a random page
// of the whole table, which SQLite's write-ahead log writes out whole at every commit (a
// page per message once the table is larger than a transaction). Rows appended in order
// fill pages one after another; only the narrow id index still takes random inserts.
const messagesTable = `
CREATE TABLE IF NOT EXISTS messages (
	id TEXT NOT NULL,
	type TEXT NOT NULL,
	source TEXT NOT NULL,
	subject TEXT NOT NULL DEFAULT '',
	correlation_id TEXT NOT NULL DEFAULT '',
	stream TEXT NOT NULL,
	seq INTEGER NOT NULL,
	accepted_at INTEGER NOT NULL,
	node TEXT NOT NULL DEFAULT ''
);
`

const schema = messagesTable + `
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages(id);
CREATE TABLE IF NOT EXISTS events (
	message_id TEXT NOT NULL,
	event TEXT NOT NULL,
	at INTEGER NOT NULL,
	node TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	stream TEXT NOT NULL,
	seq INTEGER NOT NULL,
	PRIMARY KEY (stream, seq, event)
);
CREATE INDEX IF NOT EXISTS events_message ON events(message_id, at);
CREATE INDEX IF NOT EXISTS events_at ON events(at);
CREATE INDEX IF NOT EXISTS messages_accepted ON messages(accepted_at);
CREATE TABLE IF NOT EXISTS positions (
	stream TEXT PRIMARY KEY,
	epoch TEXT NOT NULL,
	seq INTEGER NOT NULL
) WITHOUT ROWID;
`

// OpenSQLite opens (creating if needed) the tracking database at path. WAL mode lets
// readers answer lookups while the indexer writes.
//
// The log is checkpointed into the database every 20,000 pages (about 80 MB) rather than
// SQLite's 1,000: a page changed by many transactions in between is written to the
// database once, and the checkpoint's fsync comes twenty times less often. Each
// connection caches 32 MiB of pages (SQLite's default is 2 MiB), which keeps the id
// index's pages at hand for inserts in random places. With random message ids, indexing
// cost 33 µs a message before the two and 14 µs with them and the table in acceptance order
// (docs/performance.md).
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=wal_autocheckpoint(20000)&_pragma=cache_size(-32768)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	migrated, err := migrate(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if _, err := db.Exec(schema + runsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: create schema in %s: %w", path, err)
	}
	s := &SQLite{db: db, Migrated: migrated}
	if s.fullMessages, err = db.Prepare(messageInsertSQL(rowsPerInsert)); err == nil {
		s.fullEvents, err = db.Prepare(insertSQL(eventColumns, 7, rowsPerInsert))
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: prepare inserts in %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	s.fullMessages.Close()
	s.fullEvents.Close()
	return s.db.Close()
}

// rowsPerInsert is how many rows one INSERT statement carries. A statement per row costs a
// round through database/sql and the SQLite VM each; a hundred rows share one.
const rowsPerInsert = 100

// Position is how far the index has read one stream.
type Position struct {
	Stream string
	// Epoch identifies the incarnation of the stream (its creation time): a stream deleted
	// and created again starts its sequences anew, and a position in the old one means
	// nothing in the new one.
	Epoch string
	// Seq is the last stream sequence indexed.
	Seq uint64
}

// Batch is what the indexer read from one stream: message entries, timeline events and run
// records.
type Batch struct {
	Messages []Message
	Events   []Event
	Runs     []Run
}

// Index records a batch read from one stream, up to and including pos, in one transaction
// together with that position. The index and its position therefore never disagree: after
// any crash the indexer resumes right after the last batch that committed. Entries already
// present are left as they are (a run row only gives way to a later journal entry), so
// reading a stream again is harmless.
func (s *SQLite) Index(ctx context.Context, pos Position, b Batch) error {
	msgs, events := b.Messages, b.Events
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `INSERT INTO positions(stream,epoch,seq) VALUES(?,?,?) ON CONFLICT(stream) DO UPDATE SET epoch=excluded.epoch, seq=excluded.seq`, pos.Stream, pos.Epoch, int64(pos.Seq)); err != nil {
		return fmt.Errorf("store: position of %s: %w", pos.Stream, err)
	}
	args := make([]any, 0, messageShared+rowsPerInsert*messageBound)
	for chunk := range slices.Chunk(msgs, rowsPerInsert) {
		args = appendMessageArgs(args[:0], chunk)
		var err error
		if len(chunk) == rowsPerInsert {
			_, err = tx.StmtContext(ctx, s.fullMessages).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, messageInsertSQL(len(chunk)), args...)
		}
		if err != nil {
			return fmt.Errorf("store: index %d messages from %s: %w", len(chunk), chunk[0].ID, err)
		}
	}
	for chunk := range slices.Chunk(events, rowsPerInsert) {
		args = args[:0]
		for _, e := range chunk {
			args = append(args, e.MessageID, e.Event, e.Time.UnixNano(), e.Node, e.Detail, e.Stream, int64(e.Sequence))
		}
		if _, err := s.insert(ctx, tx, s.fullEvents, eventColumns, 7, len(chunk), args); err != nil {
			return fmt.Errorf("store: index %d events of %s: %w", len(chunk), chunk[0].MessageID, err)
		}
	}
	if err := upsertRuns(ctx, tx, b.Runs); err != nil {
		return fmt.Errorf("store: index runs: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// insert runs a multi-row insert: the prepared statement for a full chunk, a statement of
// its own for the shorter last one.
func (s *SQLite) insert(ctx context.Context, tx *sql.Tx, full *sql.Stmt, table string, cols, rows int, args []any) (sql.Result, error) {
	if rows == rowsPerInsert {
		return tx.StmtContext(ctx, full).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, insertSQL(table, cols, rows), args...)
}

// The message rows of one insert share what is usually the same for all of them: binding a
// text to a statement copies it into memory of SQLite's own (and frees it after), and with
// nine parameters per row binding was over a third of the index's work. A row binds NULL
// for a value that is the chunk's (the first row's type, source, node and stream; an empty
// subject; a correlation id equal to the message id), which the statement fills in with
// coalesce: BenchmarkIndexMessages went from 2.6 to 2.0 µs per message, and from ten
// allocations per message to five.
const (
	// messageShared are the chunk's values, the first parameters: stream, node, type,
	// source.
	messageShared = 4
	// messageBound are each row's parameters: id, type, source, subject, correlation id,
	// stream, sequence, accepted at, node.
	messageBound = 9
)

// messageInsertSQL builds the insert of rows message rows, for appendMessageArgs's
// parameters.
func messageInsertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO ")
	b.WriteString(messageColumns)
	// Parameters are anonymous: the driver looks each numbered one up by its name, in a
	// list as long as the statement's parameters. The shared values come first, as a row
	// of their own; each row's VALUES hold parameters only, which SQLite reads without a
	// query of their own, and the SELECT fills the shared values in.
	b.WriteString(" SELECT v.column1,coalesce(v.column2,s.column3),coalesce(v.column3,s.column4),coalesce(v.column4,''),coalesce(v.column5,v.column1)," +
		"coalesce(v.column6,s.column1),v.column7,v.column8,coalesce(v.column9,s.column2) FROM (VALUES (?,?,?,?)) AS s, (VALUES ")
	row := "(" + strings.Repeat("?,", messageBound-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	b.WriteString(") AS v")
	return b.String()
}

// appendMessageArgs appends the parameters of messageInsertSQL for chunk to args.
func appendMessageArgs(args []any, chunk []Message) []any {
	first := chunk[0]
	args = append(args, first.Stream, first.Node, first.Type, first.Source)
	// or binds NULL for a value that the statement fills in.
	or := func(v, shared string) any {
		if v == shared {
			return nil
		}
		return v
	}
	for _, m := range chunk {
		args = append(args, m.ID, or(m.Type, first.Type), or(m.Source, first.Source), or(m.Subject, ""),
			or(m.CorrelationID, m.ID), or(m.Stream, first.Stream), int64(m.Sequence), m.AcceptedAt.UnixNano(), or(m.Node, first.Node))
	}
	return args
}

// insertSQL builds "INSERT OR IGNORE INTO table(cols) VALUES (?,…),(?,…)…" for rows rows of
// cols columns.
func insertSQL(table string, cols, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO ")
	b.WriteString(table)
	b.WriteString(" VALUES ")
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// Message returns the index entry of a message and its timeline in time order.
func (s *SQLite) Message(ctx context.Context, id string) (*Message, []Event, error) {
	var m Message
	var seq, at int64
	err := s.db.QueryRowContext(ctx, `SELECT id,type,source,subject,correlation_id,stream,seq,accepted_at,node FROM messages WHERE id=?`, id).
		Scan(&m.ID, &m.Type, &m.Source, &m.Subject, &m.CorrelationID, &m.Stream, &seq, &at, &m.Node)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: message %s: %w", id, err)
	}
	m.Sequence, m.AcceptedAt = uint64(seq), time.Unix(0, at).UTC()
	rows, err := s.db.QueryContext(ctx, `SELECT event,at,node,detail,stream,seq FROM events WHERE message_id=? ORDER BY at, seq`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("store: timeline of %s: %w", id, err)
	}
	defer rows.Close()
	// The accepted entry is the message's own index row: storing it again as an event row
	// would double the index's writes for every message.
	events := []Event{{MessageID: id, Event: EventAccepted, Time: m.AcceptedAt, Node: m.Node, Stream: m.Stream, Sequence: m.Sequence}}
	for rows.Next() {
		e := Event{MessageID: id}
		var at, seq int64
		if err := rows.Scan(&e.Event, &at, &e.Node, &e.Detail, &e.Stream, &seq); err != nil {
			return nil, nil, fmt.Errorf("store: timeline of %s: %w", id, err)
		}
		e.Time, e.Sequence = time.Unix(0, at).UTC(), uint64(seq)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: timeline of %s: %w", id, err)
	}
	slices.SortStableFunc(events, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return &m, events, nil
}

// Position returns how far stream has been indexed; the zero Seq when not at all.
func (s *SQLite) Position(ctx context.Context, stream string) (Position, error) {
	pos := Position{Stream: stream}
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT epoch, seq FROM positions WHERE stream=?`, stream).Scan(&pos.Epoch, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return pos, nil
	}
	if err != nil {
		return pos, fmt.Errorf("store: position of %s: %w", stream, err)
	}
	pos.Seq = uint64(seq)
	return pos, nil
}

// Count returns how many messages the index holds.
func (s *SQLite) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&n)
	return n, err
}
