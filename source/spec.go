// Package source implements the Source kind: the adapter that turns one system's events into
// canonical messages. A source has a trigger (for now: a webhook on the http listener) and an
// emit mapping from the raw event to the message; the message is checked against its
// MessageType and stored on the bus before the system hears yes. What cannot be mapped or
// does not match its schema is never dropped: it goes to the ERRORS stream with the reason
// and the raw payload.
package source

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/system"
)

// Kind is the kind name of source definitions.
const Kind = "Source"

const kindDoc = `A Source turns one system's events into canonical messages: a trigger (a webhook the
system calls) and an emit mapping from the raw event ({body, headers, query}) to the message.
The message is checked against its MessageType and stored on the bus before the system is
answered; a payload that cannot be mapped or does not match goes to the ERRORS stream with
the reason, never dropped.`

const kindExample = `apiVersion: causeway/v1
kind: Source
metadata:
  name: erp-invoices
  description: The ERP calls this webhook for every posted invoice
spec:
  system: erp
  webhook:
    path: /hooks/erp/invoices
    signature:
      scheme: standard
      secret: ${secret:ERP_WEBHOOK_SECRET}
  emit:
    type: invoice.posted
    subject: invoice/${{ .body.number }}
    data:
      invoiceId: ${{ .body.number }}
      amount: ${{ .body.total }}`

// Spec is the spec of a Source.
type Spec struct {
	// System names the system the events come from.
	System string `yaml:"system" required:"true" ref:"System" doc:"The system whose events this source turns into messages."`
	// Webhook is a path on the http listener that the system calls.
	Webhook *Webhook `yaml:"webhook" doc:"A path on the http listener the system calls with its events. Give one trigger."`
	// SQLPoll reads new rows from the system's database.
	SQLPoll *SQLPoll `yaml:"sqlPoll" doc:"Read new rows from the system's database with a query and a cursor. Give one trigger."`
	// AMQP consumes a queue of the system's broker.
	AMQP *AMQPSource `yaml:"amqp" doc:"Consume a queue of the system's AMQP broker; each delivery is acknowledged after its message is stored. Give one trigger."`
	// File picks up files dropped in the system's directory.
	File *FileSource `yaml:"file" doc:"Pick up the files dropped in the system's directory: one message per file, or per record. Give one trigger."`
	// MQTT subscribes to topics of the system's MQTT broker.
	MQTT *MQTTSource `yaml:"mqtt" doc:"Subscribe to topics of the system's MQTT broker (MQTT 5, QoS 1, a session the broker keeps while the node is away); each message is acknowledged after it is stored. Give one trigger."`
	// NATS subscribes to a subject of the system's NATS server, or consumes a stream.
	NATS *NATSSource `yaml:"nats" doc:"Subscribe to a subject of the system's NATS server, or consume one of its JetStream streams (acknowledged after the message is stored). Give one trigger."`
	// Kafka consumes topics of the system's Kafka cluster in a consumer group.
	Kafka *KafkaSource `yaml:"kafka" doc:"Consume topics of the system's Kafka cluster in a consumer group; offsets are committed after the messages are stored. Give one trigger."`
	// Schedule calls an operation of the system on a cron schedule.
	Schedule *ScheduleSource `yaml:"schedule" doc:"Call an operation of the system on a cron schedule and emit its result: one message, or one per element. Give one trigger."`
	// Emit maps the raw event to the message.
	Emit Emit `yaml:"emit" required:"true" doc:"How the raw event ({body, headers, query}) becomes a message."`

	compiled *compiled
}

// Webhook is an HTTP endpoint a system calls.
type Webhook struct {
	// Path is where the webhook listens.
	Path string `yaml:"path" required:"true" doc:"The path on the http listener; it must start with /hooks/." example:"/hooks/shop/orders"`
	// Signature checks that a call comes from the system.
	Signature *Signature `yaml:"signature" doc:"How calls are signed; calls without a valid signature are refused. Strongly recommended: without it, anyone who can reach the listener can send events."`
	// MaxBodyBytes bounds a call's body.
	MaxBodyBytes int64 `yaml:"maxBodyBytes" default:"1048576" doc:"The largest body accepted."`
}

