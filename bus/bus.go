package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is a connection to JetStream with Causeway's streams in place.
type Bus struct {
	opts Options
	log  *slog.Logger
	srv  *server.Server // nil when an external server is used
	nc   *nats.Conn
	js   jetstream.JetStream
	// group, when set, gathers concurrent publishes to MESSAGES into atomic batches.
	group *groupCommitter
	// fast, when set, publishes the messages of one PublishAll as a fast batch.
	fast *fastBatcher
	// lean, when set, publishes PublishAll's messages on a lean connection (lean.go):
	// on the embedded server, when group commit is off.
	lean *leanPublisher
	// headerReconnects and headerRecreations count the header consumers' recoveries, for
	// the metrics: connections replaced, and consumers recreated after the first.
	headerReconnects, headerRecreations atomic.Int64
	// pullTimes, when set by a test, replaces the header consumers' pull expiry and
	// heartbeat.
	pullTimes *[2]time.Duration
	// pullBytes, when set by a test, replaces the header consumers' byte limit per pull.
	pullBytes int
}

// headerOverhead is room for the ce-* headers on top of the data payload.
const headerOverhead = 64 << 10

// Open starts the embedded server (unless opts.URL names an external one), connects, waits
// until JetStream answers, and creates or updates the streams. On error nothing is left
// running.
func Open(ctx context.Context, opts Options, log *slog.Logger) (_ *Bus, err error) {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{opts: opts, log: log.With("component", "bus")}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	connOpts := []nats.Option{
		nats.Name("causeway " + opts.NodeName),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("bus connection lost", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { b.log.Info("bus connection restored") }),
	}
	url := opts.URL
	if url == "" {
		if err := b.startEmbedded(); err != nil {
			return nil, err
		}
		connOpts = append(connOpts, nats.InProcessServer(b.srv))
	}
	b.nc, err = nats.Connect(url, connOpts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", describeURL(url), err)
	}
	if err := b.fitPayload(); err != nil {
		return nil, err
	}
	b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(maxPending))
	if err != nil {
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	if err := b.waitJetStream(ctx); err != nil {
		return nil, err
	}
	if err := b.ensureStreams(ctx); err != nil {
		return nil, err
	}
	if b.grouping() {
		b.group = newGroupCommitter(b.js, b.nc, StreamMessages)
	}
	switch {
	case b.srv != nil && b.group == nil && !opts.natsGoOnly:
		if b.lean, err = newLeanPublisher(b.srv, StreamMessages, opts.NodeName, !opts.noCoalesce, b.log); err != nil {
			return nil, err
		}
	case b.fastBatching():
		if b.fast, err = newFastBatcher(b.nc, StreamMessages); err != nil {
			return nil, err
		}
	}
	b.log.Info("bus ready", "sync", b.opts.Sync.String(), "group_commit", b.grouping())
	return b, nil
}

func describeURL(url string) string {
	if url == "" {
		return "embedded server"
	}
	return url
}

