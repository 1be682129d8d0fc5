package sqlconn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/system"
)

// erp describes a system whose operations work on the table tbl.
func erp(driver, dsn, tbl string) *system.Spec {
	op := func(q system.SQLOperation) *system.Operation { return &system.Operation{SQL: &q} }
	return &system.Spec{
		SQL: &system.SQL{Driver: driver, DSN: config.NewSecret(dsn), MaxOpenConns: 4, MaxIdleConns: 2, ConnMaxLifetime: time.Minute, Timeout: 5 * time.Second},
		Operations: map[string]*system.Operation{
			"create": op(system.SQLOperation{Exec: "CREATE TABLE " + tbl + " (id VARCHAR(40) PRIMARY KEY, status VARCHAR(20) NOT NULL, qty INTEGER)"}),
			"insert": op(system.SQLOperation{Exec: "INSERT INTO " + tbl + " (id, status, qty) VALUES (:id, :status, :qty)"}),
			"get":    op(system.SQLOperation{Query: "SELECT id, status, qty FROM " + tbl + " WHERE id = :id", One: true}),
			"list":   op(system.SQLOperation{Query: "SELECT id, status FROM " + tbl + " WHERE status = :status AND id <> ':not-a-param' ORDER BY id"}),
			"shipBoth": op(system.SQLOperation{Statements: []*system.SQLStatement{
				{Exec: "UPDATE " + tbl + " SET status = 'shipped' WHERE id = :a"},
				{Exec: "INSERT INTO " + tbl + " (id, status, qty) VALUES (:b, 'shipped', 1)"},
			}}),
			"drop": op(system.SQLOperation{Exec: "DROP TABLE " + tbl}),
		},
	}
}

// conformance runs one database through the connector's contract.
func conformance(t *testing.T, driver, dsn string) {
	t.Helper()
	ctx := context.Background()
	c := New(nil)
	defer c.Close()
	tbl := fmt.Sprintf("cw_orders_%d", time.Now().UnixNano()%1_000_000_000)
	sys := erp(driver, dsn, tbl)
	do := func(op string, params map[string]any) (any, error) { return c.Do(ctx, "erp", sys, op, params) }
	if _, err := do("create", nil); err != nil {
		t.Fatal(err)
	}
	defer do("drop", nil) //nolint:errcheck // best effort
	res, err := do("insert", map[string]any{"id": "A-1", "status": "paid", "qty": json.Number("3")})
	if err != nil || res.(map[string]any)["rowsAffected"] != int64(1) {
		t.Fatalf("insert: %v %v", res, err)
	}
	if _, err := do("insert", map[string]any{"id": "A-2", "status": "paid", "qty": 1}); err != nil {
		t.Fatal(err)
	}
	got, err := do("get", map[string]any{"id": "A-1"})
	row, _ := got.(map[string]any)
	if err != nil || row["id"] != "A-1" || row["status"] != "paid" || fmt.Sprint(row["qty"]) != "3" {
		t.Fatalf("get: %#v %v", got, err)
	}
	list, err := do("list", map[string]any{"status": "paid"})
	if rows, _ := list.([]any); err != nil || len(rows) != 2 || rows[1].(map[string]any)["id"] != "A-2" {
		t.Fatalf("list: %#v %v", list, err)
	}

	// A transaction takes effect whole, or not at all.
	if _, err := do("shipBoth", map[string]any{"a": "A-1", "b": "A-3"}); err != nil {
		t.Fatalf("transaction: %v", err)
	}
	_, err = do("shipBoth", map[string]any{"a": "A-2", "b": "A-1"}) // A-1 exists: the insert fails
	var ce *Error
	if !errors.As(err, &ce) || ce.Transient {
		t.Fatalf("duplicate key: %v, want a permanent error", err)
	}
	if got, _ := do("get", map[string]any{"id": "A-2"}); got.(map[string]any)["status"] != "paid" {
		t.Errorf("the failed transaction's update took effect: %v", got)
	}

	// Permanent failures: no row for a one-row query, a missing parameter.
	if _, err := do("get", map[string]any{"id": "nope"}); !errors.As(err, &ce) || ce.Transient || !strings.Contains(err.Error(), "no row") {
		t.Errorf("no row: %v", err)
	}
	if _, err := do("get", nil); !errors.As(err, &ce) || ce.Transient || !strings.Contains(err.Error(), "needs the parameter id") {
		t.Errorf("missing parameter: %v", err)
	}
}