// Signature is the signing scheme of a webhook.
type Signature struct {
	// Scheme is standard (Standard Webhooks) or github.
	Scheme string `yaml:"scheme" required:"true" enum:"standard,github" doc:"standard: Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature; secret whsec_...); github: X-Hub-Signature-256 (HMAC-SHA256 of the body)."`
	// Secret is the shared signing secret.
	Secret config.Secret `yaml:"secret" required:"true" doc:"The shared signing secret; for standard, the whsec_... value the system shows." example:"${secret:SHOP_WEBHOOK_SECRET}"`
	// Tolerance bounds the age of a signed timestamp, against replays.
	Tolerance time.Duration `yaml:"tolerance" default:"5m" doc:"With standard: how far the signed timestamp may be from now, against replays."`
}

// SQLPoll reads a system's new rows with a cursor: the query gets the last cursor value as
// :cursor and the batch size as :limit, and must return rows ordered by the cursor column.
type SQLPoll struct {
	// Query reads the rows after :cursor, at most :limit, ordered by the cursor column.
	Query string `yaml:"query" required:"true" doc:"The query: rows after :cursor, ordered by the cursor column, at most :limit." example:"SELECT id, status FROM orders WHERE id > :cursor ORDER BY id LIMIT :limit"`
	// Cursor is the column whose value of the last row read becomes the next :cursor.
	Cursor string `yaml:"cursor" doc:"The column whose value in the last row read is the next :cursor. It must grow with every new row (an id, or a timestamp with no two rows alike). Required unless done is given." example:"id"`
	// Done is run for each row, in one transaction, after the batch is stored: the outbox
	// pattern (delete or mark what was read).
	Done string `yaml:"done" doc:"A statement run for each row read, in one transaction, once the batch is stored: the outbox pattern, deleting or marking the rows. Its :parameters are the row's columns. With done, no cursor is needed." example:"DELETE FROM outbox WHERE id = :id"`
	// Initial is :cursor before any row was read.
	Initial config.JSON `yaml:"initial" doc:"The value of :cursor before any row was read (default 0)." example:"0"`
	// Interval is the wait between polls when there was nothing more to read.
	Interval time.Duration `yaml:"interval" default:"5s" doc:"How long to wait before polling again after a poll that read less than a full batch."`
	// BatchSize is :limit.
	BatchSize int `yaml:"batchSize" default:"100" doc:"The most rows read at once (the query's :limit)."`
}

// AMQPSource consumes a queue.
type AMQPSource struct {
	// Queue is the queue to consume; it must exist.
	Queue string `yaml:"queue" required:"true" doc:"The queue to consume; it must exist on the broker." example:"erp.orders"`
	// Prefetch bounds the deliveries in flight.
	Prefetch int `yaml:"prefetch" default:"20" doc:"How many deliveries the broker sends ahead of acknowledgements."`
}

// MQTTSource subscribes to topics.
type MQTTSource struct {
	// Topics are the topic filters subscribed to.
	Topics []string `yaml:"topics" required:"true" doc:"The topic filters to subscribe to (+ and # wildcards)." example:"[plant/+/orders]"`
	// SessionExpiry is how long the broker keeps the subscription and its messages while the
	// node is not connected.
	SessionExpiry time.Duration `yaml:"sessionExpiry" default:"24h" doc:"How long the broker keeps the session (the subscription and the messages for it) while the node is away."`
	// ClientID names the session at the broker.
	ClientID string `yaml:"clientID" doc:"The client id, which names the session at the broker; by default causeway-source-<source>-<node>. Two nodes must not share one."`
}

// NATSSource subscribes to a subject or consumes a JetStream stream.
type NATSSource struct {
	// Subject is a subject (wildcards allowed); for a stream, a filter.
	Subject string `yaml:"subject" doc:"The subject to subscribe to (* and > wildcards); with stream, a filter on the stream's subjects." example:"plant.orders.>"`
	// Queue is a queue group for a plain subscription.
	Queue string `yaml:"queue" doc:"A queue group, so that the nodes share the subject's messages instead of each getting all of them (plain subscriptions only)."`
	// Stream is a JetStream stream to consume with a durable consumer.
	Stream string `yaml:"stream" doc:"A JetStream stream of the system's server to consume with a durable consumer; each message is acknowledged after it is stored. Without it, a plain subscription, which gets only what is sent while the node is connected." example:"ORDERS"`
	// Consumer names the durable consumer.
	Consumer string `yaml:"consumer" doc:"The durable consumer's name (created when missing); by default causeway-<source>."`
}

