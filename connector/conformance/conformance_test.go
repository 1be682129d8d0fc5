package conformance

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // to look into PostgreSQL
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	_ "modernc.org/sqlite" // to look into SQLite

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/internal/testutil/smtptest"
	"github.com/causeway/causeway/internal/testutil/sshtest"
	"github.com/causeway/causeway/system"
)

// load reads one System, named sys, from YAML as the platform does.
func load(t *testing.T, spec string) *system.Spec {
	t.Helper()
	dir := t.TempDir()
	doc := "apiVersion: causeway/v1\nkind: System\nmetadata: {name: sys}\nspec:\n" + spec
	if err := os.WriteFile(filepath.Join(dir, "sys.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := config.NewRegistry()
	if err := system.Register(r); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir, config.Options{Registry: r})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := cfg.Get(system.Kind, "sys")
	return res.Spec.(*system.Spec)
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHTTP(t *testing.T) {
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/orders/") {
			got <- r.URL.Path
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"ok":true}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	spec := func(url string) string {
		return `  http: {baseURL: "` + url + `", timeout: 3s, auth: {bearer: tok-s3cret}}
  operations:
    ship: {http: {method: POST, path: "/orders/{id}"}}
    missing: {http: {method: GET, path: /nothing}}
`
	}
	Run(t, Case{
		System:  load(t, spec(srv.URL)),
		Succeed: Call{Op: "ship", With: map[string]any{"id": "A-1", "body": map[string]any{"n": 1}}},
		Verify: func(t *testing.T, res any) {
			if p := <-got; p != "/orders/A-1" || res.(map[string]any)["ok"] != true {
				t.Errorf("the server got %s, answered %v", p, res)
			}
		},
		Permanent:   Call{Op: "missing"},
		Unreachable: load(t, spec("http://"+closedAddr(t))),
		Secrets:     []string{"tok-s3cret"},
	})
}

// sqlCase runs the suite on one database, in a table of its own.
func sqlCase(t *testing.T, driver, dsn, unreachableDSN string, look func() (*sql.DB, error)) {
	tbl := fmt.Sprintf("cw_conf_%d", time.Now().UnixNano()%1_000_000_000)
	db, err := look()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE " + tbl + " (v VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	defer db.Exec("DROP TABLE " + tbl) //nolint:errcheck // best effort
	spec := func(dsn string) string {
		return `  sql: {driver: ` + driver + `, dsn: "` + dsn + `", timeout: 3s}
  operations:
    add: {sql: {exec: "INSERT INTO ` + tbl + ` (v) VALUES (:v)"}}
    broken: {sql: {exec: "INSERT INTO cw_no_such_table (v) VALUES (:v)"}}
`
	}
	var unreachable *system.Spec
	if unreachableDSN != "" {
		unreachable = load(t, spec(unreachableDSN))
	}
	Run(t, Case{
		System:  load(t, spec(dsn)),
		Succeed: Call{Op: "add", With: map[string]any{"v": "x"}},
		Verify: func(t *testing.T, _ any) {
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM " + tbl).Scan(&n); err != nil || n != 1 {
				t.Errorf("the table holds %d rows (%v), want 1", n, err)
			}
		},
		Permanent:   Call{Op: "broken", With: map[string]any{"v": "x"}},
		Unreachable: unreachable,
		Secrets:     []string{"pw-s3cret"},
	})
}

func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	sqlCase(t, "sqlite", path, "", func() (*sql.DB, error) { return sql.Open("sqlite", path) })
}

func TestPostgres(t *testing.T) {
	testutil.RequireService(t, "PostgreSQL", "127.0.0.1:5432")
	dsn := "postgres://postgres:pw-s3cret@127.0.0.1:5432/test?sslmode=disable"
	sqlCase(t, "postgres", dsn, "postgres://postgres:pw-s3cret@"+closedAddr(t)+"/test?sslmode=disable&connect_timeout=2",
		func() (*sql.DB, error) { return sql.Open("pgx", dsn) })
}

func TestMariaDB(t *testing.T) {
	testutil.RequireService(t, "MariaDB", "127.0.0.1:3306")
	sqlCase(t, "mysql", "root@tcp(127.0.0.1:3306)/test", "root:pw-s3cret@tcp("+closedAddr(t)+")/test?timeout=2s",
		func() (*sql.DB, error) { return sql.Open("mysql", "root@tcp(127.0.0.1:3306)/test") })
}

func TestAMQP(t *testing.T) {
	testutil.RequireService(t, "RabbitMQ", "127.0.0.1:5672")
	conn, err := amqp.Dial("amqp://guest:guest@127.0.0.1:5672/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	queue := fmt.Sprintf("cw-conf-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	spec := func(addr string) string {
		return `  amqp: {url: "amqp://guest:guest@` + addr + `/"}
  operations:
    send: {amqp: {routingKey: ` + queue + `}}
    nowhere: {amqp: {exchange: cw-no-such-exchange, routingKey: x}}
`
	}
	Run(t, Case{
		System:  load(t, spec("127.0.0.1:5672")),
		Succeed: Call{Op: "send", With: map[string]any{"body": map[string]any{"n": 1}}},
		Verify: func(t *testing.T, _ any) {
			if d, ok, err := ch.Get(queue, true); err != nil || !ok || string(d.Body) != `{"n":1}` {
				t.Errorf("the queue gave %q %v %v", d.Body, ok, err)
			}
		},
		Permanent:   Call{Op: "nowhere", With: map[string]any{"body": 1}},
		Unreachable: load(t, spec(closedAddr(t))),
		Secrets:     []string{"guest:guest@"},
	})
}

func TestNATS(t *testing.T) {
	testutil.RequireService(t, "NATS", "127.0.0.1:4222")
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	run := time.Now().UnixNano()
	stream := fmt.Sprintf("CW_CONF_%d", run)
	subj := fmt.Sprintf("cw.conf.%d", run)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subj}})
	if err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(ctx, stream) //nolint:errcheck // best effort
	spec := func(addr string) string {
		return `  nats: {url: "nats://` + addr + `"}
  operations:
    store: {nats: {subject: ` + subj + `, jetstream: true}}
    nostream: {nats: {subject: cw.conf.nostream.` + fmt.Sprint(run) + `, jetstream: true, timeout: 2s}}
`
	}
	Run(t, Case{
		System:  load(t, spec("127.0.0.1:4222")),
		Succeed: Call{Op: "store", With: map[string]any{"body": map[string]any{"n": 1}}},
		Verify: func(t *testing.T, _ any) {
			if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
				t.Errorf("the stream holds %v (%v), want 1", info.State.Msgs, err)
			}
		},
		Permanent:   Call{Op: "nostream", With: map[string]any{"body": 1}},
		Unreachable: load(t, spec(closedAddr(t))),
	})
}

