package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/source"
)

// The source crash suite: every kind of source, while records arrive at its system, is
// killed with SIGKILL and restarted three times; afterwards every record must be exactly one
// stored message — at least once across the crashes (none missing), and once (a record read
// or sent again carries the same message id and the bus keeps it once).

// sourceCrash is one source kind's run of the suite.
type sourceCrash struct {
	// system and source are the definitions: a System and a Source named src that emits
	// event.added with data {n} for each record.
	system, source string
	// records is how many records are delivered, by deliver(i), one after the other, with
	// pause between them; current gives the running node (nil while none is).
	records int
	pause   time.Duration
	deliver func(i int, current func() *node) error
	// subscribeFirst holds the records back until the first node is up: a broker keeps
	// messages for a subscription only once the subscription exists.
	subscribeFirst bool
}

const eventType = `apiVersion: causeway/v1
kind: MessageType
metadata: {name: event.added}
spec:
  schema: {type: object, required: [n], properties: {n: {type: integer}}}
`

func runSourceCrash(t *testing.T, c sourceCrash) {
	t.Helper()
	cfg := writeConfig(t, map[string]string{"defs.yaml": eventType + "---\n" + c.system + "---\n" + c.source})
	data := t.TempDir()
	var current atomic.Pointer[node]
	var delivered atomic.Int64
	done := make(chan error, 1)
	first := make(chan struct{})
	go func() {
		if c.subscribeFirst {
			<-first
		}
		for i := range c.records {
			if err := c.deliver(i, current.Load); err != nil {
				done <- fmt.Errorf("record %d: %w", i, err)
				return
			}
			delivered.Add(1)
			time.Sleep(c.pause)
		}
		done <- nil
	}()
	var n *node
	for round := range 4 {
		n = startNode(t, cfg, data)
		current.Store(n)
		if round == 0 {
			close(first)
		}
		time.Sleep(time.Duration(400+200*round) * time.Millisecond)
		if round < 3 {
			current.Store(nil)
			n.kill()
			t.Logf("killed after %d records", delivered.Load())
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect("nats://" + n.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "MESSAGES")
	if err != nil {
		t.Fatal(err)
	}
	// Wait for every record; on a timeout the count below says which are missing.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter("cw.msg.event.added"))
		if err == nil && info.State.Msgs >= uint64(c.records) {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // a record stored twice would show now
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"cw.msg.event.added"}})
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
		seen[string(m.Data())]++
	}
	var wrong []string
	for i := range c.records {
		if got := seen[fmt.Sprintf(`{"n":%d}`, i)]; got != 1 {
			wrong = append(wrong, fmt.Sprintf("%d×%d", i, got))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d records did not become one message each (record×messages): %s", len(wrong), strings.Join(wrong[:min(len(wrong), 40)], " "))
	}
	if len(seen) != c.records || info.State.Msgs != uint64(c.records) {
		t.Errorf("%d messages (%d distinct) for %d records", info.State.Msgs, len(seen), c.records)
	}
	t.Logf("%d records, %d messages, 3 kills", c.records, info.State.Msgs)
}