// KafkaSource consumes topics in a consumer group.
type KafkaSource struct {
	// Topics are the topics consumed.
	Topics []string `yaml:"topics" required:"true" doc:"The topics to consume." example:"[erp.orders]"`
	// Group is the consumer group.
	Group string `yaml:"group" doc:"The consumer group, shared by the nodes; by default causeway-<source>."`
	// Start is where a group without committed offsets begins.
	Start string `yaml:"start" default:"earliest" enum:"earliest,latest" doc:"Where a group that has no committed offsets starts: the earliest record kept, or only records produced from now on."`
}

// FileSource picks up files from a directory.
type FileSource struct {
	// Dir is a subdirectory of the system's directory; "" for the directory itself.
	Dir string `yaml:"dir" doc:"A subdirectory of the system's directory to watch; the directory itself when left out." example:"outbox"`
	// Pattern selects the files.
	Pattern string `yaml:"pattern" default:"*" doc:"A shell pattern the file names must match." example:"orders-*.csv"`
	// Format says how a file becomes messages.
	Format string `yaml:"format" default:"json" enum:"json,jsonl,csv,text" doc:"json: the file is one JSON document, one message; jsonl: one message per line; csv: one message per row, the first row naming the columns; text: the file is one string, one message."`
	// Interval is the wait between looks at the directory.
	Interval time.Duration `yaml:"interval" default:"2s" doc:"How often the directory is looked at."`
	// Settle is how long a file must be left alone before it is read.
	Settle time.Duration `yaml:"settle" default:"1s" doc:"How long a file must not have changed before it is read, so that one still being written is not read half. Producers should still write under another name and rename."`
	// MaxBytes is the largest file read; larger ones go to failed/.
	MaxBytes int64 `yaml:"maxBytes" default:"67108864" doc:"The largest file read, in bytes (default 64 MiB); a larger one is moved to failed/ with an entry in ERRORS."`
}

// Emit is the mapping from a raw event to a message.
type Emit struct {
	// Type is the message type.
	Type string `yaml:"type" required:"true" ref:"MessageType" doc:"The type of the messages emitted."`
	// ID is the message id; by default the webhook's delivery id.
	ID string `yaml:"id" doc:"The message id, a template; by default the delivery id the system sends (webhook-id, X-GitHub-Delivery), so that a delivery sent again is stored once, or a new id." example:"order-${{ .body.id }}"`
	// Subject is the message subject.
	Subject string `yaml:"subject" doc:"The message subject, a template." example:"order/${{ .body.id }}"`
	// Key is the message's partition key.
	Key string `yaml:"key" doc:"The message's partition key, a template: the CloudEvents partitionkey attribute, which a flow can order by (key: .partitionkey) so that one order's or customer's messages run one at a time, in order." example:"${{ .body.customerId }}"`
	// Data is the message data.
	Data config.JSON `yaml:"data" doc:"The message data: a value with ${{ jq }} templates, or one template; the body itself when left out."`
}

// compiled is the checked form of a source.
type compiled struct {
	id, subject, key *expr.Template
	data             *expr.Value
	// schedule is the parsed cron of a schedule source, with its call's parameters.
	schedule cron.Schedule
	with     *expr.Value
}

var webhookPath = regexp.MustCompile(`^/hooks/[A-Za-z0-9._~/-]+$`)

var _ config.Provisioner = (*Spec)(nil)

