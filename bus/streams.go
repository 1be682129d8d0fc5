package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// streamConfigs are the streams Causeway needs. MESSAGES is what an outside producer's
// acknowledgement depends on, so it follows the server's sync policy (fsync before ack by
// default). TRACKING is re-derivable bookkeeping and opts out with the async persist mode:
// see docs/durability.md.
func (b *Bus) streamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        StreamMessages,
			Description: "Causeway: every accepted canonical message",
			Subjects:    b.messageSubjects(),
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      b.opts.MaxAge,
			Duplicates:  b.opts.DedupWindow,
			MaxMsgSize:  int32(b.opts.MaxMessageBytes + headerOverhead),
			Replicas:    b.opts.Replicas,
			// Group commit publishes atomic batches; the option is only set when it is
			// used, so that an older external server is not asked for it.
			AllowAtomicPublish: b.grouping(),
			// Fast batches carry a producer's batch without an answer per message.
			AllowBatchPublish: b.fastBatching(),
			// Retry messages wait here (on SubjectSchedules) until they are due.
			AllowMsgSchedules: b.Schedules(),
		},
		{
			Name:        StreamTracking,
			Description: "Causeway: tracking events of messages",
			Subjects:    []string{SubjectTracking + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      b.opts.MaxAge,
			Duplicates:  b.opts.DedupWindow,
			Replicas:    b.opts.Replicas,
			PersistMode: jetstream.AsyncPersistMode,
		},
		{
			// The errors queue: what someone has to look at. It is kept as long as the
			// messages are, and like them fsynced under --sync always.
			Name:        StreamErrors,
			Description: "Causeway: the errors queue",
			Subjects:    []string{SubjectErrors + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      b.opts.MaxAge,
			Duplicates:  b.opts.DedupWindow,
			MaxMsgSize:  int32(b.opts.MaxMessageBytes + headerOverhead),
			Replicas:    b.opts.Replicas,
		},
		{
			// Parked deliveries wait however long their system is down: no age limit,
			// since dropping one would lose it. Their count and age are watched instead.
			Name:        StreamParked,
			Description: "Causeway: deliveries held while their system is offline or in maintenance",
			Subjects:    []string{SubjectParked + ">"},
			Storage:     jetstream.FileStorage,
			// A released delivery leaves the stream: what it holds is what waits.
			Retention:  jetstream.WorkQueuePolicy,
			Discard:    jetstream.DiscardNew,
			Duplicates: b.opts.DedupWindow,
			MaxMsgSize: int32(b.opts.MaxMessageBytes + headerOverhead),
			Replicas:   b.opts.Replicas,
		},
		{
			Name:        StreamNotify,
			Description: "Causeway: alert notifications waiting to be sent",
			Subjects:    []string{SubjectNotify + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.WorkQueuePolicy,
			MaxAge:      7 * 24 * time.Hour,
			Duplicates:  b.opts.DedupWindow,
			Replicas:    b.opts.Replicas,
		},
		{
			// Operators' actions are kept a year whatever the messages' retention: they
			// answer "who did this" long after the messages are gone.
			Name:        StreamAudit,
			Description: "Causeway: operator actions (audit trail)",
			Subjects:    []string{SubjectAudit + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      max(b.opts.MaxAge, 365*24*time.Hour),
			Duplicates:  b.opts.DedupWindow,
			Replicas:    b.opts.Replicas,
		},
		{
			// An invocation matters while its caller waits; a day is plenty to resume the
			// runs a crash interrupted.
			Name:        StreamInvocations,
			Description: "Causeway: invocations of flows by name",
			Subjects:    []string{SubjectInvoke + ">"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      24 * time.Hour,
			Duplicates:  b.opts.DedupWindow,
			MaxMsgSize:  int32(b.opts.MaxMessageBytes + headerOverhead),
			Replicas:    b.opts.Replicas,
		},
	}
}

// messageSubjects are the subjects of MESSAGES: the messages, and the schedules of retry
// messages where the server has schedules.
func (b *Bus) messageSubjects() []string {
	if b.Schedules() {
		return []string{SubjectMessages + ">", SubjectSchedules + ">"}
	}
	return []string{SubjectMessages + ">"}
}

// BucketRuns is the key-value bucket of flow run records (journal and history); its
// stream, KV_CW_RUNS, is what the tracking index reads runs from.
const BucketRuns = "CW_RUNS"

// BucketCursors is the key-value bucket of the cursor of each polling source.
const BucketCursors = "CW_CURSORS"

// BucketSchedules is the key-value bucket of the last tick of each scheduled flow.
const BucketSchedules = "CW_SCHEDULES"

// ensureStreams creates the streams and buckets, or updates them to the configured
// settings, so that a restart with new options (a longer retention, say) takes effect
// without manual steps.
func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, cfg := range b.streamConfigs() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := b.js.CreateOrUpdateStream(ctx, cfg)
		cancel()
		if err != nil {
			return fmt.Errorf("bus: stream %s: %w", cfg.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// One record per run, written when each step starts and ends; its history is the
	// stream's, so only the latest state is kept.
	// The cursor of each polling source, moved only after a batch is stored.
	if _, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketCursors,
		Description: "Causeway: the cursor of each polling source",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
	}); err != nil {
		return fmt.Errorf("bus: bucket %s: %w", BucketCursors, err)
	}
	// The last tick of each scheduled flow, so that a restart knows which ticks it missed.
	if _, err := b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketSchedules,
		Description: "Causeway: the last tick of each scheduled flow",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    b.opts.Replicas,
	}); err != nil {
		return fmt.Errorf("bus: bucket %s: %w", BucketSchedules, err)
	}
	if err := b.ensureJournal(ctx); err != nil {
		return fmt.Errorf("bus: bucket %s: %w", BucketRuns, err)
	}
	return nil
}

// Stream returns a handle on one of Causeway's streams.
func (b *Bus) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	return b.js.Stream(ctx, name)
}

// ensureJournal creates the CW_RUNS bucket's stream with the settings of a key-value bucket
// (as the client library would) and, on the embedded server, the asynchronous persist mode:
// the journal is written before and after every step, and a lost entry only re-runs a step
// with the same idempotency key, so it does not pay for an fsync before each acknowledgement
// (docs/durability.md). The persist mode is fixed when a stream is created; an existing
// stream keeps its own, and only its retention and replicas follow the options.
func (b *Bus) ensureJournal(ctx context.Context) error {
	name := "KV_" + BucketRuns
	dup := 2 * time.Minute
	if b.opts.MaxAge > 0 && b.opts.MaxAge < dup {
		dup = b.opts.MaxAge
	}
	want := jetstream.StreamConfig{
		Name:              name,
		Description:       "Causeway: flow run records (journal and history)",
		Subjects:          []string{"$KV." + BucketRuns + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxAge:            b.opts.MaxAge,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          b.opts.Replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       true,
		Duplicates:        dup,
		Discard:           jetstream.DiscardNew,
	}
	if b.srv != nil {
		want.PersistMode = jetstream.AsyncPersistMode
	}
	s, err := b.js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = b.js.CreateStream(ctx, want)
		return err
	case err != nil:
		return err
	}
	have := s.CachedInfo().Config
	if have.MaxAge == want.MaxAge && have.Replicas == want.Replicas && have.Duplicates == want.Duplicates {
		return nil
	}
	have.MaxAge, have.Replicas, have.Duplicates = want.MaxAge, want.Replicas, want.Duplicates
	_, err = b.js.UpdateStream(ctx, have)
	return err
}
