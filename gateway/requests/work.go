package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The worker's limits.
const (
	// maxAttempts is how many runs a queued request gets before it fails for good.
	maxAttempts = 10
	// ackWait is how long an entry may be out without word before it is redelivered; a run
	// that lasts longer (or waits for its system) says it is in progress every
	// progressEvery. It is also how long a system's queue stalls after the node holding its
	// head entry dies, since the queue lets one entry out at a time: short, with three
	// progress notes per wait as the margin against a busy node.
	ackWait       = 10 * time.Second
	progressEvery = 3 * time.Second
	// scanEvery is how often the queue is looked at for systems with entries (and the depth
	// gauge updated).
	scanEvery = 2 * time.Second
	// maxRetryAfter bounds the wait a Retry error asks for: while it lasts, the system's
	// whole queue waits behind the entry.
	maxRetryAfter = 5 * time.Minute
)

// TransientError is an error that says whether trying again later may succeed. Its method is
// the one the connectors' errors have, so a run can return those as they are.
type TransientError interface {
	error
	TransientError() bool
}

// Retry marks err as transient: the worker runs the request again after the wait after, or
// after its usual backoff when after is 0.
func Retry(err error, after time.Duration) error { return &retryError{err: err, after: after} }

// retryError is what Retry returns.
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string {
	if e.err == nil {
		return "try again later"
	}
	return e.err.Error()
}

func (e *retryError) Unwrap() error { return e.err }

// TransientError says that the run may be tried again.
func (e *retryError) TransientError() bool { return true }

// transient reports whether err is worth trying again, and the wait it asks for (0 for the
// usual backoff).
func transient(err error) (bool, time.Duration) {
	var re *retryError
	if errors.As(err, &re) {
		return true, re.after
	}
	var te TransientError
	if errors.As(err, &te) {
		return te.TransientError(), 0
	}
	return false, 0
}

// Work runs this node's share of the queue until ctx ends or the store is closed, and
// returns nil then. Each system with queued requests gets a durable consumer that all nodes
// share and that lets one entry out at a time, so that a system's requests run in the order
// they were accepted, one at a time. For each entry, the worker acknowledges it without
// running it when the request has a result already (a redelivery); defers it without
// counting an attempt while Available says the system cannot take calls; and otherwise
// records an attempt and calls run. A run that fails with a transient error (Retry, or a
// TransientError that says so) is tried again with a backoff of 1s doubling to 1m, up to 10
// attempts; any other outcome is stored with Complete and the entry acknowledged. While an
// entry waits for its system or for its next attempt, the entries behind it wait too: that
// is the price of the order.
func (s *Store) Work(ctx context.Context, run func(ctx context.Context, rec Record) (Result, error)) error {
	if run == nil {
		return errors.New("requests: work: no run function")
	}
	// Close waits for Work to return, so that no run outlives the store.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	var wg sync.WaitGroup
	workers := map[string]bool{}
	seen := map[string]bool{}
	tick := time.NewTicker(scanEvery)
	defer tick.Stop()
	for {
		depths, err := s.depths(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("gateway queue: reading its depth", "err", err)
		}
		for system, n := range depths {
			s.metrics.depth.WithLabelValues(system).Set(float64(n))
			seen[system] = true
			if n > 0 && !workers[system] {
				workers[system] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.workSystem(ctx, system, run)
				}()
			}
		}
		if err == nil {
			for system := range seen {
				if _, ok := depths[system]; !ok {
					s.metrics.depth.WithLabelValues(system).Set(0)
				}
			}
		}
		select {
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return nil
		case <-tick.C:
		case <-s.kick:
		}
	}
}

// depths returns the number of queued requests per system.
func (s *Store) depths(ctx context.Context) (map[string]uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := s.queue.Info(cctx, jetstream.WithSubjectFilter(subjectQueue+">"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(subj, subjectQueue)] = n
	}
	return out, nil
}

// consumer binds the durable consumer of a system's queue, creating it when needed. It
// lets one entry out at a time across all nodes, and never gives up on one: only the
// worker's own attempt count, which leaves out the waits for the system, does. A consumer
// left idle for a day (a system no longer used) is removed by the server; the entries
// stay in the stream, and the next worker creates it again.
func (s *Store) consumer(ctx context.Context, system string) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.js.CreateOrUpdateConsumer(cctx, QueueStream, jetstream.ConsumerConfig{
		Durable:           "gwqueue_" + durableName(system),
		Description:       "Causeway: runs the gateway requests queued for system " + system,
		FilterSubject:     subjectQueue + system,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           ackWait,
		MaxAckPending:     1,
		MaxDeliver:        -1,
		InactiveThreshold: 24 * time.Hour,
	})
}

