package system

import (
	"fmt"
	"strings"
	"time"

	"github.com/microsoft/go-mssqldb/msdsn"

	"github.com/causeway/causeway/config"
)

// SQL is how the platform reaches a system through its database.
type SQL struct {
	// Driver names the database: postgres, mysql (MySQL and MariaDB) or sqlite.
	Driver string `yaml:"driver" required:"true" enum:"postgres,mysql,sqlserver,sqlite" doc:"The database: postgres (PostgreSQL), mysql (MySQL and MariaDB), sqlserver (SQL Server, Azure SQL) or sqlite."`
	// DSN is the connection string, a secret since it usually holds a password.
	DSN config.Secret `yaml:"dsn" required:"true" doc:"The connection string in the driver's form: postgres://user:pass@host:5432/db, user:pass@tcp(host:3306)/db, sqlserver://user:pass@host:1433?database=db, or a file path for sqlite." example:"${secret:ERP_DSN}"`
	// MaxOpenConns bounds the connections to the database.
	MaxOpenConns int `yaml:"maxOpenConns" default:"10" doc:"The most connections open to the database at once."`
	// MaxIdleConns bounds the idle connections kept.
	MaxIdleConns int `yaml:"maxIdleConns" default:"2" doc:"The most idle connections kept open."`
	// ConnMaxLifetime bounds how long a connection is reused.
	ConnMaxLifetime time.Duration `yaml:"connMaxLifetime" default:"30m" doc:"How long a connection is reused before it is closed and opened anew."`
	// Timeout bounds one operation.
	Timeout time.Duration `yaml:"timeout" default:"30s" doc:"How long one operation may take, unless the operation sets its own."`
}

// SQLOperation is an operation carried out with SQL statements. Parameters are written
// :name and always bound, never spliced into the text.
type SQLOperation struct {
	// Query is a statement whose rows are the result.
	Query string `yaml:"query" doc:"A statement whose rows are the result, as a list of objects (column name to value), or one object with one. Parameters are written :name." example:"SELECT id, status FROM orders WHERE id = :orderId"`
	// One makes a query's result its single row; no row is an error.
	One bool `yaml:"one" doc:"With query: the result is the one row, an object; no row is a permanent error."`
	// Exec is a statement run for its effect.
	Exec string `yaml:"exec" doc:"A statement run for its effect; the result is {rowsAffected}." example:"UPDATE orders SET status = 'shipped' WHERE id = :orderId"`
	// Statements run in one transaction.
	Statements []*SQLStatement `yaml:"statements" doc:"Statements run in order in one transaction: all take effect, or none. The result is the last one's."`
	// Timeout overrides the system's timeout.
	Timeout time.Duration `yaml:"timeout" doc:"How long the operation may take; the system's timeout when not set."`
}

// SQLStatement is one statement of a transaction.
type SQLStatement struct {
	// Query is a statement whose rows are the result.
	Query string `yaml:"query" doc:"A statement whose rows are the result."`
	// Exec is a statement run for its effect.
	Exec string `yaml:"exec" doc:"A statement run for its effect."`
}

// Steps returns the operation's statements in order, each as (text, isQuery).
func (o *SQLOperation) Steps() []SQLStep {
	switch {
	case o.Query != "":
		return []SQLStep{{Text: o.Query, Query: true}}
	case o.Exec != "":
		return []SQLStep{{Text: o.Exec}}
	}
	var out []SQLStep
	for _, s := range o.Statements {
		if s.Query != "" {
			out = append(out, SQLStep{Text: s.Query, Query: true})
		} else {
			out = append(out, SQLStep{Text: s.Exec})
		}
	}
	return out
}

// SQLStep is one statement to run.
type SQLStep struct {
	Text  string
	Query bool
}

