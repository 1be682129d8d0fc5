package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	sqlconn "github.com/causeway/causeway/connector/sql"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// Polling.
//
// A sqlPoll source reads the rows after its cursor, maps each to a message, stores the
// messages on the bus, and only then moves the cursor, which lives in the CW_CURSORS bucket.
// A crash between storing and moving re-reads the batch: the messages are published again
// with the same ids, and the bus keeps one of each (within its de-duplication window), so
// every row becomes exactly one message.

// Poller runs the sqlPoll sources of a configuration.
type Poller struct {
	opts    Options
	log     *slog.Logger
	sql     *sqlconn.Client
	sources []*pollSource
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type pollSource struct {
	name string
	spec *Spec
	sys  *system.Spec
}

// NewPoller prepares the sqlPoll sources of cfg.
func NewPoller(cfg *config.Config, opts Options) *Poller {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Poller{opts: opts, log: opts.Logger.With("component", "sources"), sql: sqlconn.New(opts.Registerer)}
	for _, r := range cfg.ByKind(Kind) {
		s := r.Spec.(*Spec)
		if s.SQLPoll == nil {
			continue
		}
		sr, _ := cfg.Get(system.Kind, s.System)
		p.sources = append(p.sources, &pollSource{name: r.Metadata.Name, spec: s, sys: sr.Spec.(*system.Spec)})
	}
	return p
}

// Start polls every source in the background until Stop.
func (p *Poller) Start() error {
	if len(p.sources) == 0 {
		return nil
	}
	kv, err := p.opts.Bus.JetStream().KeyValue(context.Background(), bus.BucketCursors)
	if err != nil {
		return fmt.Errorf("sources: cursor bucket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	for _, s := range p.sources {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.poll(ctx, s, kv)
		}()
	}
	return nil
}

// Stop ends polling and waits for the batches in progress.
func (p *Poller) Stop() {
	if p.stop != nil {
		p.stop()
	}
	p.wg.Wait()
	p.sql.Close()
}

// poll reads and publishes batches until ctx ends.
func (p *Poller) poll(ctx context.Context, s *pollSource, kv jetstream.KeyValue) {
	cfg := s.spec.SQLPoll
	var cursor any = json.Number("0")
	if !cfg.Initial.IsZero() {
		cursor, _ = expr.DecodeJSON(cfg.Initial.Raw)
	}
	if e, err := kv.Get(ctx, s.name); err == nil {
		if v, err := expr.DecodeJSON(e.Value()); err == nil {
			cursor = v
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) && ctx.Err() == nil {
		p.log.Warn("cursor unreadable; starting from the initial value", "source", s.name, "err", err)
	}
	p.log.Info("polling", "source", s.name, "system", s.spec.System, "cursor", cursor)
	failures := 0
	for ctx.Err() == nil {
		n, next, err := p.batch(ctx, s, cursor)
		if err == nil {
			var data []byte
			if data, err = expr.MarshalJSON(next); err == nil {
				_, err = kv.Put(ctx, s.name, data)
			}
		}
		wait := cfg.Interval
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = min(time.Duration(failures)*time.Second, time.Minute)
			p.log.Warn("poll failed; trying again", "source", s.name, "in", wait, "err", err)
		case err == nil:
			failures = 0
			cursor = next
			if n == cfg.BatchSize {
				wait = 0 // a full batch: there may be more right away
			}
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
}

// batch reads one batch after cursor, stores its messages, and returns how many rows it
// read and the cursor after them.
func (p *Poller) batch(ctx context.Context, s *pollSource, cursor any) (int, any, error) {
	cfg := s.spec.SQLPoll
	rows, err := p.sql.Query(ctx, s.spec.System, s.sys, cfg.Query, map[string]any{"cursor": cursor, "limit": cfg.BatchSize})
	if err != nil {
		return 0, cursor, err
	}
	if len(rows) == 0 {
		return 0, cursor, nil
	}
	events := make([]*message.Event, 0, len(rows))
	next := cursor
	var done []map[string]any
	for _, r := range rows {
		row := r.(map[string]any)
		done = append(done, row)
		v := row[cfg.Cursor]
		if cfg.Cursor != "" {
			var ok bool
			if v, ok = row[cfg.Cursor]; !ok {
				return 0, cursor, fmt.Errorf("the query's rows have no column %q (the cursor)", cfg.Cursor)
			}
			next = v
		}
		ev, err := mapEvent(ctx, p.opts, s.spec, map[string]any{"row": row}, row, "")
		if err != nil {
			raw, _ := expr.MarshalJSON(row)
			if kerr := keepError(ctx, p.opts.Bus, s.name, rowID(cfg, row, raw), raw, nil, err); kerr != nil {
				return 0, cursor, kerr
			}
			p.opts.Metrics.count(s.name, "errors", 1)
			p.log.Warn("row kept in the ERRORS stream", "source", s.name, "cursor", v, "reason", err)
			continue
		}
		events = append(events, ev)
	}
	if len(events) > 0 {
		if err := p.opts.Bus.PublishAll(ctx, events, p.opts.Node); err != nil {
			return 0, cursor, err
		}
		p.opts.Metrics.count(s.name, "accepted", len(events))
	}
	if cfg.Done != "" {
		// The outbox: the rows go only once their messages are stored. A crash before
		// this reads them again; their messages carry the same ids and are stored once.
		if err := p.sql.ExecEach(ctx, s.spec.System, s.sys, cfg.Done, done); err != nil {
			return 0, cursor, fmt.Errorf("done: %w", err)
		}
	}
	return len(rows), next, nil
}

// rowID names a row for the ERRORS stream's de-duplication: its cursor value, or its whole
// content in outbox mode.
func rowID(cfg *SQLPoll, row map[string]any, raw []byte) string {
	if cfg.Cursor != "" {
		return fmt.Sprint(row[cfg.Cursor])
	}
	return string(raw)
}
