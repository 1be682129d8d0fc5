package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/causeway/causeway/internal/natswire"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Header consumers.
//
// The tracking index reads every message of MESSAGES, but only its headers. Through
// nats.go each delivery becomes a message with its header block parsed into a map, its
// reply subject parsed for the metadata, and a trip through a channel; at tens of
// thousands of messages a second that is one of the node's larger costs. A header
// consumer reads the same deliveries on a lean connection (internal/natswire) and hands
// the handler the raw header block, the stream sequence and the time.
//
// The server sends whole messages, and the payloads are skipped here: a headers-only
// consumer has the server build a new header block for every message (a buffer grown
// from nothing), which cost the node more than passing the payload through the in-process
// connection (about 2 µs of CPU per message under load, docs/performance.md). Each pull
// is bounded in bytes as well as in messages (pullBytes), so that what the server has on
// its way to the connection stays far under its limit for a slow consumer. Where the
// largest message would not fit a pull several times over, and if a stored message turns
// out larger than a whole pull (one stored before the limit was lowered), the consumer
// asks for headers only.
//
// It behaves as nats.go's ordered consumer does: an ephemeral pull consumer on the
// server, keeping no state there, recreated from the last delivered sequence whenever
// something goes wrong (a gap in the consumer sequence, the consumer deleted, heartbeats
// missing), so that the handler sees every message once and in order, or the same
// message again after a recreation (which an idempotent reader such as the index
// ignores).

// Pull sizes of a header consumer: each pull asks for pullBatch messages and the next is
// sent once half of them have arrived, so that the server always has room to deliver.
const (
	pullBatch     = 1000
	pullBytes     = 16 << 20
	pullExpires   = 30 * time.Second
	pullHeartbeat = 5 * time.Second
)

// HeaderHandler receives one message of a header consumer: its stream sequence, the time
// the stream stored it, and its header block (the handler may keep it, never change it:
// the blocks of several messages share memory). Messages come one
// at a time, in order, on a goroutine of the consumer's own; the handler may block, which
// holds back further pulls (never the connection).
type HeaderHandler func(seq uint64, stored time.Time, header []byte)

// HeaderConsumer is a running header consumer.
type HeaderConsumer struct {
	b      *Bus
	stream string
	filter string
	h      HeaderHandler
	log    *slog.Logger
	prefix string // pulls' reply subjects: prefix + generation

	// expires and heartbeat are the pulls' settings (pullExpires and pullHeartbeat; tests
	// shorten them).
	expires, heartbeat time.Duration
	// maxBytes bounds the payload bytes of a pull (pullBytes; tests lower it).
	maxBytes int

	mu          sync.Mutex
	headersOnly bool           // the server sends headers only (see above); never turned back
	cut         int            // pulls that ended on their byte limit
	c           *natswire.Conn // the current connection; replaced when it ends
	gen         uint64         // bumped by each recreation; answers about older ones are ignored
	consumer    string
	dseq, sseq  uint64 // last consumer and stream sequences received
	outstanding int    // messages asked for and not yet received or expired
	// heard counts what the server sent; watch notes when it last moved (seen), so that
	// a delivery costs no clock read.
	heard, heardAtSeen uint64
	seen               time.Time
	// chunk is where delivered header blocks are kept until the handler has them: one
	// allocation for many of them rather than one each.
	chunk []byte
	// queue holds what has been received and not yet handed to the handler. The read
	// goroutine never waits for the handler: a connection whose reader stalls would be
	// dropped by the server as a slow consumer. Pulls ask for more only while the queue
	// and what is outstanding stay under pullBatch, which bounds the queue.
	queue []queued

	wake  chan struct{}
	reset chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
}

// queued is one received message waiting for the handler.
type queued struct {
	seq    uint64
	stored time.Time
	header []byte
}

// ErrNoHeaderConsumer is returned by ConsumeHeaders on a bus whose server is not embedded.
var ErrNoHeaderConsumer = errors.New("bus: header consumers need the embedded server")

