// Package bus is Causeway's message bus: NATS JetStream, either an embedded server running
// inside the process or an external cluster, with the streams the platform needs created
// idempotently on start.
package bus

import (
	"fmt"
	"strings"
	"time"
)

// Stream names and subjects.
const (
	// StreamMessages holds every accepted canonical message, on subjects SubjectMessages+type.
	StreamMessages = "MESSAGES"
	// SubjectMessages prefixes the subject of a message of a given type.
	SubjectMessages = "cw.msg."
	// StreamTracking holds tracking events (delivered, retried, …) for the tracking index.
	StreamTracking = "TRACKING"
	// SubjectTracking prefixes tracking events.
	SubjectTracking = "cw.track."
	// StreamInvocations holds invocations of flows by name, on SubjectInvoke+flow.
	StreamInvocations = "INVOCATIONS"
	// SubjectSchedules prefixes, in MESSAGES, the schedules of retry messages: the server
	// publishes each to its message subject when it is due.
	SubjectSchedules = "cw.sched."
	// SubjectInvoke prefixes the invocations of a flow.
	SubjectInvoke = "cw.invoke."
	// StreamErrors holds what could not become a message or be delivered, with the reason:
	// the errors queue, on SubjectErrors+origin.
	StreamErrors = "ERRORS"
	// SubjectErrors prefixes entries of the errors queue.
	SubjectErrors = "cw.errors."
	// StreamParked holds the deliveries held back while their system is offline or in
	// maintenance, on SubjectParked+system, in the order they were parked.
	StreamParked = "PARKED"
	// SubjectParked prefixes parked deliveries.
	SubjectParked = "cw.park."
	// StreamNotify holds the alert notifications waiting to be sent to their sinks, on
	// SubjectNotify+alert; each leaves it once sent (or given up on).
	StreamNotify = "NOTIFY"
	// SubjectNotify prefixes alert notifications.
	SubjectNotify = "cw.notify."
	// StreamAudit holds the record of every operator action (replay, discard, status
	// changes): who did what, when and why, on SubjectAudit+action.
	StreamAudit = "AUDIT"
	// SubjectAudit prefixes audit records.
	SubjectAudit = "cw.audit."
	// HeaderReplyTo carries, on an invocation, the subject its caller waits on for the reply.
	HeaderReplyTo = "Causeway-Reply-To"
	// HeaderGatewayRequest carries, on an invocation made by the gateway, which API, route
	// and consumer it came from: the messages the run publishes show it in their timelines.
	HeaderGatewayRequest = "Causeway-Gateway-Request"
)

// Sync is the fsync policy of the embedded server's file storage.
type Sync struct {
	// Always fsyncs every write before it is acknowledged.
	Always bool
	// Interval is how often data is fsynced when Always is false.
	Interval time.Duration
}

// String gives the policy in the form ParseSync reads.
func (s Sync) String() string {
	if s.Always {
		return "always"
	}
	return "interval:" + s.Interval.String()
}

// ParseSync reads "always" or "interval:DURATION" (for example "interval:1s").
func ParseSync(s string) (Sync, error) {
	if s == "always" {
		return Sync{Always: true}, nil
	}
	if d, ok := strings.CutPrefix(s, "interval:"); ok {
		iv, err := time.ParseDuration(d)
		if err != nil || iv <= 0 {
			return Sync{}, fmt.Errorf("sync %q: the interval must be a positive duration such as 1s", s)
		}
		return Sync{Interval: iv}, nil
	}
	return Sync{}, fmt.Errorf("sync %q: expected \"always\" or \"interval:DURATION\"", s)
}

// GroupCommit chooses how accepted messages are published to MESSAGES.
type GroupCommit int

const (
	// GroupAuto groups when the embedded server fsyncs every write, where one fsync per
	// message is the limit; it publishes one by one otherwise.
	GroupAuto GroupCommit = iota
	// GroupOn always gathers concurrent publishes into atomic batches (the server must be
	// NATS 2.12 or later).
	GroupOn
	// GroupOff publishes every message on its own, pipelined.
	GroupOff
)

// String gives the mode in the form ParseGroupCommit reads.
func (g GroupCommit) String() string {
	switch g {
	case GroupOn:
		return "on"
	case GroupOff:
		return "off"
	}
	return "auto"
}

// ParseGroupCommit reads "auto", "on" or "off".
func ParseGroupCommit(s string) (GroupCommit, error) {
	switch s {
	case "auto", "":
		return GroupAuto, nil
	case "on":
		return GroupOn, nil
	case "off":
		return GroupOff, nil
	}
	return GroupAuto, fmt.Errorf("group commit %q: expected auto, on or off", s)
}

// Options configures the bus.
type Options struct {
	// DataDir is where the embedded server keeps its file storage (DataDir/nats).
	DataDir string
	// URL, when set, connects to an external NATS server or cluster instead of starting the
	// embedded one.
	URL string
	// Listen, when set, makes the embedded server accept client connections on this address
	// (host:port); by default it has no TCP listener at all.
	Listen string
	// Sync is the embedded server's fsync policy; the zero value means always.
	Sync Sync
	// Replicas is the stream replica count on an external cluster (1 on the embedded server).
	Replicas int
	// DedupWindow is how long a message id is remembered for de-duplication.
	DedupWindow time.Duration
	// MaxAge is how long accepted messages are kept in the MESSAGES stream.
	MaxAge time.Duration
	// MaxMessageBytes is the largest data payload a message may carry.
	MaxMessageBytes int
	// NodeName names this node in logs and tracking events.
	NodeName string
	// GroupCommit chooses between atomic batches and single publishes for MESSAGES.
	GroupCommit GroupCommit

	// natsGoOnly makes the bus publish through nats.go even on the embedded server, where
	// it otherwise uses its lean connection: tests run both paths.
	natsGoOnly bool
	// noCoalesce makes the lean connection publish each single message alone instead of
	// gathering concurrent ones into fast batches (coalesce.go): tests run both paths.
	noCoalesce bool
}

func (o *Options) setDefaults() {
	if o.Sync == (Sync{}) {
		o.Sync.Always = true
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = 2 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1 << 20
	}
}