func TestSQLite(t *testing.T) {
	conformance(t, "sqlite", filepath.Join(t.TempDir(), "erp.db"))
}

func TestPostgres(t *testing.T) {
	testutil.RequireService(t, "PostgreSQL", "127.0.0.1:5432")
	conformance(t, "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

func TestMariaDB(t *testing.T) {
	testutil.RequireService(t, "MariaDB", "127.0.0.1:3306")
	conformance(t, "mysql", "root@tcp(127.0.0.1:3306)/test")
}

// TestUnreachableDatabaseIsTransient points at a port where nothing listens, and checks
// that the DSN's password does not show in the error.
func TestUnreachableDatabaseIsTransient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for driver, dsn := range map[string]string{
		"postgres":  "postgres://u:hunter2@" + addr + "/db?sslmode=disable&connect_timeout=2",
		"mysql":     "u:hunter2@tcp(" + addr + ")/db?timeout=2s",
		"sqlserver": "sqlserver://u:hunter2@" + addr + "?database=db&dial+timeout=2&connection+timeout=3",
	} {
		_, err := New(nil).Do(context.Background(), "erp", erp(driver, dsn, "t"), "get", map[string]any{"id": "x"})
		var ce *Error
		if !errors.As(err, &ce) || !ce.Transient {
			t.Errorf("%s: %v, want a transient error", driver, err)
		}
		if strings.Contains(fmt.Sprint(err), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", driver, err)
		}
	}
}

func TestBindNamed(t *testing.T) {
	for _, tc := range []struct{ in, style, out, names string }{
		{"SELECT * FROM t WHERE a = :a AND b = :b_2", "$", "SELECT * FROM t WHERE a = $1 AND b = $2", "a,b_2"},
		{"SELECT ':x', \":y\", c::int FROM t WHERE d = :d -- :e\n", "?", "SELECT ':x', \":y\", c::int FROM t WHERE d = ? -- :e\n", "d"},
		{"UPDATE t SET a = :a WHERE a = :a", "?", "UPDATE t SET a = ? WHERE a = ?", "a,a"},
	} {
		out, names, err := system.BindNamed(tc.in, tc.style)
		if err != nil || out != tc.out || strings.Join(names, ",") != tc.names {
			t.Errorf("%q: %q %v %v", tc.in, out, names, err)
		}
	}
	if _, _, err := system.BindNamed("SELECT 'open", "?"); err == nil {
		t.Error("an unterminated quote was accepted")
	}
	// SQL Server: @p1, @p2 …, and [bracketed names] left alone.
	out, names, err := system.BindNamed("SELECT TOP (:limit) [a:b], id FROM [dbo].[orders] WHERE id > :cursor ORDER BY id", "@")
	if err != nil || out != "SELECT TOP (@p1) [a:b], id FROM [dbo].[orders] WHERE id > @p2 ORDER BY id" || strings.Join(names, ",") != "limit,cursor" {
		t.Errorf("sqlserver: %q %v %v", out, names, err)
	}
	if _, _, err := system.BindNamed("SELECT [open", "@"); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}

// TestSQLServerErrorsAreSorted sorts SQL Server's error numbers (no SQL Server runs here:
// the driver's error values are made as it makes them).
func TestSQLServerErrorsAreSorted(t *testing.T) {
	for n, want := range map[int32]bool{1205: true, 40501: true, 4060: true, 2627: false, 547: false, 102: false, 208: false} {
		if got := transient(context.Background(), fmt.Errorf("exec: %w", mssql.Error{Number: n, Message: "x"})); got != want {
			t.Errorf("error %d: transient %v, want %v", n, got, want)
		}
	}
}
