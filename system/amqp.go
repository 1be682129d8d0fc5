package system

import (
	"net/url"

	"github.com/causeway/causeway/config"
)

// AMQP is how the platform reaches a system through an AMQP 0.9.1 broker (RabbitMQ).
type AMQP struct {
	// URL is the broker's address with credentials, a secret.
	URL config.Secret `yaml:"url" required:"true" doc:"The broker's address with its credentials: amqp://user:pass@host:5672/vhost (amqps:// for TLS)." example:"${secret:BROKER_URL}"`
}

// AMQPOperation publishes a message to an exchange.
type AMQPOperation struct {
	// Exchange is where the message goes; "" is the default exchange.
	Exchange string `yaml:"exchange" doc:"The exchange; leave it out for the default exchange, where the routing key names a queue." example:"orders"`
	// RoutingKey routes the message; a template.
	RoutingKey string `yaml:"routingKey" doc:"The routing key; a template over the call's parameters (.params)." example:"order.${{ .params.region }}"`
	// ContentType is the message's content type.
	ContentType string `yaml:"contentType" default:"application/json" doc:"The content type of the published body."`
}

// validateAMQP checks the AMQP settings and operations.
func (s *Spec) validateAMQP(ctx *config.Context) {
	if a := s.AMQP; a != nil && !a.URL.IsZero() {
		if u, err := url.Parse(a.URL.Reveal()); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			// Not the value: it holds a password.
			ctx.Errorf("amqp.url", "not an amqp:// or amqps:// URL")
		}
	}
	for _, name := range sortedOps(s) {
		if op := s.Operations[name]; op.AMQP != nil && s.AMQP == nil {
			ctx.Errorf(config.MapPath("operations", name)+".amqp", "operation %q publishes to a broker, but the system has no amqp settings", name)
		}
	}
}