func (b *Bus) startEmbedded() error {
	o := &server.Options{
		ServerName:         serverName(b.opts.NodeName),
		JetStream:          true,
		StoreDir:           filepath.Join(b.opts.DataDir, "nats"),
		NoSigs:             true,
		NoLog:              false,
		MaxPayload:         int32(b.opts.MaxMessageBytes + headerOverhead),
		SyncAlways:         b.opts.Sync.Always,
		SyncInterval:       b.opts.Sync.Interval,
		DontListen:         b.opts.Listen == "",
		JetStreamMaxMemory: 256 << 20,
	}
	if b.opts.Listen != "" {
		host, port, err := net.SplitHostPort(b.opts.Listen)
		if err != nil {
			return fmt.Errorf("bus: --nats-listen %q: %w", b.opts.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("bus: --nats-listen %q: port: %w", b.opts.Listen, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		o.Host, o.Port = host, p
	}
	srv, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("bus: embedded server: %w", err)
	}
	// The server's own logger would exit the process on a fatal error; ours never does, so
	// a bad condition surfaces as an error we handle instead of a vanished process.
	srv.SetLoggerV2(&natsLogger{log: b.log.With("server", "embedded")}, false, false, false)
	b.srv = srv
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		return errors.New("bus: embedded server did not become ready within 30s")
	}
	b.log.Info("embedded bus started", "store", o.StoreDir, "sync", b.opts.Sync.String(), "listen", b.ClientURL())
	return nil
}

func serverName(node string) string {
	if node == "" {
		return "causeway"
	}
	return "causeway-" + node
}

// fitPayload makes the message size limit fit the server's max_payload. The embedded server
// is configured to fit; an external one has its own setting (1 MB by default), and a
// message it cannot carry would otherwise only fail when someone sends one.
func (b *Bus) fitPayload() error {
	limit := b.nc.MaxPayload() - headerOverhead
	if int64(b.opts.MaxMessageBytes) <= limit {
		return nil
	}
	if limit < 1024 {
		return fmt.Errorf("bus: the server's max_payload (%d bytes) leaves no room for messages after %d bytes for headers", b.nc.MaxPayload(), headerOverhead)
	}
	b.log.Warn("the NATS server carries smaller messages than --max-message-bytes; lowering the limit to fit",
		"max_message_bytes", b.opts.MaxMessageBytes, "server_max_payload", b.nc.MaxPayload(), "effective_max_message_bytes", limit)
	b.opts.MaxMessageBytes = int(limit)
	return nil
}

// MaxMessageBytes is the largest message data the bus carries: the configured limit, or less
// when an external server's max_payload is smaller.
func (b *Bus) MaxMessageBytes() int64 { return int64(b.opts.MaxMessageBytes) }

// ClientURL is the address external clients can use to reach the embedded server, or "" when
// it has no listener (or the bus is external).
func (b *Bus) ClientURL() string {
	if b.srv == nil || b.opts.Listen == "" {
		return ""
	}
	return b.srv.ClientURL()
}

// waitJetStream waits until JetStream answers an account request: a connection is not
// enough, since JetStream may still be recovering its streams from disk.
func (b *Bus) waitJetStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		_, err := b.js.AccountInfo(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bus: JetStream not available: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Ready reports whether the bus can take messages now.
func (b *Bus) Ready(ctx context.Context) error {
	if b.nc == nil || !b.nc.IsConnected() {
		return errors.New("bus not connected")
	}
	if b.srv != nil && !b.srv.JetStreamEnabled() {
		return errors.New("JetStream not enabled")
	}
	return nil
}

// JetStream returns the JetStream client.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Replicas is the stream replica count (1 on the embedded server).
func (b *Bus) Replicas() int { return b.opts.Replicas }

// Conn returns the underlying NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// grouping reports whether publishes to MESSAGES go through the group committer.
func (b *Bus) grouping() bool {
	switch b.opts.GroupCommit {
	case GroupOn:
		return true
	case GroupOff:
		return false
	}
	return b.srv != nil && b.opts.Sync.Always
}

// fastBatching reports whether the messages of one PublishAll go to MESSAGES as a fast
// batch (see fast.go): without group commit, on a server that has fast batches (NATS 2.14+;
// the embedded server always does).
func (b *Bus) fastBatching() bool {
	if b.grouping() {
		return false
	}
	if b.srv != nil {
		return true
	}
	return b.nc != nil && serverAtLeast(b.nc.ConnectedServerVersion(), 2, 14)
}

// fastCounts returns how many fast batches the bus has sent and how many of them were then
// published again one message at a time; ok is false when it sends none.
func (b *Bus) fastCounts() (batches, fallbacks int64, ok bool) {
	switch {
	case b.lean != nil:
		return b.lean.fastBatches.Load(), b.lean.fastFallbacks.Load(), true
	case b.fast != nil:
		return b.fast.batches.Load(), b.fast.fallbacks.Load(), true
	}
	return 0, 0, false
}

// Schedules reports whether the server stores scheduled messages (NATS 2.12+; the embedded
// server always does). The retry path schedules retry messages when it can, and otherwise
// delays the redelivery of the failed one.
func (b *Bus) Schedules() bool {
	if b.srv != nil {
		return true
	}
	return b.nc != nil && b.nc.ConnectedServerVersion() != "" && serverAtLeast(b.nc.ConnectedServerVersion(), 2, 12)
}

// serverAtLeast compares a server version such as "2.12.1" with major.minor.
func serverAtLeast(v string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(v, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// Close commits what is queued, drains the connection and stops the embedded server,
// waiting for it to flush.
func (b *Bus) Close() {
	if b.group != nil {
		b.group.close()
	}
	if b.fast != nil {
		b.fast.close()
	}
	if b.lean != nil {
		b.lean.close()
	}
	if b.nc != nil {
		_ = b.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !b.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
}
