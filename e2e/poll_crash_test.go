package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/internal/testutil"
)

// TestPollSurvivesKill9 inserts rows into PostgreSQL continuously while a node polling the
// table is killed with SIGKILL and restarted several times, and checks that every row
// became exactly one stored message, none missing.
func TestPollSurvivesKill9(t *testing.T) {
	testutil.RequireService(t, "PostgreSQL", "127.0.0.1:5432")
	const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tbl := fmt.Sprintf("cw_poll_%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := db.Exec("CREATE TABLE " + tbl + " (id BIGSERIAL PRIMARY KEY, payload TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	defer db.Exec("DROP TABLE " + tbl) //nolint:errcheck // best effort

	cfg := writeConfig(t, map[string]string{"defs.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: row.added}
spec:
  schema: {type: object, required: [id, payload]}
---
apiVersion: causeway/v1
kind: System
metadata: {name: pg}
spec:
  sql: {driver: postgres, dsn: "` + dsn + `"}
---
apiVersion: causeway/v1
kind: Source
metadata: {name: rows}
spec:
  system: pg
  sqlPoll:
    query: "SELECT id, payload FROM ` + tbl + ` WHERE id > :cursor ORDER BY id LIMIT :limit"
    cursor: id
    interval: 50ms
    batchSize: 40
  emit:
    type: row.added
    id: row-${{ .row.id }}
    data: {id: "${{ .row.id }}", payload: "${{ .row.payload }}"}
`})
	data := t.TempDir()

	// The inserter: a bounded number of rows, one every 2 ms, while the node comes and goes.
	const rows = 1200
	var inserted atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range rows {
			if _, err := db.Exec("INSERT INTO "+tbl+" (payload) VALUES ($1)", fmt.Sprintf("p%d", i)); err != nil {
				done <- err
				return
			}
			inserted.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
		done <- nil
	}()
	var n *node
	for round := range 4 {
		n = startNode(t, cfg, data)
		time.Sleep(time.Duration(400+200*round) * time.Millisecond)
		if round < 3 {
			n.kill()
			t.Logf("killed after %d rows inserted", inserted.Load())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Every row becomes exactly one message.
	nc, err := nats.Connect("nats://" + n.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "MESSAGES")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, func() bool {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("cw.msg.row.added"))
		return err == nil && info.State.Msgs >= rows
	}, "every row to be a message")
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cw.msg.row.added"}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(ctx)
	seen := map[string]int{}
	for range info.State.Msgs {
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		seen[m.Headers().Get("ce-id")]++
	}
	for i := 1; i <= rows; i++ {
		id := fmt.Sprintf("row-%d", i)
		switch seen[id] {
		case 1:
		case 0:
			t.Errorf("row %d has no message", i)
		default:
			t.Errorf("row %d became %d messages", i, seen[id])
		}
	}
	if len(seen) != rows {
		t.Errorf("%d distinct messages for %d rows", len(seen), rows)
	}
	t.Logf("%d rows, %d messages, 3 kills", rows, len(seen))
}
