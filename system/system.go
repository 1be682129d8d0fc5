// Package system implements the System kind: one external system the platform talks to,
// where it lives, how to reach it over HTTP, and the named operations flows call. Other
// connectors, health probes and delivery policies are added to the spec as the platform
// grows.
package system

import (
	"regexp"
	"strings"

	"github.com/causeway/causeway/config"
)

// Kind is the kind name of system definitions.
const Kind = "System"

// LocationCloud is the location of a system the platform reaches directly.
const LocationCloud = "cloud"

// agentPrefix starts the location of a system reached through an on-premises agent.
const agentPrefix = "agent:"

const kindDoc = `A System describes one external system the platform exchanges messages with, such as a
web shop, an ERP or a CRM, and where it lives: reachable directly from the platform, or only
through an agent running inside the network that hosts it.`

const kindExample = `apiVersion: causeway/v1
kind: System
metadata:
  name: erp
  description: The ERP system in the Rotterdam plant, reached through the plant's agent
  labels:
    team: finance
spec:
  location: agent:rotterdam
  http:
    baseURL: https://erp.rotterdam.example.com/api
    timeout: 10s
    auth:
      bearer: ${secret:ERP_TOKEN}
  operations:
    markShipped:
      description: Mark an order as shipped
      http:
        method: POST
        path: /orders/{orderId}/ship`

// Spec is the spec of a System.
type Spec struct {
	// Location is "cloud" or "agent:<name>".
	Location string `yaml:"location" default:"cloud" doc:"Where the system lives: cloud when the platform reaches it directly, or agent:<name> when only the on-premises agent of that name can reach it; the name is a DNS label (lowercase letters, digits and '-', at most 63 characters)." example:"agent:rotterdam"`
	// HTTP is how to reach the system over HTTP.
	HTTP *HTTP `yaml:"http" doc:"How to reach the system over HTTP: base URL, authentication, timeout."`
	// SQL is how to reach the system through its database.
	SQL *SQL `yaml:"sql" doc:"How to reach the system through its database: driver, connection string, pool."`
	// AMQP is how to reach the system through an AMQP 0.9.1 broker.
	AMQP *AMQP `yaml:"amqp" doc:"How to reach the system through an AMQP 0.9.1 broker (RabbitMQ)."`
	// NATS is how to reach the system through a NATS server of its own.
	NATS *NATS `yaml:"nats" doc:"How to reach the system through a NATS server of its own (not the platform's bus)."`
	// MQTT is how to reach the system through an MQTT broker.
	MQTT *MQTT `yaml:"mqtt" doc:"How to reach the system through an MQTT broker (MQTT 5)."`
	// Kafka is how to reach the system through a Kafka cluster.
	Kafka *Kafka `yaml:"kafka" doc:"How to reach the system through a Kafka cluster: brokers, TLS, SASL."`
	// Files is how to reach the system through a directory.
	Files *Files `yaml:"files" doc:"How to reach the system through a directory of files, local or mounted."`
	// SFTP is how to reach the system through an SFTP server.
	SFTP *SFTP `yaml:"sftp" doc:"How to reach the system through an SFTP server; its file operations write there."`
	// SMTP is how to send the system email.
	SMTP *SMTP `yaml:"smtp" doc:"How to send email through a mail server (SMTP)."`
	// Health is what tells whether the system is up.
	Health *Health `yaml:"health" doc:"What tells whether the system is up: a health probe, the circuit breaker over real calls, and maintenance windows. Together with manual switches they make its status: online, degraded, offline or maintenance."`
	// Delivery is how failed calls to the system are tried again.
	Delivery *Delivery `yaml:"delivery" doc:"How calls to the system that fail transiently are tried again (retry messages), and when they go to the errors queue. Defaults: 5 retries, exponential from 5s to 10m, 20% jitter."`
	// Operations are the named things the system can be asked to do.
	Operations map[string]*Operation `yaml:"operations" doc:"The named operations of the system, which flows call as <system>.<operation>."`
}

var _ config.Validator = (*Spec)(nil)

// Register adds the System kind to a registry.
func Register(r *config.Registry) error {
	return r.Register(config.Kind{Name: Kind, Doc: kindDoc, Example: kindExample, New: func() any { return new(Spec) }})
}

// dnsLabel is an RFC 1123 label, the form agent names take so that they can appear in host
// names and subjects.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Validate checks the location, the HTTP settings and the operations.
func (s *Spec) Validate(ctx *config.Context) error {
	if s.Location != LocationCloud {
		name, ok := strings.CutPrefix(s.Location, agentPrefix)
		switch {
		case !ok:
			ctx.Errorf("location", "invalid location %q: use %q or \"agent:<name>\"", s.Location, LocationCloud)
		case !dnsLabel.MatchString(name):
			ctx.Errorf("location", "invalid agent name %q: use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", name)
		}
	}
	s.validateHTTP(ctx)
	s.validateSQL(ctx)
	s.validateAMQP(ctx)
	s.validateNATS(ctx)
	s.validateMQTT(ctx)
	s.validateKafka(ctx)
	s.validateFiles(ctx)
	s.validateSFTP(ctx)
	s.validateDelivery(ctx)
	s.validateHealth(ctx)
	s.validateSMTP(ctx)
	return ctx.Err()
}

// Agent returns the name of the agent that reaches the system, and false for a system in
// the cloud.
func (s *Spec) Agent() (string, bool) {
	return strings.CutPrefix(s.Location, agentPrefix)
}