func TestSQLPollSurvivesKill9(t *testing.T) {
	testutil.RequireService(t, "PostgreSQL", "127.0.0.1:5432")
	const dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tbl := fmt.Sprintf("cw_poll_%d", time.Now().UnixNano()%1_000_000_000)
	if _, err := db.Exec("CREATE TABLE " + tbl + " (id BIGSERIAL PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	defer db.Exec("DROP TABLE " + tbl) //nolint:errcheck // best effort
	runSourceCrash(t, sourceCrash{
		system: "apiVersion: causeway/v1\nkind: System\nmetadata: {name: pg}\nspec:\n  sql: {driver: postgres, dsn: \"" + dsn + "\"}\n",
		source: `apiVersion: causeway/v1
kind: Source
metadata: {name: src}
spec:
  system: pg
  sqlPoll: {query: "SELECT id, n FROM ` + tbl + ` WHERE id > :cursor ORDER BY id LIMIT :limit", cursor: id, interval: 50ms, batchSize: 40}
  emit: {type: event.added, id: "row-${{ .row.id }}", data: {n: "${{ .row.n }}"}}
`,
		records: 1200, pause: 2 * time.Millisecond,
		deliver: func(i int, _ func() *node) error {
			_, err := db.Exec("INSERT INTO "+tbl+" (n) VALUES ($1)", i)
			return err
		},
	})
}

func TestFileSourceSurvivesKill9(t *testing.T) {
	drop := t.TempDir()
	const perFile = 50
	runSourceCrash(t, sourceCrash{
		system: "apiVersion: causeway/v1\nkind: System\nmetadata: {name: drop}\nspec:\n  files: {dir: \"" + drop + "\"}\n",
		source: `apiVersion: causeway/v1
kind: Source
metadata: {name: src}
spec:
  system: drop
  file: {pattern: "*.jsonl", format: jsonl, interval: 20ms, settle: 0s}
  emit: {type: event.added}
`,
		// A file per 50 records, written under a hidden name and renamed, as a producer should.
		records: 3000, pause: 0,
		deliver: func(i int, _ func() *node) error {
			if i%perFile != 0 {
				return nil
			}
			var b strings.Builder
			for n := i; n < i+perFile; n++ {
				fmt.Fprintf(&b, "{\"n\":%d}\n", n)
			}
			tmp := filepath.Join(drop, fmt.Sprintf(".f%05d.tmp", i))
			if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
				return err
			}
			time.Sleep(60 * time.Millisecond)
			return os.Rename(tmp, filepath.Join(drop, fmt.Sprintf("f%05d.jsonl", i)))
		},
	})
	if entries, _ := os.ReadDir(filepath.Join(drop, "processed")); len(entries) != 3000/perFile {
		t.Errorf("processed/ holds %d files, want %d", len(entries), 3000/perFile)
	}
}

func TestKafkaSourceSurvivesKill9(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "plant.events"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	runSourceCrash(t, sourceCrash{
		system:  "apiVersion: causeway/v1\nkind: System\nmetadata: {name: plant}\nspec:\n  kafka: {brokers: [\"" + kc.ListenAddrs()[0] + "\"]}\n",
		source:  "apiVersion: causeway/v1\nkind: Source\nmetadata: {name: src}\nspec:\n  system: plant\n  kafka: {topics: [plant.events]}\n  emit: {type: event.added}\n",
		records: 1500, pause: time.Millisecond,
		deliver: func(i int, _ func() *node) error {
			r := &kgo.Record{Topic: "plant.events", Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}
			return prod.ProduceSync(context.Background(), r).FirstErr()
		},
	})
}

