package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/internal/cronspec"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// ScheduleSource calls an operation of the source's system on a cron schedule.
type ScheduleSource struct {
	// Cron is a five-field cron expression or a descriptor.
	Cron string `yaml:"cron" required:"true" doc:"A cron expression with five fields (minute hour day-of-month month day-of-week), or @hourly, @daily, @weekly, @monthly, @yearly, or @every DURATION." example:"*/5 * * * *"`
	// Timezone is the IANA zone the expression is read in.
	Timezone string `yaml:"timezone" default:"UTC" doc:"The IANA time zone the cron expression is read in." example:"Europe/Amsterdam"`
	// Call names an operation of the source's system.
	Call string `yaml:"call" required:"true" doc:"An operation of the source's system, called at each tick; its result is .result of the emit input." example:"listChangedOrders"`
	// With are the call's parameters, templates over {tick, last}.
	With config.JSON `yaml:"with" doc:"The call's parameters; values may be ${{ jq }} templates over {tick, last}: this tick's time and the last tick whose messages were stored (null the first time), both RFC 3339." example:"{since: \"${{ .last // \\\"1970-01-01T00:00:00Z\\\" }}\"}"`
	// Each emits one message per element of a list result.
	Each bool `yaml:"each" doc:"The result is a list: emit one message per element (.item, .index), none for an empty list. Without it, one message per tick with the whole result."`
}

// provisionSchedule parses the schedule and compiles the call's parameters.
func (s *Spec) provisionSchedule(ctx *config.Context, sc *ScheduleSource) {
	sched, errs := cronspec.Parse(sc.Cron, sc.Timezone)
	for _, e := range errs {
		ctx.Errorf("schedule."+e.Field, "%s", e.Msg)
	}
	s.compiled.schedule = sched
	if !sc.With.IsZero() {
		v, verrs := expr.CompileValue(sc.With.Raw)
		for _, e := range verrs {
			ctx.ErrorAt(sc.With.PosOf(e.Pointer), "spec.schedule.with%s: %v", pointerPath(e.Pointer), e.Err)
		}
		s.compiled.with = v
	}
}

// Scheduled ticks.
//
// At each tick the operation is called and its result turned into messages, whose ids are
// made of the source, the tick's time and the element's index, so that a tick done again
// (after a crash, or by two nodes) stores its messages once. The tick is recorded in the
// CW_CURSORS bucket (as schedule.<source>) only after its messages are stored; a tick that
// failed is not recorded, so the next one's .last still names the last good one and a
// query over "since .last" misses nothing. A node that starts after missing ticks does the
// latest missed one at once.

