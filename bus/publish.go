package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/causeway/causeway/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Subject returns the bus subject of a message type.
func Subject(msgType string) string { return SubjectMessages + msgType }

// maxPending bounds the publishes in flight on the connection. A publish beyond it waits for
// room (up to stallWait) instead of failing: that is the back-pressure that keeps a burst
// from turning into errors.
const (
	maxPending = 4096
	stallWait  = 10 * time.Second
)

// PublishAsync sends an accepted message to the MESSAGES stream without waiting for the
// acknowledgement, so that callers can pipeline many publishes and wait for all of them.
// The message id is the de-duplication id. The stream is checked in the acknowledgement
// (waitStored) rather than with an expected-stream header: the header would be stored with
// every message and scanned by the server and every reader of it, about 4% of the node's
// CPU per message (docs/performance.md), while only MESSAGES can hold these subjects (the
// server refuses streams with overlapping subjects).
func (b *Bus) PublishAsync(ev *message.Event, node string) (jetstream.PubAckFuture, error) {
	f, err := b.js.PublishMsgAsync(b.toNATS(ev, node), jetstream.WithStallWait(stallWait))
	if err != nil {
		return nil, fmt.Errorf("bus: publish %s: %w", ev.ID, err)
	}
	return f, nil
}

// PublishAll sends accepted messages to the MESSAGES stream and waits until the stream has
// stored every one of them, or ctx ends. Concurrent calls are grouped into atomic batches
// when group commit is on, and pipelined otherwise. On error some of the messages may be
// stored; each carries its id as the de-duplication id, so resending them is safe.
func (b *Bus) PublishAll(ctx context.Context, events []*message.Event, node string) error {
	if b.group != nil {
		msgs := make([]*nats.Msg, len(events))
		for i, ev := range events {
			msgs[i] = b.toNATS(ev, node)
		}
		return b.group.publish(ctx, msgs)
	}
	if b.lean != nil {
		// The bus is up when its main connection is (Ready says the same): a node whose
		// nats.go connection is down refuses messages on either path.
		if !b.nc.IsConnected() {
			return fmt.Errorf("bus: publish: %w", nats.ErrConnectionClosed)
		}
		// While the lean connection is being replaced, nats.go carries the messages.
		if b.lean.up() {
			return b.lean.publishAll(ctx, events, node)
		}
	}
	if b.fast != nil && len(events) > 1 {
		msgs := make([]*nats.Msg, len(events))
		for i, ev := range events {
			msgs[i] = b.toNATS(ev, node)
		}
		err := b.fast.publish(ctx, msgs)
		if err == nil || ctx.Err() != nil {
			return err
		}
		// One message at a time instead: what was stored is acknowledged as a duplicate.
		b.fast.fallbacks.Add(1)
		b.log.Debug("fast batch not taken whole; publishing its messages one by one", "messages", len(events), "err", err)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	var failed error
	for _, ev := range events {
		f, err := b.PublishAsync(ev, node)
		if err != nil {
			failed = err
			break
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		if _, err := waitStored(ctx, f); err != nil && failed == nil {
			failed = err
		}
	}
	return failed
}

// toNATS is the message as the MESSAGES stream stores it.
func (b *Bus) toNATS(ev *message.Event, node string) *nats.Msg {
	m := ev.ToNATS(Subject(ev.Type))
	if node != "" {
		m.Header[message.HeaderNode] = []string{node}
	}
	return m
}

// Publish sends one message and waits until the stream has stored it.
func (b *Bus) Publish(ctx context.Context, ev *message.Event, node string) (*jetstream.PubAck, error) {
	f, err := b.PublishAsync(ev, node)
	if err != nil {
		return nil, err
	}
	return waitStored(ctx, f)
}

// waitStored waits for a publish to MESSAGES and checks that MESSAGES is what stored it.
func waitStored(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	ack, err := Wait(ctx, f)
	if err == nil && ack.Stream != StreamMessages {
		return nil, fmt.Errorf("bus: publish %s: stored by stream %q, not %s", f.Msg().Header.Get(jetstream.MsgIDHeader), ack.Stream, StreamMessages)
	}
	return ack, err
}

// Wait waits for one asynchronous publish to be acknowledged.
func Wait(ctx context.Context, f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, fmt.Errorf("bus: publish not acknowledged: %w", err)
	case <-ctx.Done():
		return nil, fmt.Errorf("bus: publish not acknowledged: %w", ctx.Err())
	}
}

// PublishWith sends one message with extra headers (such as where a flow's reply goes) and
// waits until the stream has stored it. The headers never replace the message's own.
func (b *Bus) PublishWith(ctx context.Context, ev *message.Event, node string, header map[string]string) (*jetstream.PubAck, error) {
	m := b.toNATS(ev, node)
	for k, v := range header {
		if _, taken := m.Header[k]; !taken {
			m.Header[k] = []string{v}
		}
	}
	ack, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectStream(StreamMessages))
	if err != nil {
		return nil, fmt.Errorf("bus: publish %s: %w", ev.ID, err)
	}
	return ack, nil
}
