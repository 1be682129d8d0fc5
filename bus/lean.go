package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/internal/natswire"
	"github.com/causeway/causeway/message"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// The lean publisher.
//
// On the embedded server, PublishAll sends messages to MESSAGES over an in-process
// connection of the bus's own (internal/natswire) instead of nats.go's. Nothing about what
// is stored changes: the same subject, the same headers and data, the same de-duplication
// id, the same wait for the stream's acknowledgement (a fast batch's single answer, or one
// per message). What changes is the work around each message: the header block is written
// straight from the event (nats.go builds a map and renders it), the caller waits on one
// channel for all its messages (nats.go makes a future with channels per message), and
// the acknowledgement is read without reflection. See ADR 0012 and docs/performance.md.

// leanPublisher publishes PublishAll's messages on a natswire connection.
type leanPublisher struct {
	srv    *server.Server
	node   string
	log    *slog.Logger
	c      atomic.Pointer[natswire.Conn] // the current connection; replaced when it ends
	stream string
	prefix string // reply subjects' prefix, ending in a dot
	// slots bounds the single publishes waiting for their acknowledgement, as nats.go's
	// maximum of pending asynchronous publishes does on the other path.
	slots chan struct{}

	mu      sync.Mutex
	next    uint64
	singles map[uint64]pending   // reply token -> the message's call
	batches map[string]*fastCall // fast batch id -> its call

	// Counters for the metrics and tests, as fastBatcher's, and connections replaced.
	fastBatches, fastFallbacks, reconnects atomic.Int64

	// coalesce, when set, gathers single publishes into fast batches (coalesce.go).
	coalesce *coalescer

	// stop ends when the publisher closes: the coalescer's publishes wait under it.
	stop     context.Context
	stopWait context.CancelFunc

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// pending is one single publish waiting for its acknowledgement on conn.
type pending struct {
	call *call
	id   string
	conn *natswire.Conn
}

// outMsg is one message rendered for the wire.
type outMsg struct {
	id, subject  string
	header, data []byte
}

// singleToken starts the reply subjects of single publishes; fast batches' start with
// their id (a NUID, never this short).
const singleToken = "s."

func newLeanPublisher(srv *server.Server, stream, node string, coalesce bool, log *slog.Logger) (*leanPublisher, error) {
	p := &leanPublisher{
		srv: srv, node: node, log: log, stream: stream, prefix: "_INBOX." + nuid.Next() + ".",
		slots:   make(chan struct{}, maxPending),
		singles: map[uint64]pending{},
		batches: map[string]*fastCall{},
		closing: make(chan struct{}),
	}
	p.stop, p.stopWait = context.WithCancel(context.Background())
	if err := p.connect(); err != nil {
		p.stopWait()
		return nil, err
	}
	p.wg.Add(1)
	go p.watch()
	if coalesce {
		p.coalesce = newCoalescer(p)
		p.wg.Add(1)
		go p.coalesce.loop()
	}
	return p, nil
}

// connect opens a connection, subscribes to the answers, and makes it the current one.
func (p *leanPublisher) connect() error {
	nc, err := p.srv.InProcessConn()
	if err != nil {
		return fmt.Errorf("bus: lean publisher: %w", err)
	}
	c, err := natswire.Dial(nc, "causeway "+p.node+" publisher")
	if err != nil {
		return fmt.Errorf("bus: lean publisher: %w", err)
	}
	if _, err = c.Subscribe(p.prefix+">", p.answer); err == nil {
		err = c.Flush(10 * time.Second)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("bus: lean publisher: %w", err)
	}
	p.c.Store(c)
	return nil
}

// up reports whether the current connection is up. While it is not, PublishAll goes
// through nats.go.
func (p *leanPublisher) up() bool {
	select {
	case <-p.c.Load().Done():
		return false
	default:
		return true
	}
}

// watch connects again when the connection ends (the embedded server ends in-process
// connections only when it stops, or over a fault): callers waiting on the old one fail
// and may resend, and new ones use the new one.
func (p *leanPublisher) watch() {
	defer p.wg.Done()
	for {
		c := p.c.Load()
		select {
		case <-p.closing:
			return
		case <-c.Done():
		}
		p.abandon(c)
		select {
		case <-p.closing:
			return
		default:
		}
		p.log.Warn("lean publisher connection ended; reconnecting", "err", c.Err())
		for p.connect() != nil {
			select {
			case <-p.closing:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
		p.reconnects.Add(1)
		p.log.Info("lean publisher reconnected")
	}
}

// headerBufs holds buffers for rendering the header blocks of one PublishAll.
var headerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// publishAll renders events and publishes them: more than one as a fast batch, and one by
// one when that is not taken whole (de-duplication makes the repeat safe).
func (p *leanPublisher) publishAll(ctx context.Context, events []*message.Event, node string) error {
	bp := headerBufs.Get().(*[]byte)
	defer headerBufs.Put(bp)
	// One buffer holds every header block; the messages point into it once it is complete
	// (appending may move it).
	buf := (*bp)[:0]
	ends := make([]int, len(events))
	for i, ev := range events {
		buf = ev.AppendNATSHeader(buf, node)
		ends[i] = len(buf)
	}
	if cap(buf) <= 1<<20 {
		*bp = buf
	}
	if len(events) == 1 && p.coalesce != nil {
		return p.coalesce.publish(ctx, events[0], buf)
	}
	msgs := make([]outMsg, len(events))
	start := 0
	for i, ev := range events {
		msgs[i] = outMsg{id: ev.ID, subject: Subject(ev.Type), header: buf[start:ends[i]:ends[i]], data: ev.Data}
		start = ends[i]
	}
	if len(msgs) > 1 {
		err := p.fastBatch(ctx, msgs)
		if err == nil || ctx.Err() != nil {
			return err
		}
		p.fastFallbacks.Add(1)
	}
	return p.each(ctx, msgs)
}

// each publishes msgs one by one, pipelined, and waits for every acknowledgement.
func (p *leanPublisher) each(ctx context.Context, msgs []outMsg) error {
	c := &call{done: make(chan struct{})}
	c.left.Store(int32(len(msgs)))
	conn := p.c.Load()
	tokens := make([]uint64, 0, len(msgs))
	for i, m := range msgs {
		if err := p.acquire(ctx, conn); err != nil {
			for range len(msgs) - i {
				c.settle(fmt.Errorf("bus: publish %s: %w", m.id, err))
			}
			break
		}
		if tok, ok := p.send(conn, m, c); ok {
			tokens = append(tokens, tok)
		}
	}
	// The connection's end is not waited for here: every waiting publish would lock its
	// channel, which all of them share (on two cores, 8% of the node's CPU went to such
	// locks with single messages); abandon settles what waits on a connection that ends.
	return c.wait(ctx, func() { p.forget(tokens...) })
}

// publishOne publishes m as a single message whose acknowledgement settles c, and returns
// the token its answer will carry. When m cannot be published, c is settled with the
// error at once and ok is false.
func (p *leanPublisher) publishOne(ctx context.Context, m outMsg, c *call) (tok uint64, ok bool) {
	conn := p.c.Load()
	if err := p.acquire(ctx, conn); err != nil {
		c.settle(fmt.Errorf("bus: publish %s: %w", m.id, err))
		return 0, false
	}
	return p.send(conn, m, c)
}

// send publishes m on conn, for which a slot has been acquired, as a single message whose
// acknowledgement settles c.
func (p *leanPublisher) send(conn *natswire.Conn, m outMsg, c *call) (tok uint64, ok bool) {
	p.mu.Lock()
	if ended(conn) {
		// abandon has failed, or is about to fail, what waits on conn: this one would
		// not be among them.
		p.mu.Unlock()
		<-p.slots
		c.settle(fmt.Errorf("bus: publish %s: %w", m.id, connErr(conn)))
		return 0, false
	}
	p.next++
	tok = p.next
	p.singles[tok] = pending{call: c, id: m.id, conn: conn}
	p.mu.Unlock()
	if err := conn.Publish(m.subject, p.prefix+singleToken+strconv.FormatUint(tok, 10), m.header, m.data); err != nil {
		if p.forget(tok) {
			c.settle(fmt.Errorf("bus: publish %s: %w", m.id, err))
		}
		return 0, false
	}
	return tok, true
}

// ended reports whether conn has ended, without waiting.
func ended(conn *natswire.Conn) bool {
	select {
	case <-conn.Done():
		return true
	default:
		return false
	}
}

// connErr is the error of publishes on conn, which has ended.
func connErr(conn *natswire.Conn) error {
	if err := conn.Err(); err != nil {
		return fmt.Errorf("not acknowledged, the connection ended: %w", err)
	}
	return errors.New("not acknowledged, the connection ended")
}

// abandon fails every publish and fast batch still waiting for an answer on conn, which
// has ended: the answer will not come. A publish registers under p.mu only while conn has
// not ended, so none is left waiting.
func (p *leanPublisher) abandon(conn *natswire.Conn) {
	var singles []pending
	var batches []*fastCall
	p.mu.Lock()
	for tok, pd := range p.singles {
		if pd.conn == conn {
			delete(p.singles, tok)
			<-p.slots
			singles = append(singles, pd)
		}
	}
	for _, fc := range p.batches {
		if fc.conn == conn {
			batches = append(batches, fc)
		}
	}
	p.mu.Unlock()
	for _, pd := range singles {
		pd.call.settle(fmt.Errorf("bus: publish %s: %w", pd.id, connErr(conn)))
	}
	for _, fc := range batches {
		fc.finish(fmt.Errorf("bus: fast batch: %w", connErr(conn)))
	}
}

// acquire takes a slot for one publish, waiting up to stallWait for one.
func (p *leanPublisher) acquire(ctx context.Context, conn *natswire.Conn) error {
	// A caller that has given up publishes nothing: otherwise whether it hears an error
	// would depend on how fast the acknowledgement came back.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(stallWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("more than %d publishes waiting for the stream for %s", maxPending, stallWait)
	case <-conn.Done():
		return conn.Err()
	}
}

// forget drops the publishes of tokens that are still waiting, freeing their slots, and
// reports whether any was.
func (p *leanPublisher) forget(tokens ...uint64) bool {
	found := false
	p.mu.Lock()
	for _, tok := range tokens {
		if _, ok := p.singles[tok]; ok {
			delete(p.singles, tok)
			<-p.slots
			found = true
		}
	}
	p.mu.Unlock()
	return found
}

// fastBatch sends msgs as one fast batch (see fast.go) and waits for the server's answer.
func (p *leanPublisher) fastBatch(ctx context.Context, msgs []outMsg) error {
	conn := p.c.Load()
	id := nuid.Next()
	fc := &fastCall{n: len(msgs), done: make(chan error, 1), conn: conn}
	p.mu.Lock()
	if ended(conn) {
		p.mu.Unlock()
		return fmt.Errorf("bus: fast batch: %w", connErr(conn))
	}
	p.batches[id] = fc
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.batches, id)
		p.mu.Unlock()
	}()
	p.fastBatches.Add(1)
	base := fastReplyBase(p.prefix, id)
	for i, m := range msgs {
		if err := conn.Publish(m.subject, fastReply(base, i, len(msgs)), m.header, m.data); err != nil {
			return fmt.Errorf("bus: fast batch: publish %s: %w", m.id, err)
		}
	}
	// As in each, abandon answers a batch whose connection ends.
	select {
	case err := <-fc.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("bus: fast batch not acknowledged: %w", ctx.Err())
	}
}

