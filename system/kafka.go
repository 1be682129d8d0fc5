package system

import (
	"net"
	"strconv"

	"github.com/causeway/causeway/config"
)

// Kafka is how the platform reaches a system through a Kafka cluster.
type Kafka struct {
	// Brokers are the seed brokers.
	Brokers []string `yaml:"brokers" required:"true" doc:"Seed brokers, host:port; the client finds the rest of the cluster from them." example:"[kafka-1:9092, kafka-2:9092]"`
	// TLS turns on TLS to the brokers.
	TLS bool `yaml:"tls" doc:"Connect to the brokers over TLS (system roots, TLS 1.2 at least)."`
	// SASL authenticates the client.
	SASL *KafkaSASL `yaml:"sasl" doc:"SASL authentication: PLAIN or SCRAM."`
	// ClientID names the client to the brokers.
	ClientID string `yaml:"clientID" doc:"The client id the brokers see; by default causeway."`
}

// KafkaSASL is SASL authentication to Kafka.
type KafkaSASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism" default:"SCRAM-SHA-512" enum:"PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" doc:"The SASL mechanism."`
	// Username is the SASL user.
	Username string `yaml:"username" required:"true" doc:"The SASL user name."`
	// Password is the SASL password, a secret.
	Password config.Secret `yaml:"password" required:"true" doc:"The SASL password." example:"${secret:KAFKA_PASSWORD}"`
}

// KafkaOperation produces a record to a topic.
type KafkaOperation struct {
	// Topic is where the record goes; a template.
	Topic string `yaml:"topic" required:"true" doc:"The topic; a template over the call's with (.params)." example:"orders"`
	// Key is the record key; a template. Records with one key go to one partition, in order.
	Key string `yaml:"key" doc:"The record key, a template over the call's with (.params); records with one key stay in order on one partition." example:"${{ .params.orderId }}"`
}

// validateKafka checks the Kafka settings and operations.
func (s *Spec) validateKafka(ctx *config.Context) {
	if k := s.Kafka; k != nil {
		if len(k.Brokers) == 0 {
			ctx.Errorf("kafka.brokers", "give at least one broker, host:port")
		}
		for i, b := range k.Brokers {
			host, port, err := net.SplitHostPort(b)
			if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
				ctx.Errorf("kafka.brokers["+strconv.Itoa(i)+"]", "%q is not host:port", b)
			}
		}
	}
	for _, name := range sortedOps(s) {
		if op := s.Operations[name]; op.Kafka != nil && s.Kafka == nil {
			ctx.Errorf(config.MapPath("operations", name)+".kafka", "operation %q produces to Kafka, but the system has no kafka settings", name)
		}
	}
}
