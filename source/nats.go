package source

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runNATS subscribes to a subject of a system's NATS server, or consumes one of its
// JetStream streams with a durable consumer. A stream's messages are acknowledged after
// they are stored (and sent again by the server otherwise); a plain subscription has no
// acknowledgements, so it gets only what is sent while the node is connected; a request
// (a message with a reply subject) is answered once its message is stored, which gives the
// sender the same guarantee as the HTTP API.
func (s *Subscribers) runNATS(ctx context.Context, sub *subscription, subscribed func()) error {
	nc, err := nats.Connect(sub.sys.NATS.URL.Reveal(), nats.Name("causeway source "+sub.name),
		nats.Timeout(10*time.Second), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false))
	if err != nil {
		// The URL may hold a password: say what failed without quoting it.
		if errors.Is(err, nats.ErrNoServers) {
			return errorf(sub, "no NATS server reachable at the system's url")
		}
		return errorf(sub, "connecting: %v", errors.Unwrap(err))
	}
	defer nc.Close()
	if sub.spec.NATS.Stream != "" {
		return s.consumeStream(ctx, sub, nc, subscribed)
	}
	cfg := sub.spec.NATS
	msgs := make(chan *nats.Msg, 256)
	var ns *nats.Subscription
	if cfg.Queue != "" {
		ns, err = nc.ChanQueueSubscribe(cfg.Subject, cfg.Queue, msgs)
	} else {
		ns, err = nc.ChanSubscribe(cfg.Subject, msgs)
	}
	if err != nil {
		return errorf(sub, "subscribing to %s: %w", cfg.Subject, err)
	}
	defer func() { _ = ns.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return errorf(sub, "subscribing to %s: %w", cfg.Subject, err)
	}
	s.opts.Logger.Info("subscribed", "source", sub.name, "subject", cfg.Subject)
	subscribed()
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			return errorf(sub, "%w", errClosed)
		case m := <-msgs:
			id, kept, err := s.store(ctx, sub, natsDelivery(sub, m, ""))
			if err != nil {
				s.opts.Logger.Warn("nats message not stored", "source", sub.name, "subject", m.Subject, "err", err)
			}
			if m.Reply != "" {
				_ = m.Respond(replyBody(id, kept, err))
			}
		}
	}
}

// consumeStream reads a stream through a durable consumer, created when missing.
func (s *Subscribers) consumeStream(ctx context.Context, sub *subscription, nc *nats.Conn, subscribed func()) error {
	cfg := sub.spec.NATS
	js, err := jetstream.New(nc)
	if err != nil {
		return errorf(sub, "%w", err)
	}
	durable := cfg.Consumer
	if durable == "" {
		durable = "causeway-" + sub.name
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(cctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 10 * time.Second,
		FilterSubject: cfg.Subject, MaxAckPending: 256,
	})
	if err != nil {
		return errorf(sub, "consumer %s on stream %s: %w", durable, cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return errorf(sub, "consuming stream %s: %w", cfg.Stream, err)
	}
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		it.Stop()
	}()
	s.opts.Logger.Info("consuming", "source", sub.name, "stream", cfg.Stream, "consumer", durable)
	subscribed()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return errorf(sub, "consuming stream %s: %w", cfg.Stream, err)
		}
		seq := ""
		if md, err := m.Metadata(); err == nil {
			seq = strconv.FormatUint(md.Sequence.Stream, 10)
		}
		nm := &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()}
		if _, _, err := s.store(ctx, sub, natsDelivery(sub, nm, seq)); err != nil {
			s.opts.Logger.Warn("nats stream message not stored; the server sends it again", "source", sub.name, "stream", cfg.Stream, "seq", seq, "err", err)
			_ = m.NakWithDelay(time.Second)
			continue
		}
		_ = m.Ack()
	}
}

// natsDelivery puts a NATS message into the emit input: {body, subject, headers, seq}. The
// delivery id is the Nats-Msg-Id header, or for a stream's message its stream sequence.
func natsDelivery(sub *subscription, m *nats.Msg, seq string) delivery {
	headers := map[string]any{}
	flat := map[string]string{"subject": m.Subject}
	for k, v := range m.Header {
		if len(v) > 0 {
			headers[k] = v[0]
			flat[k] = v[0]
		}
	}
	d := delivery{payload: m.Data, headers: flat, input: map[string]any{"subject": m.Subject, "headers": headers, "seq": seq}}
	switch {
	case m.Header.Get(nats.MsgIdHdr) != "":
		d.deliveryID = "nats:" + sub.name + ":" + m.Header.Get(nats.MsgIdHdr)
	case seq != "":
		d.deliveryID = "nats:" + sub.name + ":" + sub.spec.NATS.Stream + ":" + seq
	}
	return d
}
