package demo

import (
	"context"
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite" // the ERP's database
)

// ERP is a system reachable only through its database: a SQLite file with orders and
// customers.
type ERP struct {
	db     *sql.DB
	orders int
}

// OpenERP creates (or opens) the ERP's database at path.
func OpenERP(path string) (*ERP, error) {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return nil, err
	}
	for _, stmt := range []string{
		`PRAGMA journal_mode = WAL`,
		`PRAGMA busy_timeout = 5000`,
		`CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, total REAL NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, name TEXT, email TEXT, tier TEXT)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("erp database: %w", err)
		}
	}
	return &ERP{db: db}, nil
}

// Close closes the database.
func (e *ERP) Close() { _ = e.db.Close() }

// EnterOrder enters the n-th order, for one of the CRM's customers.
func (e *ERP) EnterOrder(ctx context.Context, n int) error {
	customer := fmt.Sprintf("C-%03d", n%5+1)
	total := float64(20 + (n*37)%480)
	if _, err := e.db.ExecContext(ctx, `INSERT INTO orders (customer_id, total) VALUES (?, ?)`, customer, total); err != nil {
		return err
	}
	e.orders++
	return nil
}

// Orders is how many orders the demo entered.
func (e *ERP) Orders() int { return e.orders }

// Tiers are the customers' tiers as the ERP's table holds them (written by Causeway).
func (e *ERP) Tiers(ctx context.Context) map[string]string {
	out := map[string]string{}
	rows, err := e.db.QueryContext(ctx, `SELECT id, tier FROM customers`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var id, tier string
		if rows.Scan(&id, &tier) == nil {
			out[id] = tier
		}
	}
	return out
}