// ConsumeHeaders starts a header consumer of stream, on subjects matching filter, from the
// message after sequence after (0: from the start). On an external server it returns
// ErrNoHeaderConsumer, and callers read through nats.go instead.
func (b *Bus) ConsumeHeaders(ctx context.Context, stream, filter string, after uint64, h HeaderHandler) (*HeaderConsumer, error) {
	if b.srv == nil {
		return nil, ErrNoHeaderConsumer
	}
	hc := &HeaderConsumer{
		b: b, stream: stream, filter: filter, h: h, sseq: after,
		log:     b.log.With("consumer", "headers of "+stream),
		prefix:  "_INBOX." + nuid.Next() + ".",
		wake:    make(chan struct{}, 1),
		reset:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
		expires: pullExpires, heartbeat: pullHeartbeat, maxBytes: pullBytes,
	}
	if b.pullTimes != nil {
		hc.expires, hc.heartbeat = b.pullTimes[0], b.pullTimes[1]
	}
	if b.pullBytes > 0 {
		hc.maxBytes = b.pullBytes
	}
	// The largest message the server takes must fit a pull with room to spare.
	hc.headersOnly = b.opts.MaxMessageBytes+headerOverhead > hc.maxBytes/4
	if err := hc.connect(); err != nil {
		return nil, err
	}
	if err := hc.recreate(ctx); err != nil {
		hc.conn().Close()
		return nil, err
	}
	hc.wg.Add(2)
	go hc.watch()
	go hc.feed()
	return hc, nil
}

// connect opens a connection for the consumer's pulls and makes it the current one.
func (hc *HeaderConsumer) connect() error {
	nc, err := hc.b.srv.InProcessConn()
	if err != nil {
		return fmt.Errorf("bus: header consumer of %s: %w", hc.stream, err)
	}
	c, err := natswire.Dial(nc, "causeway "+hc.b.opts.NodeName+" reader of "+hc.stream)
	if err != nil {
		return fmt.Errorf("bus: header consumer of %s: %w", hc.stream, err)
	}
	if _, err := c.Subscribe(hc.prefix+"*", hc.deliver); err != nil {
		c.Close()
		return fmt.Errorf("bus: header consumer of %s: %w", hc.stream, err)
	}
	hc.mu.Lock()
	hc.c = c
	hc.mu.Unlock()
	return nil
}

func (hc *HeaderConsumer) conn() *natswire.Conn {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.c
}

// Stop ends the consumer and waits for it; what it received and did not hand over is
// dropped (the index reads it again from its stored position after a restart).
func (hc *HeaderConsumer) Stop() {
	select {
	case <-hc.stop:
		return
	default:
	}
	close(hc.stop)
	hc.wg.Wait()
	hc.mu.Lock()
	name, c := hc.consumer, hc.c
	hc.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if name != "" {
		_ = hc.b.js.DeleteConsumer(ctx, hc.stream, name)
	}
	c.Close()
}

