package source

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	kafkaconn "github.com/causeway/causeway/connector/kafka"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
)

// runKafka consumes a source's topics as a member of its consumer group. Offsets are
// committed only after the messages of the records before them are stored, and a
// rebalance waits for the batch in hand, so a crash or a failed store makes the group read
// the records again; their message ids, made of topic, partition and offset, make the
// second reading store nothing new.
func (s *Subscribers) runKafka(ctx context.Context, sub *subscription, subscribed func()) error {
	cfg := sub.spec.Kafka
	group := cfg.Group
	if group == "" {
		group = "causeway-" + sub.name
	}
	start := kgo.NewOffset().AtStart()
	if cfg.Start == "latest" {
		start = kgo.NewOffset().AtEnd()
	}
	opts := append(kafkaconn.ClientOptions(sub.sys.Kafka),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(cfg.Topics...), kgo.ConsumeResetOffset(start),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		// Static membership: a node that restarts (after a crash too) takes its place in
		// the group back at once, instead of waiting out its old session.
		kgo.InstanceID("causeway-"+sub.name+"-"+s.opts.Node))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return errorf(sub, "%w", err)
	}
	defer cl.Close()
	// A poll blocks rebalances until allowed; leaving the group on Close is one.
	defer cl.AllowRebalance()
	s.opts.Logger.Info("consuming", "source", sub.name, "topics", cfg.Topics, "group", group)
	subscribed()
	for {
		fetches := cl.PollRecords(ctx, 500)
		if ctx.Err() != nil {
			return nil
		}
		if fetches.IsClientClosed() {
			return errorf(sub, "%w", errClosed)
		}
		for _, fe := range fetches.Errors() {
			s.opts.Logger.Warn("kafka source: fetch failed", "source", sub.name, "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
		records := fetches.Records()
		if len(records) == 0 {
			cl.AllowRebalance()
			if len(fetches.Errors()) > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(time.Second):
				}
			}
			continue
		}
		if err := s.storeRecords(ctx, sub, records); err != nil {
			// Nothing committed: the group reads these again, on this node's next
			// connection or on another member.
			return errorf(sub, "%d records not stored: %w", len(records), err)
		}
		if err := cl.CommitRecords(ctx, records...); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("kafka source: offsets not committed; the records will be read again and stored once", "source", sub.name, "err", err)
		}
		cl.AllowRebalance()
	}
}

// storeRecords maps a poll's records and stores their messages in one batch; the records
// that cannot be mapped go to ERRORS.
func (s *Subscribers) storeRecords(ctx context.Context, sub *subscription, records []*kgo.Record) error {
	events := make([]*message.Event, 0, len(records))
	for _, r := range records {
		d := kafkaDelivery(sub, r)
		var body any = string(r.Value)
		if v, err := expr.DecodeJSON(r.Value); err == nil {
			body = v
		}
		d.input["body"] = body
		ev, err := mapEvent(ctx, s.opts, sub.spec, d.input, body, d.deliveryID)
		if err != nil {
			raw := r.Value
			if len(raw) > errorBodyBytes {
				raw = raw[:errorBodyBytes]
			}
			if _, kerr := keepError2(ctx, s.opts.Bus, sub.name, d.deliveryID, raw, d.headers, err); kerr != nil {
				return kerr
			}
			s.opts.Metrics.count(sub.name, "errors", 1)
			continue
		}
		events = append(events, ev)
	}
	if len(events) > 0 {
		if err := s.opts.Bus.PublishAll(ctx, events, s.opts.Node); err != nil {
			return err
		}
	}
	s.opts.Metrics.count(sub.name, "accepted", len(events))
	return nil
}

// kafkaDelivery puts a record into the emit input: {body, topic, partition, offset, key,
// headers, timestamp}. The delivery id is the record's message-id header, or its topic,
// partition and offset.
func kafkaDelivery(sub *subscription, r *kgo.Record) delivery {
	headers := map[string]any{}
	flat := map[string]string{"topic": r.Topic, "partition": strconv.Itoa(int(r.Partition)), "offset": strconv.FormatInt(r.Offset, 10)}
	msgID := ""
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
		flat[h.Key] = string(h.Value)
		if h.Key == "message-id" {
			msgID = string(h.Value)
		}
	}
	d := delivery{payload: r.Value, headers: flat, input: map[string]any{
		"topic": r.Topic, "partition": int(r.Partition), "offset": r.Offset, "key": string(r.Key),
		"headers": headers, "timestamp": r.Timestamp.UTC().Format(time.RFC3339Nano)}}
	if msgID != "" {
		d.deliveryID = "kafka:" + sub.name + ":" + msgID
	} else {
		d.deliveryID = "kafka:" + sub.name + ":" + r.Topic + ":" + strconv.Itoa(int(r.Partition)) + ":" + strconv.FormatInt(r.Offset, 10)
	}
	return d
}
