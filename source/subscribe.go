package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// Subscribing to brokers.
//
// mqtt, nats and kafka sources hold a connection to a system's broker and handle what it sends one
// message at a time: the message is stored on the bus (or kept in ERRORS) before the broker
// hears that it was received, so a crash or a failed store makes the broker send it again.
// A lost connection is made again with a growing wait.

// Subscribers runs the mqtt, nats and kafka sources of a configuration.
type Subscribers struct {
	opts  Options
	subs  []*subscription
	stop  context.CancelFunc
	wg    sync.WaitGroup
	ready sync.WaitGroup
}

// subscription is one source's connection loop.
type subscription struct {
	name string
	spec *Spec
	sys  *system.Spec
	// run connects and handles messages until the connection ends or ctx does; it calls
	// subscribed once the broker confirmed the subscription.
	run func(ctx context.Context, subscribed func()) error
}

// NewSubscribers prepares the mqtt, nats and kafka sources of cfg.
func NewSubscribers(cfg *config.Config, opts Options) *Subscribers {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Subscribers{opts: opts}
	for _, r := range cfg.ByKind(Kind) {
		spec := r.Spec.(*Spec)
		if spec.MQTT == nil && spec.NATS == nil && spec.Kafka == nil {
			continue
		}
		sr, _ := cfg.Get(system.Kind, spec.System)
		sub := &subscription{name: r.Metadata.Name, spec: spec, sys: sr.Spec.(*system.Spec)}
		switch {
		case spec.MQTT != nil:
			sub.run = func(ctx context.Context, subscribed func()) error { return s.runMQTT(ctx, sub, subscribed) }
		case spec.Kafka != nil:
			sub.run = func(ctx context.Context, subscribed func()) error { return s.runKafka(ctx, sub, subscribed) }
		default:
			sub.run = func(ctx context.Context, subscribed func()) error { return s.runNATS(ctx, sub, subscribed) }
		}
		s.subs = append(s.subs, sub)
	}
	return s
}

// Start connects every source in the background until Stop, and waits up to wait for their
// first subscriptions, so that a node that says it is ready gets what is sent from then on.
func (s *Subscribers) Start(wait time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	first := make(chan struct{}, len(s.subs))
	for _, sub := range s.subs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var once sync.Once
			subscribed := func() { once.Do(func() { first <- struct{}{} }) }
			for attempt := 0; ctx.Err() == nil; attempt++ {
				start := time.Now()
				err := sub.run(ctx, subscribed)
				if ctx.Err() != nil {
					return
				}
				if time.Since(start) > time.Minute {
					attempt = 0 // it was connected a good while: not a failing broker
				}
				pause := min(time.Duration(attempt+1)*time.Second, 30*time.Second)
				s.opts.Logger.Warn("source disconnected; connecting again", "source", sub.name, "in", pause, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	deadline := time.After(wait)
	for range s.subs {
		select {
		case <-first:
		case <-deadline:
			s.opts.Logger.Warn("not every mqtt or nats source is subscribed yet; they keep trying")
			return
		}
	}
}

// Stop ends every subscription; what was not stored yet the broker sends again.
func (s *Subscribers) Stop() {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
}

// delivery is what a broker sent, in the terms every subscription shares.
type delivery struct {
	payload    []byte
	deliveryID string
	// input holds the trigger's own fields of the emit input; body is added.
	input map[string]any
	// headers go into an ERRORS entry.
	headers map[string]string
}

// store maps a delivery to a message and stores it, or keeps it in ERRORS. It returns the
// message id (or the ERRORS entry's, with kept set), and an error only when nothing was
// stored, so that the broker sends it again.
func (s *Subscribers) store(ctx context.Context, sub *subscription, d delivery) (id string, kept bool, err error) {
	var body any = string(d.payload)
	if v, err := expr.DecodeJSON(d.payload); err == nil {
		body = v
	} else if !utf8.Valid(d.payload) {
		body = nil
	}
	d.input["body"] = body
	ev, merr := mapEvent(ctx, s.opts, sub.spec, d.input, body, d.deliveryID)
	if merr != nil {
		raw := d.payload
		if len(raw) > errorBodyBytes {
			raw = raw[:errorBodyBytes]
		}
		eid, err := keepError2(ctx, s.opts.Bus, sub.name, d.deliveryID, raw, d.headers, merr)
		if err != nil {
			return "", false, err
		}
		s.opts.Metrics.count(sub.name, "errors", 1)
		s.opts.Logger.Warn("source event kept in the ERRORS stream", "source", sub.name, "error", eid, "reason", merr)
		return eid, true, nil
	}
	if err := s.opts.Bus.PublishAll(ctx, []*message.Event{ev}, s.opts.Node); err != nil {
		return "", false, err
	}
	s.opts.Metrics.count(sub.name, "accepted", 1)
	return ev.ID, false, nil
}

// replyBody is the answer to a NATS request: the stored message's id, or why it was not.
func replyBody(id string, kept bool, err error) []byte {
	var v map[string]string
	switch {
	case err != nil:
		v = map[string]string{"error": "not stored; send it again: " + err.Error()}
	case kept:
		v = map[string]string{"error": id, "reason": "kept in ERRORS"}
	default:
		v = map[string]string{"id": id}
	}
	b, _ := json.Marshal(v)
	return b
}

// errClosed is a connection the broker or the network ended.
var errClosed = errors.New("the connection closed")

// errorf wraps a connection error with the source's name.
func errorf(sub *subscription, format string, args ...any) error {
	return fmt.Errorf("source %s: "+format, append([]any{sub.name}, args...)...)
}