// Schedulers runs the schedule sources of a configuration.
type Schedulers struct {
	opts    Options
	sources []*scheduleSource
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type scheduleSource struct {
	name string
	spec *Spec
	sys  *system.Spec
}

// NewSchedulers prepares the schedule sources of cfg.
func NewSchedulers(cfg *config.Config, opts Options) *Schedulers {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Schedulers{opts: opts}
	for _, r := range cfg.ByKind(Kind) {
		spec := r.Spec.(*Spec)
		if spec.Schedule == nil {
			continue
		}
		sr, _ := cfg.Get(system.Kind, spec.System)
		s.sources = append(s.sources, &scheduleSource{name: r.Metadata.Name, spec: spec, sys: sr.Spec.(*system.Spec)})
	}
	return s
}

// Start ticks every source in the background until Stop.
func (s *Schedulers) Start() error {
	if len(s.sources) == 0 {
		return nil
	}
	if s.opts.Connectors == nil {
		return errors.New("sources: schedule sources need connectors")
	}
	kv, err := s.opts.Bus.JetStream().KeyValue(context.Background(), bus.BucketCursors)
	if err != nil {
		return fmt.Errorf("sources: cursor bucket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	for _, src := range s.sources {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, src, kv)
		}()
	}
	return nil
}

// Stop ends ticking and waits for the tick in progress.
func (s *Schedulers) Stop() {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
}

// run ticks one source until ctx ends.
func (s *Schedulers) run(ctx context.Context, src *scheduleSource, kv jetstream.KeyValue) {
	sched := src.spec.compiled.schedule
	key := "schedule." + src.name
	var last time.Time
	if e, err := kv.Get(ctx, key); err == nil {
		_ = json.Unmarshal(e.Value(), &last)
	}
	if !last.IsZero() {
		if missed, ok := cronspec.Missed(sched, last, time.Now()); ok {
			s.opts.Logger.Info("ticks were missed while the platform was down; doing the latest once", "source", src.name, "tick", missed)
			last = s.tick(ctx, src, kv, key, missed, last)
		}
	}
	for {
		next := sched.Next(time.Now())
		if next.IsZero() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		last = s.tick(ctx, src, kv, key, next, last)
	}
}

// tick calls the operation, stores the messages of its result and records the tick; it
// returns the last recorded tick.
func (s *Schedulers) tick(ctx context.Context, src *scheduleSource, kv jetstream.KeyValue, key string, at, last time.Time) time.Time {
	at = at.UTC()
	if err := s.do(ctx, src, at, last); err != nil {
		if ctx.Err() == nil {
			s.opts.Metrics.count(src.name, "failed", 1)
			s.opts.Logger.Warn("schedule source: tick failed; the next tick reads from the last good one", "source", src.name, "tick", at, "err", err)
		}
		return last
	}
	if data, err := json.Marshal(at); err == nil {
		if _, err := kv.Put(ctx, key, data); err != nil {
			s.opts.Logger.Warn("schedule source: tick not recorded", "source", src.name, "err", err)
		}
	}
	return at
}

// do carries out one tick.
func (s *Schedulers) do(ctx context.Context, src *scheduleSource, at, last time.Time) error {
	sc := src.spec.Schedule
	tickID := at.Format(time.RFC3339Nano)
	var lastV any
	if !last.IsZero() {
		lastV = last.UTC().Format(time.RFC3339Nano)
	}
	vars := map[string]any{"tick": tickID, "last": lastV}
	with := map[string]any{}
	if c := src.spec.compiled.with; c != nil {
		v, err := c.Eval(ctx, vars)
		if err != nil {
			return fmt.Errorf("schedule.with: %w", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("schedule.with yields %s, not an object", expr.TypeName(v))
		}
		with = m
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	result, err := s.opts.Connectors.Call(cctx, src.spec.System, src.sys, sc.Call, with,
		connector.CallInfo{IdempotencyKey: "schedule:" + src.name + ":" + tickID})
	if err != nil {
		return err // the connector's error names the call
	}
	items := []any{result}
	if sc.Each {
		list, ok := result.([]any)
		if !ok {
			return fmt.Errorf("call %s.%s returned %s, and each needs a list", src.spec.System, sc.Call, expr.TypeName(result))
		}
		items = list
	}
	base := "schedule:" + src.name + ":" + tickID
	var events []*message.Event
	for i, item := range items {
		input := map[string]any{"tick": tickID, "last": lastV, "result": result, "item": item, "index": i, "body": item}
		id := base + ":" + strconv.Itoa(i)
		ev, err := mapEvent(ctx, s.opts, src.spec, input, item, id)
		if err != nil {
			raw, _ := expr.MarshalJSON(item)
			if len(raw) > errorBodyBytes {
				raw = raw[:errorBodyBytes]
			}
			if kerr := keepError(ctx, s.opts.Bus, src.name, id, raw, map[string]string{"tick": tickID}, err); kerr != nil {
				return kerr
			}
			s.opts.Metrics.count(src.name, "errors", 1)
			continue
		}
		events = append(events, ev)
	}
	for start := 0; start < len(events); start += 1000 {
		if err := s.opts.Bus.PublishAll(ctx, events[start:min(start+1000, len(events))], s.opts.Node); err != nil {
			return err
		}
	}
	s.opts.Metrics.count(src.name, "accepted", len(events))
	return nil
}
