// Package sqlconn is the SQL connector: it carries out a System's SQL operations on its
// database (PostgreSQL, MySQL/MariaDB, SQLite) through database/sql. Parameters are written
// :name in the statements and always bound, never spliced into the text. Failures are
// sorted into transient ones (the connection, timeouts, deadlocks, serialization failures)
// and permanent ones (constraint violations, syntax, a missing parameter, no row for a
// one-row query).
package sqlconn

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	mssql "github.com/microsoft/go-mssqldb"
	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/telemetry"
)

// ErrNoRow is the failure of a one-row query that found none: what a gateway answers 404.
var ErrNoRow = errors.New("the query found no row")

// Error is a failed operation.
type Error struct {
	// System and Operation name what was called.
	System, Operation string
	// Transient reports that trying again later may succeed.
	Transient bool
	// Err is the cause.
	Err error
}

// Error says which operation failed, how, and whether it is worth retrying.
func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	return fmt.Sprintf("call %s.%s: %v (%s)", e.System, e.Operation, e.Err, kind)
}

// Unwrap gives the cause.
func (e *Error) Unwrap() error { return e.Err }

// Client carries out SQL operations, keeping one connection pool per system.
type Client struct {
	mu      sync.Mutex
	pools   map[string]*sql.DB
	metrics *telemetry.CallMetrics
}

// New returns a client; its metrics are registered with reg when reg is not nil (sharing
// the families the HTTP connector registers).
func New(reg prometheus.Registerer) *Client {
	return &Client{pools: map[string]*sql.DB{}, metrics: telemetry.NewCallMetrics(reg)}
}

// Close closes every pool.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, db := range c.pools {
		_ = db.Close()
		delete(c.pools, name)
	}
}

// driverName maps a System's driver to the database/sql driver.
func driverName(d string) string {
	switch d {
	case "postgres":
		return "pgx"
	case "mysql":
		return "mysql"
	}
	return d
}

// pool returns the system's connection pool, opening it on first use.
func (c *Client) pool(name string, cfg *system.SQL) (*sql.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if db, ok := c.pools[name]; ok {
		return db, nil
	}
	db, err := sql.Open(driverName(cfg.Driver), cfg.DSN.Reveal())
	if err != nil {
		// The DSN is a secret and may appear in a driver's error: say what failed only.
		return nil, fmt.Errorf("open %s database: the connection string was refused by the driver", cfg.Driver)
	}
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxIdleConns)
	db.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	c.pools[name] = db
	return db, nil
}

// Do runs the operation op of the system named sysName with params, and returns its result:
// the rows of a query (a list of objects, or one object), or {rowsAffected} of an exec.
func (c *Client) Do(ctx context.Context, sysName string, sys *system.Spec, opName string, params map[string]any) (any, error) {
	start := time.Now()
	res, err := c.do(ctx, sysName, sys, opName, params)
	outcome := "ok"
	var ce *Error
	if errors.As(err, &ce) {
		outcome = "permanent"
		if ce.Transient {
			outcome = "transient"
		}
	}
	c.metrics.Observe("sql", sysName, opName, outcome, time.Since(start))
	return res, err
}

func (c *Client) do(ctx context.Context, sysName string, sys *system.Spec, opName string, params map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.SQL == nil || sys.SQL == nil {
		return nil, fail(false, errors.New("no such SQL operation"))
	}
	db, err := c.pool(sysName, sys.SQL)
	if err != nil {
		return nil, fail(false, err)
	}
	timeout := sys.SQL.Timeout
	if op.SQL.Timeout > 0 {
		timeout = op.SQL.Timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	style := system.PlaceholderStyle(sys.SQL.Driver)
	steps := op.SQL.Steps()
	type bound struct {
		text  string
		args  []any
		query bool
	}
	var stmts []bound
	for _, st := range steps {
		text, names, err := system.BindNamed(st.Text, style)
		if err != nil {
			return nil, fail(false, err)
		}
		args := make([]any, len(names))
		for i, n := range names {
			v, ok := params[n]
			if !ok {
				return nil, fail(false, fmt.Errorf("the statement needs the parameter %s", n))
			}
			if args[i], err = sqlValue(v); err != nil {
				return nil, fail(false, fmt.Errorf("parameter %s: %w", n, err))
			}
		}
		stmts = append(stmts, bound{text, args, st.Query})
	}
	run := func(q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}) (any, error) {
		var last any
		for _, st := range stmts {
			if st.query {
				rows, err := q.QueryContext(ctx, st.text, st.args...)
				if err != nil {
					return nil, err
				}
				list, err := readRows(rows)
				if err != nil {
					return nil, err
				}
				last = list
				continue
			}
			res, err := q.ExecContext(ctx, st.text, st.args...)
			if err != nil {
				return nil, err
			}
			n, _ := res.RowsAffected()
			last = map[string]any{"rowsAffected": n}
		}
		return last, nil
	}
	var out any
	if len(stmts) == 1 {
		out, err = run(db)
	} else {
		tx, terr := db.BeginTx(ctx, nil)
		if terr != nil {
			return nil, fail(transient(ctx, terr), terr)
		}
		out, err = run(tx)
		if err != nil {
			_ = tx.Rollback()
		} else if err = tx.Commit(); err != nil {
			return nil, fail(transient(ctx, err), fmt.Errorf("commit: %w", err))
		}
	}
	if err != nil {
		return nil, fail(transient(ctx, err), err)
	}
	if op.SQL.One {
		list, _ := out.([]any)
		if len(list) == 0 {
			return nil, fail(false, ErrNoRow)
		}
		return list[0], nil
	}
	return out, nil
}

