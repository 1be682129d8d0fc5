package platform

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver

	"github.com/causeway/causeway/internal/testutil"
)

// TestOutboxSource reads an outbox table in PostgreSQL: every row becomes a message, and
// the rows are deleted once their messages are stored.
func TestOutboxSource(t *testing.T) {
	testutil.RequireService(t, "PostgreSQL", "127.0.0.1:5432")
	const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tbl := fmt.Sprintf("cw_outbox_%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := db.Exec("CREATE TABLE " + tbl + " (id BIGSERIAL PRIMARY KEY, order_id TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	defer db.Exec("DROP TABLE " + tbl) //nolint:errcheck // best effort
	for i := range 5 {
		if _, err := db.Exec("INSERT INTO "+tbl+" (order_id) VALUES ($1)", fmt.Sprint("OB-", i)); err != nil {
			t.Fatal(err)
		}
	}
	p := runPlatform(t, func(o *Options) {
		err := os.WriteFile(filepath.Join(o.ConfigDir, "outbox.yaml"), []byte(`apiVersion: causeway/v1
kind: System
metadata: {name: erp}
spec:
  sql: {driver: postgres, dsn: "`+dsn+`"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: erp-outbox}
spec:
  system: erp
  sqlPoll:
    query: "SELECT id, order_id FROM `+tbl+` ORDER BY id LIMIT :limit"
    done: "DELETE FROM `+tbl+` WHERE id = :id"
    interval: 50ms
    batchSize: 2
  emit:
    type: order.created
    id: outbox-${{ .row.id }}
    data: {orderId: "${{ .row.order_id }}", items: [{sku: S, qty: 1}]}
`), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	})
	for i := 1; i <= 5; i++ {
		waitMessage(t, p, fmt.Sprint("outbox-", i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM " + tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d outbox rows left", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := streamMessages(t, p); n != 5 {
		t.Errorf("MESSAGES holds %d, want 5", n)
	}
}
