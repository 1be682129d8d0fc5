// Package status keeps the status of every system — online, degraded, offline or
// maintenance — in a JetStream key-value bucket that every node sees, and drives it from
// health probes, a circuit breaker over real call outcomes, maintenance windows and
// operators' switches.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/system"
)

// The statuses.
const (
	Online      = "online"
	Degraded    = "degraded"
	Offline     = "offline"
	Maintenance = "maintenance"
)

// Statuses lists them, in order of severity.
var Statuses = []string{Online, Degraded, Offline, Maintenance}

// Causes of a status.
const (
	CauseStart   = "start"   // nothing said otherwise yet
	CauseProbe   = "probe"   // the health probe
	CauseBreaker = "breaker" // the circuit breaker over real calls
	CauseWindow  = "window"  // a maintenance window
	CauseManual  = "manual"  // an operator's switch
)

// Bucket is the key-value bucket of system statuses: "status.<system>" holds the status,
// "manual.<system>" an operator's switch.
const Bucket = "CW_SYSTEMS"

// Status is a system's status as every node sees it.
type Status struct {
	System string    `json:"system"`
	Status string    `json:"status"`
	Since  time.Time `json:"since"`
	// Cause says what set the status; Reason why, in words; Actor who, for a switch.
	Cause  string `json:"cause"`
	Reason string `json:"reason,omitempty"`
	Actor  string `json:"actor,omitempty"`
	// Until is when the status ends by itself: a switch's or window's end, or when an open
	// breaker lets trial calls through.
	Until time.Time `json:"until,omitzero"`
	// Node is the node that recorded it.
	Node string `json:"node,omitempty"`
}

// Available reports whether deliveries may call the system: it is not offline or in
// maintenance.
func (s Status) Available() bool { return s.Status != Offline && s.Status != Maintenance }

// Switch is an operator's manual status.
type Switch struct {
	Status string    `json:"status"`
	Reason string    `json:"reason,omitempty"`
	Actor  string    `json:"actor,omitempty"`
	Set    time.Time `json:"set"`
	// Until ends the switch; zero holds it until it is cleared.
	Until time.Time `json:"until,omitzero"`
}

// Change is a status change, for those who follow them (tracking, audit, alerts).
type Change struct {
	From, To Status
}

// Options configures a Registry.
type Options struct {
	Bus *bus.Bus
	// Systems are the defined systems, by name.
	Systems map[string]*system.Spec
	// Probe checks a system: calls its probe operation, or checks its connections.
	Probe func(ctx context.Context, name string, spec *system.Spec) error
	// OnChange is told of every change this node records (after it is stored).
	OnChange func(Change)
	Node     string
	Logger   *slog.Logger
	// Registerer receives the status metrics.
	Registerer prometheus.Registerer
	// Tick is how often statuses are worked out again (default 1s).
	Tick time.Duration
}

// Registry holds the statuses and works them out.
type Registry struct {
	opts Options
	log  *slog.Logger
	kv   jetstream.KeyValue

	mu      sync.RWMutex
	current map[string]Status
	// view is a copy of current that Get reads without a lock: every gateway request and
	// connector call asks for its system's status, and on two cores even a read lock's
	// shared counter makes the processors take turns. It is replaced, never changed, by
	// publishLocked after every change of current.
	view     atomic.Pointer[map[string]Status]
	revs     map[string]uint64
	switches map[string]Switch
	breakers map[string]*breaker
	probes   map[string]*probeState

	kick   chan struct{}
	stop   context.CancelFunc
	wg     sync.WaitGroup
	gauge  *prometheus.GaugeVec
	change *prometheus.CounterVec
}

// Open binds (creating when needed) the bucket and reads the statuses and switches.
func Open(ctx context.Context, opts Options) (*Registry, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	kv, err := opts.Bus.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "Causeway: system statuses and operators' switches", History: 1,
		Storage: jetstream.FileStorage, Replicas: max(opts.Bus.Replicas(), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("system status bucket: %w", err)
	}
	r := &Registry{opts: opts, log: opts.Logger.With("component", "system-status"), kv: kv,
		current: map[string]Status{}, revs: map[string]uint64{}, switches: map[string]Switch{},
		breakers: map[string]*breaker{}, probes: map[string]*probeState{}, kick: make(chan struct{}, 1),
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_system_status", Help: "1 for the status each system is in, 0 for the others.",
		}, []string{"system", "status"}),
		change: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_system_status_changes_total", Help: "Status changes this node recorded, by system, new status and cause.",
		}, []string{"system", "status", "cause"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.gauge, r.change)
	}
	now := time.Now().UTC()
	for name, spec := range opts.Systems {
		r.current[name] = Status{System: name, Status: Online, Since: now, Cause: CauseStart}
		if b, ok := spec.BreakerPolicy(); ok {
			r.breakers[name] = newBreaker(b)
		}
		if spec.Health != nil && spec.Health.Probe != nil {
			r.probes[name] = &probeState{}
		}
	}
	r.mu.Lock()
	r.publishLocked()
	r.mu.Unlock()
	for name := range opts.Systems {
		if err := r.load(ctx, name); err != nil {
			return nil, err
		}
	}
	r.metrics()
	return r, nil
}

