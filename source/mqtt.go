package source

import (
	"context"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/paho"

	mqttconn "github.com/causeway/causeway/connector/mqtt"
)

// runMQTT holds one MQTT 5 session. The session is not clean and outlives the connection by
// sessionExpiry, so the broker keeps the subscription and queues QoS 1 messages while the
// node is away. Acknowledgements are manual and sent only after a message is stored; the
// client sends them in the order the messages came, so a message that could not be stored
// holds back the acknowledgements after it, and the connection is dropped so that the
// broker sends them all again.
func (s *Subscribers) runMQTT(ctx context.Context, sub *subscription, subscribed func()) error {
	cfg := sub.spec.MQTT
	conn, err := mqttconn.Dial(ctx, sub.sys.MQTT)
	if err != nil {
		return errorf(sub, "%w", err)
	}
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	pc := paho.NewClient(paho.ClientConfig{
		Conn: conn, PacketTimeout: 10 * time.Second,
		EnableManualAcknowledgment: true, SendAcksInterval: 10 * time.Millisecond,
		OnClientError:      fail,
		OnServerDisconnect: func(d *paho.Disconnect) { fail(fmt.Errorf("the broker disconnected (reason %d)", d.ReasonCode)) },
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if _, _, err := s.store(ctx, sub, mqttDelivery(sub, pr.Packet)); err != nil {
				fail(fmt.Errorf("a message was not stored: %w", err))
				return true, err
			}
			return true, pr.Client.Ack(pr.Packet)
		}},
	})
	id := cfg.ClientID
	if id == "" {
		id = "causeway-source-" + sub.name + "-" + s.opts.Node
	}
	expiry := uint32(cfg.SessionExpiry / time.Second)
	cp := &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: false,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}
	mqttconn.SetCredentials(cp, sub.sys.MQTT)
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if ack, err := pc.Connect(cctx, cp); err != nil {
		_ = conn.Close()
		if ack != nil && ack.ReasonCode >= 0x80 {
			return errorf(sub, "the broker refused the connection: %s (reason %d)", ack.Properties.ReasonString, ack.ReasonCode)
		}
		return errorf(sub, "connecting to the broker: %w", err)
	}
	defer func() { _ = pc.Disconnect(&paho.Disconnect{ReasonCode: 0}) }()
	opts := make([]paho.SubscribeOptions, len(cfg.Topics))
	for i, t := range cfg.Topics {
		opts[i] = paho.SubscribeOptions{Topic: t, QoS: 1}
	}
	sa, err := pc.Subscribe(cctx, &paho.Subscribe{Subscriptions: opts})
	if err != nil {
		return errorf(sub, "subscribing: %w", err)
	}
	for i, code := range sa.Reasons {
		if code >= 0x80 {
			return errorf(sub, "the broker refused the subscription to %q (reason %d)", cfg.Topics[min(i, len(cfg.Topics)-1)], code)
		}
	}
	s.opts.Logger.Info("subscribed", "source", sub.name, "topics", cfg.Topics)
	subscribed()
	select {
	case <-ctx.Done():
		return nil
	case <-pc.Done():
		return errorf(sub, "%w", errClosed)
	case err := <-failed:
		return errorf(sub, "%w", err)
	}
}

// mqttDelivery puts an MQTT message into the emit input: {body, topic, properties,
// contentType, retained}. A user property message-id names the message, so one sent again
// is stored once.
func mqttDelivery(sub *subscription, p *paho.Publish) delivery {
	props := map[string]any{}
	headers := map[string]string{"topic": p.Topic}
	contentType := ""
	var msgID string
	if p.Properties != nil {
		for _, u := range p.Properties.User {
			props[u.Key] = u.Value
			headers[u.Key] = u.Value
		}
		contentType = p.Properties.ContentType
		msgID = p.Properties.User.Get("message-id")
	}
	d := delivery{payload: p.Payload, headers: headers,
		input: map[string]any{"topic": p.Topic, "properties": props, "contentType": contentType, "retained": p.Retain}}
	if msgID != "" {
		d.deliveryID = "mqtt:" + sub.name + ":" + msgID
	}
	return d
}