func TestAMQPSourceSurvivesKill9(t *testing.T) {
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
	queue := fmt.Sprintf("cw-crash-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(queue, false, false, false) //nolint:errcheck // best effort
	runSourceCrash(t, sourceCrash{
		system:  "apiVersion: causeway/v1\nkind: System\nmetadata: {name: broker}\nspec:\n  amqp: {url: \"amqp://guest:guest@127.0.0.1:5672/\"}\n",
		source:  "apiVersion: causeway/v1\nkind: Source\nmetadata: {name: src}\nspec:\n  system: broker\n  amqp: {queue: " + queue + "}\n  emit: {type: event.added}\n",
		records: 1200, pause: 2 * time.Millisecond,
		deliver: func(i int, _ func() *node) error {
			return ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{
				MessageId: fmt.Sprint("m", i), DeliveryMode: amqp.Persistent, ContentType: "application/json", Body: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		},
	})
}

func TestMQTTSourceSurvivesKill9(t *testing.T) {
	testutil.RequireService(t, "Mosquitto", "127.0.0.1:1883")
	run := time.Now().UnixNano()
	nc, err := net.Dial("tcp", "127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	pub := paho.NewClient(paho.ClientConfig{Conn: nc})
	ctx := context.Background()
	if _, err := pub.Connect(ctx, &paho.Connect{ClientID: fmt.Sprint("cw-crash-pub-", run), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(&paho.Disconnect{}) //nolint:errcheck // best effort
	topic := fmt.Sprintf("cw-crash/%d", run)
	runSourceCrash(t, sourceCrash{
		system:  "apiVersion: causeway/v1\nkind: System\nmetadata: {name: plant}\nspec:\n  mqtt: {url: \"mqtt://127.0.0.1:1883\"}\n",
		source:  fmt.Sprintf("apiVersion: causeway/v1\nkind: Source\nmetadata: {name: src}\nspec:\n  system: plant\n  mqtt: {topics: [\"%s/+\"], clientID: cw-crash-%d, sessionExpiry: 10m}\n  emit: {type: event.added}\n", topic, run),
		records: 1200, pause: 2 * time.Millisecond, subscribeFirst: true,
		deliver: func(i int, _ func() *node) error {
			_, err := pub.Publish(ctx, &paho.Publish{Topic: topic + "/e", QoS: 1, Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)),
				Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "message-id", Value: fmt.Sprint("m", i)}}}})
			return err
		},
	})
}

func TestNATSSourceSurvivesKill9(t *testing.T) {
	testutil.RequireService(t, "NATS", "127.0.0.1:4222")
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	run := time.Now().UnixNano()
	stream, subj := fmt.Sprintf("CW_CRASH_%d", run), fmt.Sprintf("cw.crash.%d", run)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subj}}); err != nil {
		t.Fatal(err)
	}
	defer js.DeleteStream(ctx, stream) //nolint:errcheck // best effort
	runSourceCrash(t, sourceCrash{
		system:  "apiVersion: causeway/v1\nkind: System\nmetadata: {name: plant}\nspec:\n  nats: {url: \"nats://127.0.0.1:4222\"}\n",
		source:  "apiVersion: causeway/v1\nkind: Source\nmetadata: {name: src}\nspec:\n  system: plant\n  nats: {stream: " + stream + "}\n  emit: {type: event.added}\n",
		records: 1200, pause: 2 * time.Millisecond,
		deliver: func(i int, _ func() *node) error {
			_, err := js.Publish(ctx, subj, []byte(fmt.Sprintf(`{"n":%d}`, i)))
			return err
		},
	})
}

func TestWebhookSourceSurvivesKill9(t *testing.T) {
	secretsDir := t.TempDir()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if err := os.WriteFile(filepath.Join(secretsDir, "HOOK_SECRET"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAUSEWAY_SECRETS_DIR", secretsDir)
	client := &http.Client{Timeout: 5 * time.Second}
	runSourceCrash(t, sourceCrash{
		system: "apiVersion: causeway/v1\nkind: System\nmetadata: {name: shop}\nspec: {}\n",
		source: "apiVersion: causeway/v1\nkind: Source\nmetadata: {name: src}\nspec:\n  system: shop\n  webhook: {path: /hooks/shop, signature: {scheme: standard, secret: \"${secret:HOOK_SECRET}\"}}\n  emit: {type: event.added}\n",
		// A sender that sends again until it is answered 202, as webhook senders do.
		records: 800, pause: time.Millisecond,
		deliver: func(i int, current func() *node) error {
			body := []byte(fmt.Sprintf(`{"n":%d}`, i))
			for attempt := 0; attempt < 2000; attempt++ {
				if n := current(); n != nil {
					req, _ := http.NewRequest(http.MethodPost, "http://"+n.http+"/hooks/shop", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					if err := source.SignStandard(req.Header, secret, fmt.Sprint("d", i), time.Now(), body); err != nil {
						return err
					}
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusAccepted {
							return nil
						}
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			return fmt.Errorf("never accepted")
		},
	})
}