// Params returns the names of the :parameters the operation's statements use, in order of
// first use.
func (o *SQLOperation) Params() []string {
	var names []string
	for _, st := range o.Steps() {
		_, ps, _ := BindNamed(st.Text, "?")
		for _, p := range ps {
			if !contains(names, p) {
				names = append(names, p)
			}
		}
	}
	return names
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// PlaceholderStyle is the placeholder style of a driver for BindNamed.
func PlaceholderStyle(driver string) string {
	switch driver {
	case "postgres":
		return "$"
	case "sqlserver":
		return "@"
	}
	return "?"
}

// BindNamed rewrites the :name parameters of a statement into the driver's placeholders
// (style "?" for ?, "$" for $1, $2, …, "@" for SQL Server's @p1, @p2, …) and returns the
// names in placeholder order. Text in single quotes, double quotes, backquotes, comments
// and, for SQL Server, [bracketed] names is left alone, and so are PostgreSQL casts (::int).
func BindNamed(stmt, style string) (string, []string, error) {
	var b strings.Builder
	var names []string
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == '\'' || c == '"' || c == '`' || (c == '[' && style == "@"):
			end := c
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(stmt) && stmt[j] != end {
				j++
			}
			if j >= len(stmt) {
				return "", nil, fmt.Errorf("unterminated %c quote in %q", c, stmt)
			}
			b.WriteString(stmt[i : j+1])
			i = j + 1
		case c == '-' && i+1 < len(stmt) && stmt[i+1] == '-':
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				j = len(stmt) - i
			}
			b.WriteString(stmt[i : i+j])
			i += j
		case c == ':' && i+1 < len(stmt) && stmt[i+1] == ':':
			b.WriteString("::")
			i += 2
		case c == ':' && i+1 < len(stmt) && isNameStart(stmt[i+1]):
			j := i + 1
			for j < len(stmt) && isNameChar(stmt[j]) {
				j++
			}
			names = append(names, stmt[i+1:j])
			switch style {
			case "$":
				fmt.Fprintf(&b, "$%d", len(names))
			case "@":
				fmt.Fprintf(&b, "@p%d", len(names))
			default:
				b.WriteString("?")
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), names, nil
}

func isNameStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isNameChar(c byte) bool { return isNameStart(c) || '0' <= c && c <= '9' }

// validateSQL checks the SQL settings and the SQL operations.
func (s *Spec) validateSQL(ctx *config.Context) {
	if q := s.SQL; q != nil {
		if q.MaxOpenConns < 1 {
			ctx.Errorf("sql.maxOpenConns", "must be at least 1")
		}
		if q.MaxIdleConns < 0 || q.MaxIdleConns > q.MaxOpenConns {
			ctx.Errorf("sql.maxIdleConns", "must be between 0 and maxOpenConns")
		}
		if q.Timeout <= 0 {
			ctx.Errorf("sql.timeout", "must be positive")
		}
		if q.Driver == "sqlserver" && !q.DSN.IsZero() {
			// The driver's own parser, so that validate finds what connecting would. Not
			// its message: it may quote the password.
			if _, err := msdsn.Parse(q.DSN.Reveal()); err != nil {
				ctx.Errorf("sql.dsn", "not a SQL Server connection string: use sqlserver://user:pass@host:1433?database=db")
			}
		}
	}
	for _, name := range sortedOps(s) {
		op := s.Operations[name]
		if op.SQL == nil {
			continue
		}
		field := config.MapPath("operations", name) + ".sql"
		if s.SQL == nil {
			ctx.Errorf(field, "operation %q runs SQL, but the system has no sql settings (spec.sql.driver, spec.sql.dsn)", name)
		}
		q := op.SQL
		n := 0
		for _, set := range []bool{q.Query != "", q.Exec != "", len(q.Statements) > 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			ctx.Errorf(field, "give one of query, exec or statements")
		}
		if q.One && q.Query == "" {
			ctx.Errorf(field+".one", "one applies to query")
		}
		for i, st := range q.Statements {
			if (st.Query == "") == (st.Exec == "") {
				ctx.Errorf(fmt.Sprintf("%s.statements[%d]", field, i), "give query or exec (one of them)")
			}
		}
		style := "?"
		if s.SQL != nil {
			style = PlaceholderStyle(s.SQL.Driver)
		}
		for _, st := range q.Steps() {
			if _, _, err := BindNamed(st.Text, style); err != nil {
				ctx.Errorf(field, "%v", err)
			}
		}
		if q.Timeout < 0 {
			ctx.Errorf(field+".timeout", "must be positive")
		}
	}
}

// HasSQL reports whether the system can be reached through its database.
func (s *Spec) HasSQL() bool { return s.SQL != nil }