// Provision compiles the emit mapping and checks the trigger.
func (s *Spec) Provision(ctx *config.Context) error {
	c := &compiled{}
	s.compiled = c
	triggers := 0
	for _, set := range []bool{s.Webhook != nil, s.SQLPoll != nil, s.AMQP != nil, s.File != nil, s.MQTT != nil, s.NATS != nil, s.Kafka != nil, s.Schedule != nil} {
		if set {
			triggers++
		}
	}
	if triggers != 1 {
		ctx.Errorf("", "give one trigger: webhook, sqlPoll, amqp, file, mqtt, nats, kafka or schedule")
	}
	if a := s.AMQP; a != nil && (a.Prefetch < 1 || a.Prefetch > 10000) {
		ctx.Errorf("amqp.prefetch", "must be between 1 and 10000")
	}
	if sc := s.Schedule; sc != nil {
		s.provisionSchedule(ctx, sc)
	}
	if k := s.Kafka; k != nil && len(k.Topics) == 0 {
		ctx.Errorf("kafka.topics", "give at least one topic")
	}
	if m := s.MQTT; m != nil {
		if len(m.Topics) == 0 {
			ctx.Errorf("mqtt.topics", "give at least one topic filter")
		}
		for i, t := range m.Topics {
			if !validTopicFilter(t) {
				ctx.Errorf(fmt.Sprintf("mqtt.topics[%d]", i), "%q is not a topic filter (# only last, + and # alone between slashes)", t)
			}
		}
		if m.SessionExpiry < time.Second || m.SessionExpiry > time.Duration(math.MaxUint32)*time.Second {
			ctx.Errorf("mqtt.sessionExpiry", "must be between 1s and 136 years")
		}
	}
	if n := s.NATS; n != nil {
		if n.Subject == "" && n.Stream == "" {
			ctx.Errorf("nats", "give a subject, or a stream")
		}
		if n.Stream != "" && n.Queue != "" {
			ctx.Errorf("nats.queue", "a queue group is for plain subscriptions; a stream's durable consumer is shared by the nodes already")
		}
		if n.Subject != "" && !validSubject(n.Subject) {
			ctx.Errorf("nats.subject", "%q is not a subject (tokens separated by dots; * and > alone, > only last)", n.Subject)
		}
	}
	if f := s.File; f != nil {
		if _, err := filepath.Match(f.Pattern, "x"); err != nil {
			ctx.Errorf("file.pattern", "%q: %v", f.Pattern, err)
		}
		if filepath.IsAbs(f.Dir) || strings.HasPrefix(filepath.Clean(f.Dir), "..") {
			ctx.Errorf("file.dir", "%q must be a subdirectory of the system's directory", f.Dir)
		}
		if f.Interval <= 0 {
			ctx.Errorf("file.interval", "must be positive")
		}
		if f.Settle < 0 {
			ctx.Errorf("file.settle", "must not be negative")
		}
		if f.MaxBytes < 1 || f.MaxBytes > 1<<30 {
			ctx.Errorf("file.maxBytes", "must be between 1 and 1073741824")
		}
	}
	if p := s.SQLPoll; p != nil {
		if p.Interval <= 0 {
			ctx.Errorf("sqlPoll.interval", "must be positive")
		}
		if p.BatchSize < 1 || p.BatchSize > 10000 {
			ctx.Errorf("sqlPoll.batchSize", "must be between 1 and 10000")
		}
		switch {
		case p.Done == "" && p.Cursor == "":
			ctx.Errorf("sqlPoll", "give cursor (the column that grows), or done (the outbox statement)")
		case p.Done == "" && !strings.Contains(p.Query, ":cursor"):
			ctx.Errorf("sqlPoll.query", "the query must read the rows after :cursor")
		}
	}
	if w := s.Webhook; w != nil {
		if !webhookPath.MatchString(w.Path) || strings.Contains(w.Path, "//") || strings.Contains(w.Path, "/../") || strings.HasSuffix(w.Path, "/..") {
			ctx.Errorf("webhook.path", "%q: a webhook path starts with /hooks/ and holds letters, digits, '.', '_', '~', '-' and '/'", w.Path)
		}
		if w.MaxBodyBytes < 1 {
			ctx.Errorf("webhook.maxBodyBytes", "must be positive")
		}
		if sg := w.Signature; sg != nil {
			if sg.Tolerance <= 0 {
				ctx.Errorf("webhook.signature.tolerance", "must be positive")
			}
			if sg.Scheme == "standard" && !sg.Secret.IsZero() {
				if _, err := standardKey(sg.Secret.Reveal()); err != nil {
					ctx.Errorf("webhook.signature.secret", "%v", err)
				}
			}
		}
	}
	compile := func(field, src string) *expr.Template {
		if src == "" {
			return nil
		}
		t, err := expr.ParseTemplate(src)
		if err != nil {
			ctx.Errorf(field, "%v", err)
		}
		return t
	}
	c.id = compile("emit.id", s.Emit.ID)
	c.subject = compile("emit.subject", s.Emit.Subject)
	c.key = compile("emit.key", s.Emit.Key)
	if !s.Emit.Data.IsZero() {
		v, errs := expr.CompileValue(s.Emit.Data.Raw)
		for _, e := range errs {
			ctx.ErrorAt(s.Emit.Data.PosOf(e.Pointer), "spec.emit.data%s: %v", pointerPath(e.Pointer), e.Err)
		}
		c.data = v
	}
	return ctx.Err()
}