// workSystem takes a system's queued requests one at a time until ctx ends.
func (s *Store) workSystem(ctx context.Context, system string, run func(context.Context, Record) (Result, error)) {
	log := s.log.With("system", system)
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			c, err := s.consumer(ctx, system)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("gateway queue: binding the consumer; trying again", "err", err)
				}
				sleep(ctx, time.Second)
				continue
			}
			cons = c
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				log.Warn("gateway queue: fetching; trying again", "err", err)
				cons = nil
				sleep(ctx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			s.handle(ctx, system, m, run)
		}
		cancel()
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Debug("gateway queue: fetch ended", "err", err)
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				cons = nil
			}
		}
	}
}

// handle works one queue entry.
func (s *Store) handle(ctx context.Context, system string, m jetstream.Msg, run func(context.Context, Record) (Result, error)) {
	var rec Record
	if err := json.Unmarshal(m.Data(), &rec); err != nil || !idPattern.MatchString(rec.ID) {
		// Nothing can run an entry that cannot be read; keeping it would block the queue.
		s.log.Error("unreadable gateway queue entry; dropped", "system", system, "request", m.Headers().Get(HeaderRequestID), "err", err)
		_ = m.Term()
		s.metrics.runs.WithLabelValues("invalid").Inc()
		return
	}
	rec.System = system
	log := s.log.With("request", rec.ID, "system", system)
	res, err := s.result(ctx, rec.ID)
	if err != nil {
		s.later(ctx, m, log, err)
		return
	}
	if res != nil {
		// The request has run: this is a redelivery after a crash between storing the
		// result and acknowledging, or a duplicate entry. Running it again would repeat
		// its call.
		_ = m.Ack()
		s.metrics.runs.WithLabelValues("duplicate").Inc()
		log.Info("queued request has a result already; not run again")
		return
	}
	if err := s.ensureRecord(ctx, &rec, log); err != nil {
		s.later(ctx, m, log, err)
		return
	}
	if ok, hint := s.available(system); !ok {
		// Waiting for the system is not an attempt; the consumer holds the system's
		// other entries back behind this one.
		_ = m.NakWithDelay(min(max(hint, time.Second), 30*time.Second))
		s.metrics.runs.WithLabelValues("waiting").Inc()
		log.Debug("system not available; queued request waits")
		return
	}
	var a attempt
	if _, err := s.last(ctx, rec.ID, "attempt", &a, nil); err != nil {
		s.later(ctx, m, log, err)
		return
	}
	if a.Attempt >= maxAttempts {
		// The last attempt ran but its outcome was not stored (the node stopped).
		s.finish(ctx, m, &rec, failure(Result{}, fmt.Errorf("gave up after %d attempts; the last one did not finish", a.Attempt), true), "exhausted", log)
		return
	}
	n := a.Attempt + 1
	// The attempt is recorded before the run, so that a run a crash cuts short counts.
	if err := s.recordAttempt(ctx, rec.ID, n); err != nil {
		s.later(ctx, m, log, err)
		return
	}
	log.Info("running queued request", "attempt", n, "kind", rec.Kind)
	out, runErr := s.runWithProgress(ctx, m, rec, run)
	if runErr == nil {
		outcome := "completed"
		if out.failed() {
			outcome = "failed"
		}
		s.finish(ctx, m, &rec, out, outcome, log)
		return
	}
	if ctx.Err() != nil {
		// The node is stopping: another node, or this one after its restart, runs the
		// request again.
		_ = m.Nak()
		log.Info("node stopping during a queued run; the request will run again", "attempt", n, "err", runErr)
		return
	}
	retry, after := transient(runErr)
	if retry && n < maxAttempts {
		delay := s.backoff(n)
		if after > 0 {
			delay = min(after, maxRetryAfter)
		}
		_ = m.NakWithDelay(delay)
		s.metrics.runs.WithLabelValues("retried").Inc()
		log.Warn("queued request failed; it is tried again", "attempt", n, "in", delay, "err", runErr)
		return
	}
	outcome := "failed"
	if retry {
		outcome = "exhausted"
		runErr = fmt.Errorf("gave up after %d attempts: %w", n, runErr)
	}
	log.Warn("queued request failed for good", "attempt", n, "err", runErr)
	s.finish(ctx, m, &rec, failure(out, runErr, retry), outcome, log)
}

