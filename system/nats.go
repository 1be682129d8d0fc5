package system

import (
	"net/url"
	"time"

	"github.com/causeway/causeway/config"
)

// NATS is how the platform reaches a system through a NATS server of its own (not the
// platform's bus).
type NATS struct {
	// URL is the server's address, with credentials if any; a secret.
	URL config.Secret `yaml:"url" required:"true" doc:"The NATS server's address, with credentials if it needs them: nats://user:pass@host:4222 (tls:// for TLS)." example:"${secret:PLANT_NATS_URL}"`
}

// NATSOperation publishes to a subject, or sends a request and waits for its reply.
type NATSOperation struct {
	// Subject is where the message goes; a template over the call's parameters.
	Subject string `yaml:"subject" required:"true" doc:"The subject; a template over the call's with (.params)." example:"plant.orders.${{ .params.line }}"`
	// Request makes the call wait for a reply, which is its result.
	Request bool `yaml:"request" doc:"Send a request and wait for the reply, which becomes the call's result (JSON, or text)."`
	// JetStream makes a publish wait for the server's stream to store it.
	JetStream bool `yaml:"jetstream" doc:"Publish to a JetStream stream and wait until it has stored the message; otherwise a plain publish, flushed to the server."`
	// Timeout bounds a request or a JetStream publish.
	Timeout time.Duration `yaml:"timeout" default:"10s" doc:"How long a request or a JetStream publish may take."`
}

// validateNATS checks the NATS settings and operations.
func (s *Spec) validateNATS(ctx *config.Context) {
	if n := s.NATS; n != nil && !n.URL.IsZero() {
		if u, err := url.Parse(n.URL.Reveal()); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			ctx.Errorf("nats.url", "not a nats:// or tls:// URL")
		}
	}
	for _, name := range sortedOps(s) {
		op := s.Operations[name]
		if op.NATS == nil {
			continue
		}
		field := config.MapPath("operations", name) + ".nats"
		if s.NATS == nil {
			ctx.Errorf(field, "operation %q uses NATS, but the system has no nats settings", name)
		}
		if op.NATS.Request && op.NATS.JetStream {
			ctx.Errorf(field, "give request or jetstream, not both")
		}
		if op.NATS.Timeout <= 0 {
			ctx.Errorf(field+".timeout", "must be positive")
		}
	}
}