// load reads a system's status and switch from the bucket.
func (r *Registry) load(ctx context.Context, name string) error {
	e, err := r.kv.Get(ctx, "status."+name)
	switch {
	case err == nil:
		var s Status
		if json.Unmarshal(e.Value(), &s) == nil {
			r.mu.Lock()
			r.current[name], r.revs[name] = s, e.Revision()
			r.publishLocked()
			r.mu.Unlock()
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("system %s: status: %w", name, err)
	}
	e, err = r.kv.Get(ctx, "manual."+name)
	switch {
	case err == nil:
		var sw Switch
		if json.Unmarshal(e.Value(), &sw) == nil {
			r.mu.Lock()
			r.switches[name] = sw
			r.mu.Unlock()
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("system %s: switch: %w", name, err)
	}
	return nil
}

// Start follows the bucket (other nodes' changes), works the statuses out every tick and
// runs the probes.
func (r *Registry) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	w, err := r.kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		cancel()
		return fmt.Errorf("system status bucket: watch: %w", err)
	}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					r.apply(e)
				}
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.opts.Tick)
		defer t.Stop()
		for {
			r.evaluate(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-r.kick:
			}
		}
	}()
	for name, p := range r.probes {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.probeLoop(ctx, name, r.opts.Systems[name], p)
		}()
	}
	return nil
}

// Stop ends the loops.
func (r *Registry) Stop() {
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
}

// apply takes in a change of the bucket.
func (r *Registry) apply(e jetstream.KeyValueEntry) {
	kind, name, ok := strings.Cut(e.Key(), ".")
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, defined := r.opts.Systems[name]; !defined {
		return
	}
	switch kind {
	case "status":
		var s Status
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &s) == nil && e.Revision() > r.revs[name] {
			r.current[name], r.revs[name] = s, e.Revision()
			// The gauge first: it is never behind what Get returns.
			r.setGauge(s)
			r.publishLocked()
		}
	case "manual":
		if e.Operation() != jetstream.KeyValuePut {
			delete(r.switches, name)
		} else {
			var sw Switch
			if json.Unmarshal(e.Value(), &sw) == nil {
				r.switches[name] = sw
			}
		}
		r.nudge()
	}
}

// nudge asks the loop to work the statuses out now.
func (r *Registry) nudge() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Get returns a system's status.
func (r *Registry) Get(name string) (Status, bool) {
	s, ok := (*r.view.Load())[name]
	return s, ok
}

// publishLocked makes the statuses as they are now the ones Get returns; the caller holds
// mu for writing.
func (r *Registry) publishLocked() {
	view := make(map[string]Status, len(r.current))
	for name, s := range r.current {
		view[name] = s
	}
	r.view.Store(&view)
}

// Switch returns the operator's switch of a system, if any.
func (r *Registry) Switch(name string) (Switch, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	sw, ok := r.switches[name]
	return sw, ok
}

// List returns every system's status, by name.
func (r *Registry) List() []Status {
	r.mu.RLock()
	out := make([]Status, 0, len(r.current))
	for _, s := range r.current {
		out = append(out, s)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].System < out[j].System })
	return out
}

// ErrNoSystem is a system that is not defined.
var ErrNoSystem = errors.New("no such system")