// answer routes one answer of the server to the publish or batch it is about. It runs on
// the connection's read goroutine.
func (p *leanPublisher) answer(m *natswire.Msg) {
	rest, ok := bytes.CutPrefix(m.Subject, []byte(p.prefix))
	if !ok {
		return
	}
	if tokText, ok := bytes.CutPrefix(rest, []byte(singleToken)); ok {
		tok, err := strconv.ParseUint(string(tokText), 10, 64)
		if err != nil {
			return
		}
		p.mu.Lock()
		pd, found := p.singles[tok]
		if found {
			delete(p.singles, tok)
			<-p.slots
		}
		p.mu.Unlock()
		if found {
			pd.call.settle(ackVerdict(m, p.stream, pd.id))
		}
		return
	}
	id, _, _ := bytes.Cut(rest, []byte("."))
	p.mu.Lock()
	fc := p.batches[string(id)]
	p.mu.Unlock()
	if fc == nil {
		return // a batch that has been answered or given up
	}
	if status := statusOf(m.Header); status != "" {
		fc.finish(fmt.Errorf("bus: fast batch: the server answered %s", status))
		return
	}
	if final, err := fastVerdict(m.Data, p.stream, fc.n); final {
		fc.finish(err)
	}
}

// ackVerdict reads the server's answer to a single publish of message id: nil when stream
// stored it (or had it already).
func ackVerdict(m *natswire.Msg, stream, id string) error {
	if status := statusOf(m.Header); status != "" {
		if status == "503" {
			return fmt.Errorf("bus: publish %s: %w", id, jetstream.ErrNoStreamResponse)
		}
		return fmt.Errorf("bus: publish %s: the server answered %s", id, status)
	}
	// The usual answer, {"stream":"MESSAGES","seq":N} (perhaps with "duplicate":true),
	// is read without decoding; anything else is decoded in full.
	if rest, ok := bytes.CutPrefix(m.Data, []byte(`{"stream":"`)); ok && !bytes.Contains(rest, []byte(`"error"`)) {
		if i := bytes.IndexByte(rest, '"'); i >= 0 && bytes.HasPrefix(rest[i:], []byte(`","seq":`)) {
			if string(rest[:i]) != stream {
				return fmt.Errorf("bus: publish %s: stored by stream %q, not %s", id, rest[:i], stream)
			}
			return nil
		}
	}
	var a struct {
		Stream string              `json:"stream"`
		Error  *jetstream.APIError `json:"error"`
	}
	switch err := json.Unmarshal(m.Data, &a); {
	case err != nil:
		return fmt.Errorf("bus: publish %s: unreadable acknowledgement %q", id, m.Data)
	case a.Error != nil:
		return fmt.Errorf("bus: publish %s: %w", id, a.Error)
	case a.Stream != stream:
		return fmt.Errorf("bus: publish %s: stored by stream %q, not %s", id, a.Stream, stream)
	}
	return nil
}

// statusOf returns the status code of a header block that carries one ("NATS/1.0 503"),
// or "".
func statusOf(header []byte) string {
	line, _, _ := bytes.Cut(header, []byte("\r\n"))
	code, ok := bytes.CutPrefix(line, []byte("NATS/1.0 "))
	if !ok || len(code) < 3 {
		return ""
	}
	return string(code[:3])
}

func (p *leanPublisher) close() {
	p.closeOnce.Do(func() {
		close(p.closing)
		p.stopWait()
		p.wg.Wait()
		c := p.c.Load()
		c.Close()
		// watch has returned: what still waits on the connection is failed here.
		<-c.Done()
		p.abandon(c)
	})
}
