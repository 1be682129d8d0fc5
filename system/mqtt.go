package system

import (
	"net/url"
	"strings"

	"github.com/causeway/causeway/config"
)

// MQTT is how the platform reaches a system through an MQTT broker (MQTT 5).
type MQTT struct {
	// URL is the broker's address with credentials, a secret.
	URL config.Secret `yaml:"url" required:"true" doc:"The broker's address, with credentials if it needs them: mqtt://user:pass@host:1883, or mqtts:// for TLS." example:"${secret:PLANT_MQTT_URL}"`
	// ClientID names the connection at the broker.
	ClientID string `yaml:"clientID" doc:"The client id at the broker; by default causeway-<system>-<node>."`
}

// MQTTOperation publishes a message to a topic.
type MQTTOperation struct {
	// Topic is where the message goes; a template.
	Topic string `yaml:"topic" required:"true" doc:"The topic; a template over the call's with (.params)." example:"plant/${{ .params.line }}/orders"`
	// QoS is 0 (at most once) or 1 (at least once: the call waits for the broker's PUBACK).
	QoS int `yaml:"qos" default:"1" enum:"0,1" doc:"1: the call succeeds once the broker acknowledged the message (PUBACK); 0: once it is sent."`
	// Retain asks the broker to keep the message for later subscribers.
	Retain bool `yaml:"retain" doc:"Ask the broker to keep the message as the topic's last one."`
}

// validateMQTT checks the MQTT settings and operations.
func (s *Spec) validateMQTT(ctx *config.Context) {
	if m := s.MQTT; m != nil && !m.URL.IsZero() {
		if u, err := url.Parse(m.URL.Reveal()); err != nil || (u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
			ctx.Errorf("mqtt.url", "not an mqtt:// or mqtts:// URL")
		}
	}
	for _, name := range sortedOps(s) {
		op := s.Operations[name]
		if op.MQTT == nil {
			continue
		}
		field := config.MapPath("operations", name) + ".mqtt"
		if s.MQTT == nil {
			ctx.Errorf(field, "operation %q publishes to a broker, but the system has no mqtt settings", name)
		}
		if !strings.Contains(op.MQTT.Topic, "${{") && strings.ContainsAny(op.MQTT.Topic, "+#") {
			ctx.Errorf(field+".topic", "%q is not a topic to publish to: + and # are for subscriptions", op.MQTT.Topic)
		}
	}
}