// SetSwitch stores an operator's switch, which every node applies at once. status "auto"
// clears the switch: the probes, breaker and windows decide again.
func (r *Registry) SetSwitch(ctx context.Context, name string, sw Switch) error {
	if _, ok := r.opts.Systems[name]; !ok {
		return fmt.Errorf("%w: %q", ErrNoSystem, name)
	}
	if sw.Status == "auto" {
		if err := r.kv.Delete(ctx, "manual."+name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		r.mu.Lock()
		delete(r.switches, name)
		r.mu.Unlock()
	} else {
		sw.Set = time.Now().UTC()
		data, err := json.Marshal(sw)
		if err != nil {
			return err
		}
		if _, err := r.kv.Put(ctx, "manual."+name, data); err != nil {
			return err
		}
		r.mu.Lock()
		r.switches[name] = sw
		r.mu.Unlock()
	}
	r.evaluateOne(ctx, name, time.Now().UTC())
	return nil
}

// evaluate works out every system's status.
func (r *Registry) evaluate(ctx context.Context) {
	now := time.Now().UTC()
	for name := range r.opts.Systems {
		r.evaluateOne(ctx, name, now)
	}
}

// evaluateOne works out a system's status from its switch, windows, breaker and probe, and
// records it when it changed.
func (r *Registry) evaluateOne(ctx context.Context, name string, now time.Time) {
	spec := r.opts.Systems[name]
	r.mu.RLock()
	cur := r.current[name]
	rev := r.revs[name]
	sw, hasSwitch := r.switches[name]
	br := r.breakers[name]
	pr := r.probes[name]
	r.mu.RUnlock()

	want := Status{System: name, Status: Online, Cause: cur.Cause}
	switch {
	case hasSwitch && (sw.Until.IsZero() || now.Before(sw.Until)):
		want = Status{System: name, Status: sw.Status, Cause: CauseManual, Reason: sw.Reason, Actor: sw.Actor, Until: sw.Until}
	default:
		if hasSwitch {
			// Run out: gone for every node (whichever deletes it first).
			_ = r.kv.Delete(ctx, "manual."+name)
			r.mu.Lock()
			delete(r.switches, name)
			r.mu.Unlock()
		}
		if w, end, ok := spec.InMaintenance(now); ok {
			want = Status{System: name, Status: Maintenance, Cause: CauseWindow, Reason: w.Reason, Until: end}
			if want.Reason == "" {
				want.Reason = "maintenance window"
			}
			break
		}
		if s, ok := br.state(cur, now); ok {
			want = s
			break
		}
		if s, ok := pr.state(name); ok {
			want = s
			break
		}
		if cur.Status == Online {
			return // nothing asks otherwise: it stays as it is
		}
		want.Reason = "recovered"
		if cur.Cause == CauseManual || cur.Cause == CauseWindow {
			want.Reason = cur.Cause + " ended"
		}
	}
	want.System = name
	if same(cur, want) {
		return
	}
	want.Since, want.Node = now, r.opts.Node
	r.record(ctx, cur, want, rev)
}

// same reports whether two statuses are the same state (not counting when and where).
func same(a, b Status) bool {
	return a.Status == b.Status && a.Cause == b.Cause && a.Reason == b.Reason && a.Actor == b.Actor && a.Until.Equal(b.Until)
}

// record stores a change, unless another node changed the status first (then its change
// stands and is worked from at the next tick).
func (r *Registry) record(ctx context.Context, from, to Status, rev uint64) {
	data, err := json.Marshal(to)
	if err != nil {
		return
	}
	var newRev uint64
	if rev == 0 {
		newRev, err = r.kv.Create(ctx, "status."+to.System, data)
	} else {
		newRev, err = r.kv.Update(ctx, "status."+to.System, data, rev)
	}
	if err != nil {
		if ctx.Err() == nil {
			r.log.Debug("status change not recorded; another node's stands", "system", to.System, "err", err)
			_ = r.load(ctx, to.System)
		}
		return
	}
	r.mu.Lock()
	if newRev > r.revs[to.System] {
		r.current[to.System], r.revs[to.System] = to, newRev
		r.setGauge(to)
		r.publishLocked()
	}
	r.mu.Unlock()
	r.change.WithLabelValues(to.System, to.Status, to.Cause).Inc()
	level := slog.LevelInfo
	if !to.Available() {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, "system status changed", "system", to.System, "from", from.Status, "to", to.Status,
		"cause", to.Cause, "reason", to.Reason, "actor", to.Actor, "until", to.Until)
	if r.opts.OnChange != nil {
		r.opts.OnChange(Change{From: from, To: to})
	}
}

// metrics sets the status gauge of every system.
func (r *Registry) metrics() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.current {
		r.setGauge(s)
	}
}

// setGauge sets one system's status gauge; the caller holds mu.
func (r *Registry) setGauge(s Status) {
	for _, st := range Statuses {
		v := 0.0
		if st == s.Status {
			v = 1
		}
		r.gauge.WithLabelValues(s.System, st).Set(v)
	}
}