func TestMQTT(t *testing.T) {
	testutil.RequireService(t, "Mosquitto", "127.0.0.1:1883")
	spec := func(addr string) string {
		return `  mqtt: {url: "mqtt://` + addr + `"}
  operations:
    notify: {mqtt: {topic: "cw/conf/${{ .params.line }}"}}
`
	}
	Run(t, Case{
		System:      load(t, spec("127.0.0.1:1883")),
		Succeed:     Call{Op: "notify", With: map[string]any{"line": "a", "body": map[string]any{"n": 1}}},
		Permanent:   Call{Op: "notify", With: map[string]any{"line": "#", "body": 1}}, // a filter, not a topic
		Unreachable: load(t, spec(closedAddr(t))),
	})
}

func TestKafka(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	spec := func(addr string) string {
		return `  kafka: {brokers: ["` + addr + `"]}
  operations:
    produce: {kafka: {topic: orders, key: "${{ .params.id }}"}}
    nowhere: {kafka: {topic: no-such-topic}}
`
	}
	Run(t, Case{
		System:  load(t, spec(kc.ListenAddrs()[0])),
		Succeed: Call{Op: "produce", With: map[string]any{"id": "A-1", "body": map[string]any{"n": 1}}},
		Verify: func(t *testing.T, res any) {
			if r := res.(map[string]any); r["topic"] != "orders" {
				t.Errorf("result %v", r)
			}
		},
		Permanent:   Call{Op: "nowhere", With: map[string]any{"body": 1}},
		Unreachable: load(t, spec(closedAddr(t))),
		Timeout:     5 * time.Second,
	})
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	Run(t, Case{
		System: load(t, `  files: {dir: "`+dir+`"}
  operations:
    drop: {file: {path: "orders/${{ .params.id }}.json"}}
    away: {file: {path: "../${{ .params.id }}.json"}}
`),
		Succeed: Call{Op: "drop", With: map[string]any{"id": "A-1", "body": map[string]any{"n": 1}}},
		Verify: func(t *testing.T, _ any) {
			if b, err := os.ReadFile(filepath.Join(dir, "orders", "A-1.json")); err != nil || string(b) != `{"n":1}` {
				t.Errorf("file %q %v", b, err)
			}
		},
		Permanent: Call{Op: "away", With: map[string]any{"id": "x", "body": 1}},
	})
}

func TestSFTP(t *testing.T) {
	srv := sshtest.Start(t)
	spec := func(addr string) string {
		return `  sftp: {address: "` + addr + `", username: causeway, password: s3cret, hostKey: "` + srv.HostKey + `", dir: upload, timeout: 3s}
  operations:
    drop: {file: {path: "${{ .params.id }}.json"}}
    away: {file: {path: "../${{ .params.id }}.json"}}
`
	}
	Run(t, Case{
		System:  load(t, spec(srv.Addr)),
		Succeed: Call{Op: "drop", With: map[string]any{"id": "A-1", "body": map[string]any{"n": 1}}},
		Verify: func(t *testing.T, _ any) {
			if b, err := os.ReadFile(filepath.Join(srv.Dir, "upload", "A-1.json")); err != nil || string(b) != `{"n":1}` {
				t.Errorf("file %q %v", b, err)
			}
		},
		Permanent:   Call{Op: "away", With: map[string]any{"id": "x", "body": 1}},
		Unreachable: load(t, spec(closedAddr(t))),
		Secrets:     []string{"s3cret"},
	})
}

func TestEmail(t *testing.T) {
	srv := smtptest.Start(t)
	spec := func(addr string) string {
		host, port, _ := net.SplitHostPort(addr)
		return `  smtp: {host: ` + host + `, port: ` + port + `, tls: none, username: user, password: pass, from: "Causeway <causeway@example.com>"}
  operations:
    notify: {email: {to: ["${{ .params.email }}"], subject: "Order shipped", body: "Hello"}}
`
	}
	Run(t, Case{
		System:  load(t, spec(srv.Addr)),
		Succeed: Call{Op: "notify", With: map[string]any{"email": "jane@example.com"}},
		Verify: func(t *testing.T, _ any) {
			if m := srv.Messages(); len(m) != 1 || !strings.Contains(m[0], "Subject: Order shipped") {
				t.Errorf("the server got %q", m)
			}
		},
		Permanent:   Call{Op: "notify", With: map[string]any{"email": "unknown@example.com"}},
		Unreachable: load(t, spec(closedAddr(t))),
	})
}
