package source

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// Consuming a queue.
//
// An amqp source consumes a queue with manual acknowledgements: a delivery is acknowledged
// only after its message is stored on the bus (or, if it cannot be mapped, after it is kept
// in the ERRORS stream). A crash before that leaves the delivery unacknowledged, and the
// broker delivers it again: at least once, and with a message id made from the AMQP message
// id, stored once.

// Consumers runs the amqp sources of a configuration.
type Consumers struct {
	opts    Options
	sources []*amqpSource
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type amqpSource struct {
	name string
	spec *Spec
	sys  *system.Spec
}

// NewConsumers prepares the amqp sources of cfg.
func NewConsumers(cfg *config.Config, opts Options) *Consumers {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Consumers{opts: opts}
	for _, r := range cfg.ByKind(Kind) {
		s := r.Spec.(*Spec)
		if s.AMQP == nil {
			continue
		}
		sr, _ := cfg.Get(system.Kind, s.System)
		c.sources = append(c.sources, &amqpSource{name: r.Metadata.Name, spec: s, sys: sr.Spec.(*system.Spec)})
	}
	return c
}

// Start consumes every source in the background until Stop, connecting again after a
// lost connection.
func (c *Consumers) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	for _, s := range c.sources {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for attempt := 0; ctx.Err() == nil; attempt++ {
				err := c.consume(ctx, s)
				if ctx.Err() != nil {
					return
				}
				wait := min(time.Duration(attempt+1)*time.Second, 30*time.Second)
				c.opts.Logger.Warn("amqp source disconnected; connecting again", "source", s.name, "in", wait, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}()
	}
}

// Stop ends consuming; deliveries not yet acknowledged go back to the queue.
func (c *Consumers) Stop() {
	if c.stop != nil {
		c.stop()
	}
	c.wg.Wait()
}

// consume connects and handles deliveries until the connection ends or ctx does.
func (c *Consumers) consume(ctx context.Context, s *amqpSource) error {
	conn, err := amqp.DialConfig(s.sys.AMQP.URL.Reveal(), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second), Heartbeat: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("connecting to the broker failed")
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(s.spec.AMQP.Prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, s.spec.AMQP.Queue, "causeway-"+s.name+"-"+c.opts.Node, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consuming %s: %w", s.spec.AMQP.Queue, err)
	}
	c.opts.Logger.Info("consuming", "source", s.name, "queue", s.spec.AMQP.Queue)
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-deliveries:
			if !ok {
				return fmt.Errorf("the broker closed the consumer")
			}
			if err := c.handle(ctx, s, d); err != nil {
				// Not stored: back to the queue, and a pause before the next.
				_ = d.Nack(false, true)
				c.opts.Logger.Warn("amqp delivery not stored; returned to the queue", "source", s.name, "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
				continue
			}
			_ = d.Ack(false)
		}
	}
}

// handle maps one delivery, stores its message (or keeps it in ERRORS), and returns an
// error only when nothing was stored.
func (c *Consumers) handle(ctx context.Context, s *amqpSource, d amqp.Delivery) error {
	var body any = string(d.Body)
	if v, err := expr.DecodeJSON(d.Body); err == nil {
		body = v
	} else if !utf8.Valid(d.Body) {
		body = nil
	}
	headers := map[string]any{}
	for k, v := range d.Headers {
		headers[k] = fmt.Sprint(v)
	}
	input := map[string]any{"body": body, "headers": headers, "messageId": d.MessageId, "routingKey": d.RoutingKey, "exchange": d.Exchange}
	deliveryID := ""
	if d.MessageId != "" {
		deliveryID = "amqp:" + s.spec.AMQP.Queue + ":" + d.MessageId
	}
	ev, err := mapEvent(ctx, c.opts, s.spec, input, body, deliveryID)
	if err != nil {
		hdrs := map[string]string{}
		for k, v := range headers {
			hdrs[k] = fmt.Sprint(v)
		}
		raw, _ := json.Marshal(input)
		if err := keepError(ctx, c.opts.Bus, s.name, d.MessageId, raw, hdrs, err); err != nil {
			return err
		}
		c.opts.Metrics.count(s.name, "errors", 1)
		return nil
	}
	if err := c.opts.Bus.PublishAll(ctx, []*message.Event{ev}, c.opts.Node); err != nil {
		return err
	}
	c.opts.Metrics.count(s.name, "accepted", 1)
	return nil
}