// later returns an entry the worker could not look into (the bus did not answer) for
// another try soon.
func (s *Store) later(ctx context.Context, m jetstream.Msg, log *slog.Logger, err error) {
	_ = m.NakWithDelay(time.Second)
	if ctx.Err() == nil {
		log.Warn("gateway queue: the bus did not answer; the entry is tried again", "err", err)
	}
}

// available asks whether a system can take calls now.
func (s *Store) available(system string) (bool, time.Duration) {
	if s.opts.Available == nil {
		return true, 0
	}
	return s.opts.Available(system)
}

// backoff is the wait before attempt n+1: the base doubling from the first, up to 60 times
// the base (1s to 1m).
func (s *Store) backoff(n int) time.Duration {
	d := s.retryBase
	for i := 1; i < n && d < 60*s.retryBase; i++ {
		d *= 2
	}
	return min(d, 60*s.retryBase)
}

// ensureRecord writes the record of a queued request when it is missing: the node that
// accepted it stopped between the queue entry and the record. The message id is the one
// Accept uses, so both make one record.
func (s *Store) ensureRecord(ctx context.Context, rec *Record, log *slog.Logger) error {
	if _, err := s.record(ctx, rec.ID); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, err := s.storeRecord(ctx, *rec); err != nil {
		return err
	}
	log.Warn("queued request had no record (its node stopped while accepting it); recorded it")
	return nil
}

// recordAttempt stores that run n of a request starts.
func (s *Store) recordAttempt(ctx context.Context, id string, n int) error {
	data, err := json.Marshal(attempt{Attempt: n, At: time.Now().UTC(), Node: s.opts.Node})
	if err != nil {
		return err
	}
	if _, err := s.js.Publish(ctx, subject(id, "attempt"), data, jetstream.WithExpectStream(Stream)); err != nil {
		return fmt.Errorf("recording attempt %d: %w", n, err)
	}
	return nil
}

// runWithProgress calls run, telling the bus the entry is in progress while it lasts. A
// run that panics fails the request instead of the node, where it would panic again on
// every redelivery.
func (s *Store) runWithProgress(ctx context.Context, m jetstream.Msg, rec Record, run func(context.Context, Record) (Result, error)) (res Result, err error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("requests: the run of request %s panicked: %v", rec.ID, r)
		}
	}()
	return run(ctx, rec)
}

// failure is the result of a run that failed for good: the run's result when it has a
// server error status, or 502 (a transient failure that did not pass) or 500, with the
// error.
func failure(res Result, err error, transient bool) Result {
	if res.Status < 500 {
		res.Status = http.StatusInternalServerError
		if transient {
			res.Status = http.StatusBadGateway
		}
	}
	if res.Error == "" {
		res.Error = err.Error()
	}
	return res
}

// finish stores a queued request's result and acknowledges its entry. The result must be
// stored first: an entry acknowledged without one would leave the request without an
// outcome. The bus is given a few tries, with the entry kept in progress, and a node
// stopping still stores the result of the run it finished.
func (s *Store) finish(ctx context.Context, m jetstream.Msg, rec *Record, res Result, outcome string, log *slog.Logger) {
	var err error
	for i := range 5 {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = s.complete(sctx, rec, res)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		_ = m.InProgress()
		sleep(ctx, time.Second<<i)
	}
	if err != nil {
		// The entry stays: it runs again, which is better than an outcome lost.
		_ = m.NakWithDelay(5 * time.Second)
		s.metrics.runs.WithLabelValues("unstored").Inc()
		log.Error("result of a queued request not stored; the request will run again", "err", err)
		return
	}
	if err := m.Ack(); err != nil {
		log.Warn("gateway queue: acknowledging; a redelivery finds the result and does not run again", "err", err)
	}
	s.metrics.runs.WithLabelValues(outcome).Inc()
}

// sleep waits d or until ctx ends, and reports whether it waited the whole d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// durableName is a system's name as a consumer name, which may not hold dots: '_' becomes
// "_u" and '.' becomes "_d", so that no two names meet.
func durableName(system string) string {
	return strings.NewReplacer("_", "_u", ".", "_d").Replace(system)
}
