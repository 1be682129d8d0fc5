package source_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/kinds"
)

const common = `apiVersion: causeway/v1
kind: System
metadata: {name: shop}
---
apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.created}
spec: {schema: {type: object}}
`

func load(t *testing.T, doc string) error {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "defs.yaml"), []byte(common+"---\n"+doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CAUSEWAY_SECRET_BAD", "not-a-whsec-secret!")
	_, err := config.Load(dir, config.Options{Registry: kinds.Default()})
	return err
}

func TestBadSources(t *testing.T) {
	src := func(path, sig, emit string) string {
		return "apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  webhook: {path: " + path + sig + "}\n  emit: " + emit + "\n"
	}
	for doc, want := range map[string]string{
		src("/orders", "", "{type: order.created}"):                                                                                                     `spec.webhook.path: "/orders": a webhook path starts with /hooks/`,
		src("/hooks/a/../b", "", "{type: order.created}"):                                                                                               `a webhook path starts with /hooks/`,
		src("/hooks/a", `, signature: {scheme: standard, secret: "${secret:BAD}"}`, "{type: order.created}"):                                            `spec.webhook.signature.secret: a standard webhook secret is whsec_ followed by base64`,
		src("/hooks/a", `, signature: {scheme: plain, secret: x}`, "{type: order.created}"):                                                             `spec.webhook.signature.scheme: must be one of "standard", "github", got "plain"`,
		src("/hooks/a", "", "{type: order.created, subject: 'o/${{ .body.id | }}'}"):                                                                    `spec.emit.subject: jq: unexpected EOF`,
		src("/hooks/a", "", "{type: order.created, data: {id: '${{ nope }}'}}"):                                                                         `spec.emit.data.id: jq: function not defined: nope/0`,
		src("/hooks/a", "", "{type: order.gone}"):                                                                                                       `spec.emit.type: MessageType "order.gone" is not defined`,
		src("/hooks/a", "", "{type: order.created}") + "---\n" + strings.Replace(src("/hooks/a", "", "{type: order.created}"), "name: s", "name: t", 1): `spec.webhook.path: /hooks/a is also the path of source "t"`,
	} {
		err := load(t, doc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n got %v\nwant %q", doc, err, want)
		}
	}
}

func TestBadPollSources(t *testing.T) {
	for doc, want := range map[string]string{
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  sqlPoll: {query: 'SELECT id FROM t', cursor: id}\n  emit: {type: order.created}\n":                                     `spec.sqlPoll.query: the query must read the rows after :cursor`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  sqlPoll: {query: 'SELECT id FROM t WHERE id > :cursor', cursor: id}\n  emit: {type: order.created}\n":                  `spec.sqlPoll: system "shop" has no sql settings to poll`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  file: {dir: in}\n  emit: {type: order.created}\n":                                                                      `spec.file: system "shop" has no files settings (a directory) to watch`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  file: {dir: /etc}\n  emit: {type: order.created}\n":                                                                    `spec.file.dir: "/etc" must be a subdirectory of the system's directory`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  file: {dir: ../up}\n  emit: {type: order.created}\n":                                                                   `spec.file.dir: "../up" must be a subdirectory of the system's directory`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  file: {pattern: \"[\"}\n  emit: {type: order.created}\n":                                                               `spec.file.pattern: "[": syntax error in pattern`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  file: {format: xml}\n  emit: {type: order.created}\n":                                                                  `spec.file.format`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  mqtt: {topics: [a/b#]}\n  emit: {type: order.created}\n":                                                               `spec.mqtt.topics[0]: "a/b#" is not a topic filter`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  mqtt: {topics: [a/#/b]}\n  emit: {type: order.created}\n":                                                              `spec.mqtt.topics[0]: "a/#/b" is not a topic filter`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  mqtt: {topics: [a]}\n  emit: {type: order.created}\n":                                                                  `spec.mqtt: system "shop" has no mqtt settings to subscribe with`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  nats: {queue: q}\n  emit: {type: order.created}\n":                                                                     `spec.nats: give a subject, or a stream`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  nats: {subject: a.>.b}\n  emit: {type: order.created}\n":                                                               `spec.nats.subject: "a.>.b" is not a subject`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  nats: {stream: S, queue: q}\n  emit: {type: order.created}\n":                                                          `spec.nats.queue: a queue group is for plain subscriptions`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  schedule: {cron: '61 * * * *', call: x}\n  emit: {type: order.created}\n":                                              `spec.schedule.cron: invalid cron expression "61 * * * *"`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  schedule: {cron: '@daily', timezone: Mars/Base, call: x}\n  emit: {type: order.created}\n":                             `spec.schedule.timezone: unknown time zone "Mars/Base"`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  schedule: {cron: '@daily', call: nothing}\n  emit: {type: order.created}\n":                                            `spec.schedule.call: system "shop" has no operation "nothing"`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  schedule: {cron: '@daily', call: x, with: {a: '${{ .tick | }}'}}\n  emit: {type: order.created}\n":                     `spec.schedule.with.a:`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  kafka: {topics: []}\n  emit: {type: order.created}\n":                                                                  `spec.kafka.topics: give at least one topic`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  kafka: {topics: [a]}\n  emit: {type: order.created}\n":                                                                 `spec.kafka: system "shop" has no kafka settings to consume from`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  emit: {type: order.created}\n":                                                                                         `spec: give one trigger: webhook, sqlPoll, amqp, file, mqtt, nats, kafka or schedule`,
		"apiVersion: causeway/v1\nkind: Source\nmetadata: {name: s}\nspec:\n  system: shop\n  webhook: {path: /hooks/a}\n  sqlPoll: {query: 'x :cursor', cursor: id, batchSize: 0}\n  emit: {type: order.created}\n": `spec.sqlPoll.batchSize: must be between 1 and 10000`,
	} {
		err := load(t, doc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n got %v\nwant %q", doc, err, want)
		}
	}
}