// recreate makes a new consumer from the message after the last received one and asks it
// for messages.
func (hc *HeaderConsumer) recreate(ctx context.Context) error {
	hc.mu.Lock()
	hc.gen++
	gen, from, old, headersOnly := hc.gen, hc.sseq+1, hc.consumer, hc.headersOnly
	hc.consumer, hc.dseq, hc.outstanding = "", 0, 0
	hc.mu.Unlock()
	if old != "" {
		_ = hc.b.js.DeleteConsumer(ctx, hc.stream, old)
	}
	cfg := jetstream.ConsumerConfig{
		Name:              "cw_headers_" + nuid.Next(),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       headersOnly,
		FilterSubject:     hc.filter,
		InactiveThreshold: 5 * time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	}
	cons, err := hc.b.js.CreateConsumer(ctx, hc.stream, cfg)
	if err != nil {
		return fmt.Errorf("bus: header consumer of %s: %w", hc.stream, err)
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.gen != gen {
		return nil // recreated again meanwhile
	}
	hc.consumer = cons.CachedInfo().Name
	hc.seen = time.Now()
	hc.refillLocked()
	return nil
}

// refillLocked asks for another pullBatch messages when what is queued and outstanding has
// fallen to half of that; hc.mu is held.
func (hc *HeaderConsumer) refillLocked() {
	if hc.consumer == "" || hc.outstanding+len(hc.queue) > pullBatch/2 {
		return
	}
	req := `{"batch":` + strconv.Itoa(pullBatch) + `,"expires":` + strconv.FormatInt(int64(hc.expires), 10) +
		`,"idle_heartbeat":` + strconv.FormatInt(int64(hc.heartbeat), 10)
	if !hc.headersOnly {
		req += `,"max_bytes":` + strconv.Itoa(hc.maxBytes)
	}
	req += `}`
	subject := "$JS.API.CONSUMER.MSG.NEXT." + hc.stream + "." + hc.consumer
	// A failed pull means the connection has ended, which watch sees.
	if hc.c.Publish(subject, hc.prefix+strconv.FormatUint(hc.gen, 10), nil, []byte(req)) == nil {
		hc.outstanding += pullBatch
	}
}

// watch reconnects when the connection ends, and recreates the consumer when a delivery
// asks for it or when the server has been silent for three heartbeats while a pull was
// waiting.
func (hc *HeaderConsumer) watch() {
	defer hc.wg.Done()
	tick := time.NewTicker(hc.heartbeat)
	defer tick.Stop()
	failures := 0
	for {
		c := hc.conn()
		select {
		case <-hc.stop:
			return
		case <-c.Done():
			select {
			case <-hc.stop:
				return
			default:
			}
			hc.log.Warn("header consumer connection ended; reconnecting", "err", c.Err())
			if err := hc.connect(); err == nil {
				hc.b.headerReconnects.Add(1)
			} else {
				failures++
				hc.log.Warn("header consumer not reconnected; trying again", "err", err, "attempts", failures)
				select {
				case <-hc.stop:
					return
				case <-time.After(hc.heartbeat):
				}
				continue
			}
		case <-hc.reset:
		case <-tick.C:
			hc.mu.Lock()
			if hc.heard != hc.heardAtSeen {
				hc.heardAtSeen, hc.seen = hc.heard, time.Now()
			}
			silent := hc.outstanding > 0 && time.Since(hc.seen) > 3*hc.heartbeat
			hc.mu.Unlock()
			if !silent && failures == 0 {
				continue
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := hc.recreate(ctx)
		cancel()
		if err != nil {
			failures++
			hc.log.Warn("header consumer not recreated; trying again", "err", err, "attempts", failures)
			continue
		}
		hc.b.headerRecreations.Add(1)
		failures = 0
	}
}

// askReset has watch recreate the consumer.
func (hc *HeaderConsumer) askReset() {
	select {
	case hc.reset <- struct{}{}:
	default:
	}
}

// feed hands what has been received to the handler, in order.
func (hc *HeaderConsumer) feed() {
	defer hc.wg.Done()
	var batch []queued
	for {
		select {
		case <-hc.stop:
			return
		case <-hc.wake:
		}
		hc.mu.Lock()
		batch, hc.queue = hc.queue, batch[:0]
		hc.mu.Unlock()
		for _, q := range batch {
			select {
			case <-hc.stop:
				return
			default:
			}
			hc.h(q.seq, q.stored, q.header)
		}
		clear(batch)
		hc.mu.Lock()
		hc.refillLocked()
		hc.mu.Unlock()
	}
}

// deliver takes one message on the pulls' reply subjects, on the connection's read
// goroutine, and never waits. A delivery carries the subject it was published on and
// names its consumer in its reply subject; a status message from the server comes on the
// pull's own reply subject, which ends in the generation of the consumer it is about.
func (hc *HeaderConsumer) deliver(m *natswire.Msg) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if status := statusOf(m.Header); status != "" && len(m.Reply) == 0 {
		gen, ok := natswire.Decimal(m.Subject[bytes.LastIndexByte(m.Subject, '.')+1:])
		if ok && gen == hc.gen {
			hc.heard++
			hc.status(status, m.Header)
		}
		return
	}
	consumer, sseq, dseq, stored, ok := ackMetadata(m.Reply)
	if !ok || string(consumer) != hc.consumer {
		return // a delivery to a consumer that has been replaced
	}
	hc.heard++
	if dseq != hc.dseq+1 {
		hc.askReset()
		return
	}
	hc.dseq, hc.sseq = dseq, sseq
	hc.outstanding--
	hc.queue = append(hc.queue, queued{seq: sseq, stored: stored, header: hc.keep(m.Header)})
	select {
	case hc.wake <- struct{}{}:
	default:
	}
	hc.refillLocked()
}

// headerChunk is the size of the buffers delivered header blocks are kept in.
const headerChunk = 64 << 10

// keep copies a delivered header block, which the connection's read buffer holds only
// until deliver returns; hc.mu is held. A kept block is never written again, and its
// chunk lives as long as any block in it (the handler copies what it keeps).
func (hc *HeaderConsumer) keep(h []byte) []byte {
	if len(h) > cap(hc.chunk)-len(hc.chunk) {
		if len(h) > headerChunk/8 {
			return bytes.Clone(h)
		}
		hc.chunk = make([]byte, 0, headerChunk)
	}
	n := len(hc.chunk)
	hc.chunk = append(hc.chunk, h...)
	return hc.chunk[n:len(hc.chunk):len(hc.chunk)]
}

// status handles a status message of the server; hc.mu is held.
func (hc *HeaderConsumer) status(code string, header []byte) {
	switch code {
	case "100": // an idle heartbeat
		return
	case "408", "409":
		// A pull that expired or ended: what it still owed will not come.
		if bytes.Contains(header, []byte("Consumer Deleted")) {
			hc.askReset()
			return
		}
		// A pull that ended on its byte limit before sending anything: the next message
		// is larger than a whole pull, and only headers will do.
		if bytes.Contains(header, []byte("Exceeds MaxBytes")) && !hc.headersOnly {
			hc.cut++
			if left, ok := natswire.Decimal(headerValue(header, "Nats-Pending-Bytes")); ok && left >= uint64(hc.maxBytes) {
				hc.log.Info("header consumer: a message is larger than a pull; reading headers only from now on", "after", hc.sseq)
				hc.headersOnly = true
				hc.askReset()
				return
			}
		}
		if left, ok := natswire.Decimal(headerValue(header, "Nats-Pending-Messages")); ok {
			hc.outstanding = max(hc.outstanding-int(left), 0)
		}
		hc.refillLocked()
	default:
		hc.log.Warn("header consumer: unexpected status", "status", code, "detail", string(bytes.TrimSpace(header)))
		hc.askReset()
	}
}

// ackMetadata reads the stream and consumer sequences and the time from a delivery's reply
// subject: $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>,
// or the longer form with a domain and an account hash after $JS.ACK.
func ackMetadata(reply []byte) (consumer []byte, sseq, dseq uint64, stored time.Time, ok bool) {
	var tok [12][]byte
	n := 0
	for len(reply) > 0 && n < len(tok) {
		i := bytes.IndexByte(reply, '.')
		if i < 0 {
			tok[n], reply = reply, nil
		} else {
			tok[n], reply = reply[:i], reply[i+1:]
		}
		n++
	}
	if len(reply) > 0 || n < 9 || string(tok[0]) != "$JS" || string(tok[1]) != "ACK" {
		return nil, 0, 0, time.Time{}, false
	}
	at := 4 // the delivered count in the short form
	if n >= 11 {
		at = 6
	}
	s, ok1 := natswire.Decimal(tok[at+1])
	d, ok2 := natswire.Decimal(tok[at+2])
	ts, ok3 := natswire.Decimal(tok[at+3])
	if !ok1 || !ok2 || !ok3 {
		return nil, 0, 0, time.Time{}, false
	}
	return tok[at-1], s, d, time.Unix(0, int64(ts)), true
}

// headerValue returns the value of the first header called name in a header block.
func headerValue(header []byte, name string) []byte {
	for line := range bytes.SplitSeq(header, []byte("\r\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(name+":")); ok {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}