// sqlValue turns a parameter from an expression into a value the drivers bind.
func sqlValue(v any) (any, error) {
	switch v := v.(type) {
	case nil, string, bool, int, int64, float64:
		return v, nil
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, err
		}
		return f, nil
	case map[string]any, []any:
		data, err := json.Marshal(v)
		return string(data), err
	}
	return fmt.Sprint(v), nil
}

// readRows reads every row as an object of column name to value.
func readRows(rows *sql.Rows) ([]any, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := []any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			row[c] = jsonValue(vals[i])
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// jsonValue turns a scanned value into one expressions and JSON understand.
func jsonValue(v any) any {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case int64:
		return json.Number(strconv.FormatInt(v, 10))
	case int32:
		return json.Number(strconv.FormatInt(int64(v), 10))
	case float64:
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64))
	case float32:
		return json.Number(strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	return v
}

// transient reports whether a database error may go away: the connection, a timeout, a
// deadlock or serialization failure, the server shutting down or out of resources.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) >= 2 {
		switch pe.Code[:2] {
		case "08", "40", "53", "57", "58":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var se mssql.Error
	if errors.As(err, &se) {
		return mssqlTransient(se.Number)
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, 1205, 1213, 2002, 2003, 2006, 2013:
			return true
		}
		return false
	}
	if errors.Is(err, mysql.ErrInvalidConn) {
		return true
	}
	return false
}

// mssqlTransient sorts SQL Server error numbers: deadlock victim (1205), lock timeout
// (1222), the database or server not available yet or any more (4060, 233, 10053, 10054,
// 10060, 40613), and Azure SQL throttling (40197, 40501, 49918-49920) may pass; anything
// else (constraints, syntax, permissions) will not.
func mssqlTransient(n int32) bool {
	switch n {
	case 1205, 1222, 4060, 233, 10053, 10054, 10060, 40197, 40501, 40613, 49918, 49919, 49920:
		return true
	}
	return false
}

// Check tries a system's database connection: it opens the pool if needed and pings.
func (c *Client) Check(ctx context.Context, name string, sys *system.Spec) (string, error) {
	if sys.SQL == nil {
		return "", errors.New("the system has no sql settings")
	}
	db, err := c.pool(name, sys.SQL)
	if err != nil {
		return "", err
	}
	if err := db.PingContext(ctx); err != nil {
		return "", fmt.Errorf("%s database: %w", sys.SQL.Driver, err)
	}
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return "", fmt.Errorf("%s database: SELECT 1: %w", sys.SQL.Driver, err)
	}
	return sys.SQL.Driver + " database answered SELECT 1", nil
}

// Query runs one query with :name parameters on a system's database and returns its rows,
// for sources that read a system's tables. Failures are classified as for operations.
func (c *Client) Query(ctx context.Context, sysName string, sys *system.Spec, text string, params map[string]any) ([]any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: "query", Transient: transient, Err: err}
	}
	if sys.SQL == nil {
		return nil, fail(false, errors.New("the system has no sql settings"))
	}
	db, err := c.pool(sysName, sys.SQL)
	if err != nil {
		return nil, fail(false, err)
	}
	style := system.PlaceholderStyle(sys.SQL.Driver)
	bound, names, err := system.BindNamed(text, style)
	if err != nil {
		return nil, fail(false, err)
	}
	args := make([]any, len(names))
	for i, n := range names {
		v, ok := params[n]
		if !ok {
			return nil, fail(false, fmt.Errorf("the query needs the parameter %s", n))
		}
		if args[i], err = sqlValue(v); err != nil {
			return nil, fail(false, err)
		}
	}
	if sys.SQL.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sys.SQL.Timeout)
		defer cancel()
	}
	rows, err := db.QueryContext(ctx, bound, args...)
	if err != nil {
		return nil, fail(transient(ctx, err), err)
	}
	list, err := readRows(rows)
	if err != nil {
		return nil, fail(transient(ctx, err), err)
	}
	return list, nil
}

// ExecEach runs one statement once per parameter set, all in one transaction: every
// execution takes effect, or none.
func (c *Client) ExecEach(ctx context.Context, sysName string, sys *system.Spec, text string, params []map[string]any) error {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: "exec", Transient: transient, Err: err}
	}
	if sys.SQL == nil {
		return fail(false, errors.New("the system has no sql settings"))
	}
	db, err := c.pool(sysName, sys.SQL)
	if err != nil {
		return fail(false, err)
	}
	style := system.PlaceholderStyle(sys.SQL.Driver)
	bound, names, err := system.BindNamed(text, style)
	if err != nil {
		return fail(false, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fail(transient(ctx, err), err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, p := range params {
		args := make([]any, len(names))
		for i, n := range names {
			v, ok := p[n]
			if !ok {
				return fail(false, fmt.Errorf("the statement needs the parameter %s", n))
			}
			if args[i], err = sqlValue(v); err != nil {
				return fail(false, err)
			}
		}
		if _, err := tx.ExecContext(ctx, bound, args...); err != nil {
			return fail(transient(ctx, err), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(transient(ctx, err), err)
	}
	return nil
}
