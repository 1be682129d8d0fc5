package system_test

import (
	"strings"
	"testing"
)

func TestSQLSettings(t *testing.T) {
	t.Setenv("CAUSEWAY_SECRET_ERP_DSN", "postgres://u:p@db/erp")
	s, err := loadSystem(t, `spec:
  sql: {driver: postgres, dsn: "${secret:ERP_DSN}"}
  operations:
    get: {sql: {query: "SELECT * FROM orders WHERE id = :id AND tenant = :tenant", one: true}}
    both:
      sql:
        statements:
          - exec: "UPDATE orders SET s = :s WHERE id = :id"
          - query: "SELECT s FROM orders WHERE id = :id"
`)
	if err != nil {
		t.Fatal(err)
	}
	if s.SQL.MaxOpenConns != 10 || s.SQL.Timeout.String() != "30s" || s.SQL.DSN.Reveal() != "postgres://u:p@db/erp" {
		t.Errorf("defaults or secret: %+v", s.SQL)
	}
	get, _ := s.Operation("get")
	both, _ := s.Operation("both")
	if strings.Join(get.SQL.Params(), ",") != "id,tenant" || strings.Join(both.SQL.Params(), ",") != "s,id" {
		t.Errorf("params %v %v", get.SQL.Params(), both.SQL.Params())
	}
}

func TestInvalidSQLSettings(t *testing.T) {
	for spec, want := range map[string]string{
		"spec: {kafka: {brokers: []}}\n":                                                                                                         `spec.kafka.brokers: give at least one broker, host:port`,
		"spec: {kafka: {brokers: [kafka]}}\n":                                                                                                    `spec.kafka.brokers[0]: "kafka" is not host:port`,
		"spec: {operations: {send: {kafka: {topic: t}}}}\n":                                                                                      `operation "send" produces to Kafka, but the system has no kafka settings`,
		"spec: {kafka: {brokers: [k:9092], sasl: {mechanism: GSSAPI, username: u, password: p}}}\n":                                              `spec.kafka.sasl.mechanism: must be one of`,
		"spec: {sql: {driver: sqlserver, dsn: \"sqlserver://u:p@host:notaport?database=db\"}}\n":                                                 `spec.sql.dsn: not a SQL Server connection string`,
		"spec: {sql: {driver: sqlserver, dsn: \"sqlserver://u:p@h:1433\"}, operations: {get: {sql: {query: \"SELECT [a FROM t\"}}}}\n":           `unterminated [ quote`,
		"spec: {sql: {driver: oracle, dsn: x}}\n":                                                                                                `spec.sql.driver: must be one of "postgres", "mysql", "sqlserver", "sqlite", got "oracle"`,
		"spec: {sql: {driver: sqlite}}\n":                                                                                                        `spec.sql.dsn: required field missing`,
		"spec: {sql: {driver: sqlite, dsn: x, maxOpenConns: 0}}\n":                                                                               `spec.sql.maxOpenConns: must be at least 1`,
		"spec: {operations: {get: {sql: {query: SELECT 1}}}}\n":                                                                                  `operation "get" runs SQL, but the system has no sql settings`,
		"spec: {sql: {driver: sqlite, dsn: x}, operations: {get: {sql: {query: a, exec: b}}}}\n":                                                 `spec.operations.get.sql: give one of query, exec or statements`,
		"spec: {sql: {driver: sqlite, dsn: x}, operations: {get: {sql: {exec: a, one: true}}}}\n":                                                `spec.operations.get.sql.one: one applies to query`,
		"spec: {sql: {driver: sqlite, dsn: x}, operations: {get: {sql: {query: \"SELECT 'a\"}}}}\n":                                              `unterminated ' quote`,
		"spec: {sql: {driver: sqlite, dsn: x}, operations: {get: {sql: {statements: [{}]}}}}\n":                                                  `spec.operations.get.sql.statements[0]: give query or exec (one of them)`,
		"spec: {sql: {driver: sqlite, dsn: x}, http: {baseURL: http://x}, operations: {get: {http: {method: GET, path: /}, sql: {query: a}}}}\n": `operation "get" gives more than one of http, sql, amqp, nats, mqtt, kafka, file and email: give one`,
	} {
		_, err := loadSystem(t, spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %q", spec, err, want)
		}
	}
}
