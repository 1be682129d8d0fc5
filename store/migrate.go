package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// migrate brings a database written by an earlier version to the current layout before
// the schema's statements run. The index could be rebuilt from the streams instead, but
// copying it keeps every lookup answering from the first moment, and takes seconds where
// reading the streams again could take minutes.
//
// It returns how many message rows it copied.
func migrate(db *sql.DB) (int64, error) {
	var ddl string
	err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE type='table' AND name='messages'`).Scan(&ddl)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil // a new database
	case err != nil:
		return 0, fmt.Errorf("read the schema: %w", err)
	case !strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID"):
		return 0, nil // the current layout
	}
	// Until 2026-11-24 the messages table was ordered by id (WITHOUT ROWID). The copy keeps
	// the columns and their order, in the order the rows were accepted; in one transaction,
	// so that a crash leaves the old table as it was.
	tx, err := db.Begin()
	if err != nil {
		return 0, fmt.Errorf("migrate the messages table: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var copied int64
	for _, stmt := range []string{
		`DROP INDEX IF EXISTS messages_accepted`,
		`ALTER TABLE messages RENAME TO messages_by_id`,
		messagesTable,
		`INSERT INTO messages SELECT * FROM messages_by_id ORDER BY accepted_at, stream, seq`,
		`DROP TABLE messages_by_id`,
	} {
		res, err := tx.Exec(stmt)
		if err != nil {
			return 0, fmt.Errorf("migrate the messages table: %w", err)
		}
		if strings.HasPrefix(stmt, "INSERT") {
			copied, _ = res.RowsAffected()
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("migrate the messages table: %w", err)
	}
	return copied, nil
}