// pointerPath writes a JSON pointer as a field path suffix.
func pointerPath(ptr string) string {
	if ptr == "" {
		return ""
	}
	return "." + strings.ReplaceAll(strings.TrimPrefix(ptr, "/"), "/", ".")
}

// validTopicFilter says whether t is an MQTT topic filter: + and # fill a whole level, and #
// comes last.
func validTopicFilter(t string) bool {
	if t == "" {
		return false
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) != 1 {
			return false
		}
		if l == "#" && i != len(levels)-1 {
			return false
		}
	}
	return true
}

// validSubject says whether s is a NATS subject or wildcard subject.
func validSubject(s string) bool {
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return false
		}
		if strings.ContainsAny(t, "*>") && len(t) != 1 {
			return false
		}
		if t == ">" && i != len(tokens)-1 {
			return false
		}
	}
	return true
}

// Register adds the Source kind to a registry.
func Register(r *config.Registry) error {
	return r.Register(config.Kind{Name: Kind, Doc: kindDoc, Example: kindExample, New: func() any { return new(Spec) }})
}

var _ config.Validator = (*Spec)(nil)

// Validate checks that no other source listens on the same webhook path, and that a
// polled system has a database.
func (s *Spec) Validate(ctx *config.Context) error {
	if r, ok := ctx.Lookup("System", s.System); ok {
		sys, _ := r.Spec.(*system.Spec)
		if s.SQLPoll != nil && sys != nil && sys.SQL == nil {
			ctx.Errorf("sqlPoll", "system %q has no sql settings to poll", s.System)
		}
		if s.AMQP != nil && sys != nil && sys.AMQP == nil {
			ctx.Errorf("amqp", "system %q has no amqp settings to consume from", s.System)
		}
		if s.MQTT != nil && sys != nil && sys.MQTT == nil {
			ctx.Errorf("mqtt", "system %q has no mqtt settings to subscribe with", s.System)
		}
		if s.Kafka != nil && sys != nil && sys.Kafka == nil {
			ctx.Errorf("kafka", "system %q has no kafka settings to consume from", s.System)
		}
		if s.NATS != nil && sys != nil && sys.NATS == nil {
			ctx.Errorf("nats", "system %q has no nats settings to subscribe with", s.System)
		}
		if sc := s.Schedule; sc != nil && sys != nil {
			if _, ok := sys.Operation(sc.Call); !ok {
				ctx.Errorf("schedule.call", "system %q has no operation %q", s.System, sc.Call)
			}
		}
		if s.File != nil && sys != nil && sys.Files == nil {
			ctx.Errorf("file", "system %q has no files settings (a directory) to watch", s.System)
		}
	}
	if s.Webhook == nil {
		return ctx.Err()
	}
	for _, r := range ctx.All(Kind) {
		other, ok := r.Spec.(*Spec)
		if !ok || r.Metadata.Name == ctx.Name() || other.Webhook == nil {
			continue
		}
		if other.Webhook.Path == s.Webhook.Path {
			ctx.Errorf("webhook.path", "%s is also the path of source %q", s.Webhook.Path, r.Metadata.Name)
		}
	}
	return ctx.Err()
}
