package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/reliability"
	"github.com/causeway/causeway/system/status"
)

// How alerts flow.
//
// An alert is an Event about a condition, named by a key ("dead-lettered/ship/3f2a…",
// "system-offline/erp"). For each Alert resource that routes it, the condition's state lives
// in the key-value bucket CW_ALERTS: firing or not, when it was last notified, how many
// events were held back since. A firing event is notified when the condition was not firing
// or its last notice is older than the throttle; otherwise it is counted. A condition that
// clears is notified as resolved, once. Notifications are stored in the NOTIFY stream, one
// per sink, before the state is written, and sent from there by a consumer that retries
// failures with a growing delay: sending never holds up a message, and a crash loses none.
//
// Dead-lettered events are raised by the flows as they happen; the other conditions are
// evaluated every few seconds by every node (the bucket's compare-and-set keeps the notices
// single). A dead-lettered condition resolves when the errors queue no longer holds an
// entry with its fingerprint.

// Bucket is the key-value bucket of alert conditions.
const Bucket = "CW_ALERTS"

// Event is an alert about a condition.
type Event struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Key names the condition: events with the same key are one condition.
	Key     string `json:"key"`
	System  string `json:"system,omitempty"`
	Flow    string `json:"flow,omitempty"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
	// Fingerprint is a dead-lettered event's error fingerprint.
	Fingerprint string    `json:"fingerprint,omitempty"`
	Time        time.Time `json:"time"`
}

// state is a condition's state for one Alert.
type state struct {
	Firing     bool      `json:"firing"`
	Since      time.Time `json:"since"`
	LastSent   time.Time `json:"lastSent"`
	Suppressed int       `json:"suppressed"`
	Event      Event     `json:"event"`
}

// Notification is what a sink gets.
type Notification struct {
	ID    string `json:"id"`
	Alert string `json:"alert"`
	// State is "firing" or "resolved".
	State string `json:"state"`
	Event
	// Suppressed counts the events of the condition held back since the last notice.
	Suppressed int `json:"suppressed"`
	// Sink is the index of the sink in the Alert's sinks.
	Sink int `json:"sink"`
}

// Options configures a Manager.
type Options struct {
	Bus    *bus.Bus
	Config *config.Config
	// Status gives the systems' statuses (system-offline).
	Status *status.Registry
	// Parked gives the oldest parked delivery's time per system (parked).
	Parked func(ctx context.Context) (map[string]time.Time, error)
	// Errors is the errors queue (errors-queue, and when dead-lettered conditions clear).
	Errors *reliability.Queue
	// Email sends an email through a system's email operation, with params.
	Email  func(ctx context.Context, system, operation string, params map[string]any) error
	Node   string
	Logger *slog.Logger
	// Registerer receives the alert metrics.
	Registerer prometheus.Registerer
	// Every is how often conditions are evaluated (default 5s).
	Every time.Duration
}

// Manager raises, throttles and sends alerts.
type Manager struct {
	opts   Options
	log    *slog.Logger
	kv     jetstream.KeyValue
	alerts map[string]*Spec
	names  []string

	raised *prometheus.CounterVec
	sent   *prometheus.CounterVec

	stop context.CancelFunc
	wg   sync.WaitGroup
	cc   jetstream.ConsumeContext
}

// Open binds the bucket and reads the Alert resources.
func Open(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Every <= 0 {
		opts.Every = 5 * time.Second
	}
	m := &Manager{opts: opts, log: opts.Logger.With("component", "alerts"), alerts: map[string]*Spec{},
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_alerts_raised_total", Help: "Alert notices queued, by alert, kind and state (firing, resolved, throttled).",
		}, []string{"alert", "kind", "state"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_alert_notifications_total", Help: "Alert notifications sent to sinks, by alert and outcome (sent, failed: retried, dropped: given up).",
		}, []string{"alert", "outcome"}),
	}
	for _, r := range opts.Config.ByKind(Kind) {
		m.alerts[r.Metadata.Name] = r.Spec.(*Spec)
		m.names = append(m.names, r.Metadata.Name)
	}
	sort.Strings(m.names)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.raised, m.sent)
	}
	kv, err := opts.Bus.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "Causeway: alert conditions", History: 1, Storage: jetstream.FileStorage,
		Replicas: max(opts.Bus.Replicas(), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("alert bucket: %w", err)
	}
	m.kv = kv
	return m, nil
}

// Start evaluates the conditions and sends notifications, in the background. Without Alert
// resources it does nothing.
func (m *Manager) Start() error {
	if len(m.alerts) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	if err := m.startSender(ctx); err != nil {
		cancel()
		return err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(m.opts.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.evaluate(ctx)
			}
		}
	}()
	return nil
}

// Stop ends the evaluation and the sending.
func (m *Manager) Stop() {
	if m.stop != nil {
		m.stop()
	}
	if m.cc != nil {
		m.cc.Stop()
	}
	m.wg.Wait()
}

// DeadLettered raises the alert of a delivery that went to the errors queue. It never
// blocks for long: a failure is logged, and the flow goes on.
func (m *Manager) DeadLettered(e *reliability.Entry) {
	if len(m.alerts) == 0 {
		return
	}
	ev := Event{Kind: KindDeadLettered, Severity: severityOf[KindDeadLettered], Key: KindDeadLettered + "/" + e.Flow + "/" + e.Fingerprint,
		System: e.System, Flow: e.Flow, Fingerprint: e.Fingerprint, Time: e.Time,
		Summary: fmt.Sprintf("flow %s: a delivery went to the errors queue (%s, after %d retries)", e.Flow, e.Class, e.RetryCount),
		Detail:  e.Reason}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.fire(ctx, &ev)
}

// fire notifies a firing condition to every Alert that routes it, throttled.
func (m *Manager) fire(ctx context.Context, ev *Event) {
	for _, name := range m.names {
		a := m.alerts[name]
		if !a.matches(ev) {
			continue
		}
		if err := m.transition(ctx, name, a, ev, true); err != nil {
			m.log.Warn("alert not raised; it is raised again with the next event", "alert", name, "key", ev.Key, "err", err)
		}
	}
}

// resolve notifies a cleared condition to every Alert that notified it.
func (m *Manager) resolve(ctx context.Context, name string, a *Spec, ev *Event) {
	if err := m.transition(ctx, name, a, ev, false); err != nil {
		m.log.Warn("alert resolution not raised; tried again at the next evaluation", "alert", name, "key", ev.Key, "err", err)
	}
}

// stateKey is the bucket key of a condition for an alert.
func stateKey(alert, key string) string {
	sum := sha256.Sum256([]byte(key))
	return alert + "." + hex.EncodeToString(sum[:12])
}

// transition moves a condition to firing or resolved, queueing the notices that are due.
func (m *Manager) transition(ctx context.Context, name string, a *Spec, ev *Event, firing bool) error {
	key := stateKey(name, ev.Key)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			// Another writer moved the condition first (events of one condition come in
			// bursts): wait a moment, and work from its state.
			select {
			case <-ctx.Done():
				return fmt.Errorf("the condition kept changing under this node: %w", ctx.Err())
			case <-time.After(time.Duration(rand.IntN(10*min(attempt, 10))+1) * time.Millisecond):
			}
		}
		var st state
		var rev uint64
		e, err := m.kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return err
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return err
		}
		now := time.Now().UTC()
		var notify *Notification
		switch {
		case firing && st.Firing && now.Sub(st.LastSent) < a.Throttle:
			st.Suppressed++
			m.raised.WithLabelValues(name, ev.Kind, "throttled").Inc()
		case firing:
			if !st.Firing {
				st.Since = now
			}
			// One id per condition and throttle period: nodes that raise the same
			// condition at once queue one notice.
			period := now.Truncate(max(a.Throttle, time.Second)).Unix()
			notify = &Notification{ID: name + "/" + ev.Key + "/firing/" + strconv.FormatInt(period, 10), Alert: name, State: "firing",
				Event: *ev, Suppressed: st.Suppressed}
			st.Firing, st.LastSent, st.Suppressed, st.Event = true, now, 0, *ev
		case st.Firing:
			st.Firing = false
			if a.Resolved {
				res := *ev
				res.Time = now
				notify = &Notification{ID: name + "/" + ev.Key + "/resolved/" + strconv.FormatInt(st.Since.Unix(), 10), Alert: name,
					State: "resolved", Event: res, Suppressed: st.Suppressed}
			}
			st.Suppressed = 0
		default:
			return nil // not firing, and nothing to resolve
		}
		if notify != nil {
			if err := m.queue(ctx, a, notify); err != nil {
				return err
			}
		}
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = m.kv.Create(ctx, key, data)
		} else {
			_, err = m.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			if notify != nil {
				m.raised.WithLabelValues(name, ev.Kind, notify.State).Inc()
			}
			return nil
		}
	}
}

// queue stores a notification per sink in NOTIFY.
func (m *Manager) queue(ctx context.Context, a *Spec, n *Notification) error {
	for i := range a.Sinks {
		c := *n
		c.Sink = i
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if _, err := m.opts.Bus.JetStream().Publish(ctx, bus.SubjectNotify+n.Alert, data,
			jetstream.WithExpectStream(bus.StreamNotify), jetstream.WithMsgID(n.ID+"/"+strconv.Itoa(i))); err != nil {
			return err
		}
	}
	return nil
}

// evaluate checks the conditions every Alert watches: offline systems, old parked
// deliveries, the errors queue's size, and whether dead-lettered conditions cleared.
func (m *Manager) evaluate(ctx context.Context) {
	now := time.Now()
	var parked map[string]time.Time
	if m.opts.Parked != nil {
		parked, _ = m.opts.Parked(ctx)
	}
	var entries []*reliability.Entry
	if m.opts.Errors != nil {
		_ = m.opts.Errors.Each(ctx, reliability.Filter{}, 0, func(e *reliability.Entry) bool {
			e.Message, e.Steps, e.Failures = nil, nil, nil
			entries = append(entries, e)
			return true
		})
	}
	for _, name := range m.names {
		a := m.alerts[name]
		if m.opts.Status != nil {
			for _, s := range m.opts.Status.List() {
				ev := Event{Kind: KindOffline, Severity: severityOf[KindOffline], Key: KindOffline + "/" + s.System, System: s.System, Time: now.UTC(),
					Summary: fmt.Sprintf("system %s is %s since %s (%s)", s.System, s.Status, s.Since.Format(time.RFC3339), s.Cause), Detail: s.Reason}
				if !a.matches(&ev) {
					continue
				}
				if !s.Available() && now.Sub(s.Since) >= a.OfflineFor {
					_ = m.transition(ctx, name, a, &ev, true) // tried again at the next evaluation
				} else if s.Available() {
					ev.Summary = fmt.Sprintf("system %s is %s again", s.System, s.Status)
					m.resolve(ctx, name, a, &ev)
				}
			}
		}
		for sys, oldest := range parked {
			ev := Event{Kind: KindParked, Severity: severityOf[KindParked], Key: KindParked + "/" + sys, System: sys, Time: now.UTC(),
				Summary: fmt.Sprintf("deliveries for system %s parked since %s", sys, oldest.Format(time.RFC3339))}
			if a.matches(&ev) && now.Sub(oldest) >= a.ParkedFor {
				_ = m.transition(ctx, name, a, &ev, true)
			}
		}
		m.resolveParked(ctx, name, a, parked)
		if m.opts.Errors != nil {
			m.evaluateErrors(ctx, name, a, entries)
		}
	}
}

// resolveParked resolves the parked conditions of systems with nothing parked any more.
func (m *Manager) resolveParked(ctx context.Context, name string, a *Spec, parked map[string]time.Time) {
	if m.opts.Status == nil {
		return
	}
	for _, s := range m.opts.Status.List() {
		if _, ok := parked[s.System]; ok {
			continue
		}
		ev := Event{Kind: KindParked, Severity: severityOf[KindParked], Key: KindParked + "/" + s.System, System: s.System,
			Time: time.Now().UTC(), Summary: fmt.Sprintf("no deliveries parked for system %s any more", s.System)}
		if a.matches(&ev) {
			m.resolve(ctx, name, a, &ev)
		}
	}
}

// evaluateErrors checks the errors queue's size and resolves dead-lettered conditions whose
// entries are gone.
func (m *Manager) evaluateErrors(ctx context.Context, name string, a *Spec, entries []*reliability.Entry) {
	n := 0
	open := map[string]bool{}
	for _, e := range entries {
		if len(a.Match.Systems) > 0 && !slices.Contains(a.Match.Systems, e.System) || len(a.Match.Flows) > 0 && !slices.Contains(a.Match.Flows, e.Flow) {
			continue
		}
		n++
		open[KindDeadLettered+"/"+e.Flow+"/"+e.Fingerprint] = true
	}
	ev := Event{Kind: KindErrorsQueue, Severity: severityOf[KindErrorsQueue], Key: KindErrorsQueue, Time: time.Now().UTC(),
		Summary: fmt.Sprintf("the errors queue holds %d entries (above %d)", n, a.ErrorsAbove)}
	if a.matches(&ev) {
		if n > a.ErrorsAbove {
			_ = m.transition(ctx, name, a, &ev, true)
		} else {
			ev.Summary = fmt.Sprintf("the errors queue holds %d entries", n)
			m.resolve(ctx, name, a, &ev)
		}
	}
	// Dead-lettered conditions that fired and have no entry left resolve.
	lister, err := m.kv.ListKeys(ctx)
	if err != nil {
		return
	}
	for k := range lister.Keys() {
		if len(k) <= len(name)+1 || k[:len(name)+1] != name+"." {
			continue
		}
		e, err := m.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var st state
		if json.Unmarshal(e.Value(), &st) != nil || !st.Firing || st.Event.Kind != KindDeadLettered || open[st.Event.Key] {
			continue
		}
		res := st.Event
		res.Summary = fmt.Sprintf("flow %s: no delivery failing this way is left in the errors queue", st.Event.Flow)
		m.resolve(ctx, name, a, &res)
	}
}
