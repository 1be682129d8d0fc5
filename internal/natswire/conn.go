// Package natswire is a minimal NATS protocol client for the bus's hot paths: publishing
// accepted messages and reading the MESSAGES stream for the tracking index.
//
// The general client (nats.go) carries headers as maps: every publish renders its map to
// bytes (a map iteration and a buffer per message) and every delivery parses the header
// block back into a map of canonicalised keys, which a reader that wants two attributes
// then looks up. For a message with a dozen headers that is, on a two-core machine, about
// a sixth of the node's CPU per ingested message (docs/performance.md). A Conn takes and
// hands over header blocks as bytes, so the caller renders them straight from its own data
// and scans only what it needs.
//
// A Conn is deliberately small: one connection, no reconnection, no TLS or authentication.
// It is meant for the embedded server's in-process connections, which end only when the
// server does; everything else goes through nats.go.
package natswire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned once the connection has ended.
var ErrClosed = errors.New("natswire: connection closed")

// Msg is one delivered message. Its slices are valid only during the handler's call.
type Msg struct {
	Subject, Reply []byte
	// Header is the message's header block ("NATS/1.0…\r\n\r\n"), empty without headers.
	Header []byte
	Data   []byte
}

// Handler receives the messages of a subscription on the connection's read goroutine, one
// at a time: it must not block for long, and must copy what it keeps.
type Handler func(m *Msg)

// Conn is a NATS client connection speaking just what the hot paths need.
type Conn struct {
	conn net.Conn

	mu      sync.Mutex
	buf     []byte // protocol waiting to be written
	spare   []byte // the flusher's last buffer, reused
	kicked  bool   // the flusher has been told there is something to write
	err     error  // why the connection ended
	subs    map[uint64]Handler
	nextSID uint64

	kick chan struct{}
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	pong chan struct{}

	// in counts delivered messages, for tests and metrics.
	in atomic.Uint64

	// maxPayload is the server's limit on a message's headers and data together.
	maxPayload int
}

// ErrMaxPayload is returned for a message larger than the server takes. The server would
// end the connection over it, so it is refused before it is sent.
var ErrMaxPayload = errors.New("natswire: message larger than the server's max_payload")

// maxBuffered bounds the protocol a Conn buffers for writing; a publish beyond it waits for
// the flusher. It is the back-pressure of a server that reads slower than callers publish.
const maxBuffered = 8 << 20

// Dial runs the protocol's handshake on conn (typically the embedded server's in-process
// connection) and starts reading and writing. name is how the server lists the client.
func Dial(conn net.Conn, name string) (*Conn, error) {
	c := &Conn{
		conn: conn,
		subs: map[uint64]Handler{},
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
		pong: make(chan struct{}, 1),
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadSlice('\n')
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("natswire: handshake: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("INFO ")) {
		conn.Close()
		return nil, fmt.Errorf("natswire: handshake: expected INFO, got %q", bytes.TrimSpace(line))
	}
	_ = conn.SetReadDeadline(time.Time{})
	var info struct {
		MaxPayload int `json:"max_payload"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(line[len("INFO "):]), &info); err != nil || info.MaxPayload <= 0 {
		conn.Close()
		return nil, fmt.Errorf("natswire: handshake: unreadable INFO %q", bytes.TrimSpace(line))
	}
	c.maxPayload = info.MaxPayload
	connect := fmt.Sprintf(`CONNECT {"verbose":false,"pedantic":false,"name":%q,"lang":"go","version":"natswire","protocol":1,"headers":true,"no_responders":true}`+"\r\nPING\r\n", name)
	c.buf = append(c.buf, connect...)
	c.kicked = true
	c.kick <- struct{}{}
	c.wg.Add(2)
	go c.flusher()
	go c.readLoop(r)
	select {
	case <-c.pong:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("natswire: handshake: %w", c.Err())
	case <-time.After(10 * time.Second):
		c.Close()
		return nil, errors.New("natswire: handshake: no answer to PING within 10s")
	}
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, or nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Delivered is the number of messages the connection has handed to its subscriptions.
func (c *Conn) Delivered() uint64 { return c.in.Load() }

// Close ends the connection and waits for its goroutines.
func (c *Conn) Close() {
	c.fail(ErrClosed)
	c.wg.Wait()
}

// fail ends the connection with err (the first reason wins).
func (c *Conn) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
		c.conn.Close()
	})
}

// Publish sends a message with an optional reply subject and header block (as rendered by
// a caller, "NATS/1.0\r\n…\r\n\r\n"). It returns once the message is buffered; the
// connection writes it soon after, together with whatever else has been buffered by then.
func (c *Conn) Publish(subject, reply string, header, data []byte) error {
	if len(header)+len(data) > c.maxPayload {
		return ErrMaxPayload
	}
	c.mu.Lock()
	for len(c.buf) > maxBuffered && c.err == nil {
		// Rare: the server is not keeping up. Let the flusher catch up.
		c.mu.Unlock()
		select {
		case <-c.done:
		case <-time.After(time.Millisecond):
		}
		c.mu.Lock()
	}
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	b := c.buf
	if len(header) > 0 {
		b = append(b, "HPUB "...)
	} else {
		b = append(b, "PUB "...)
	}
	b = append(b, subject...)
	b = append(b, ' ')
	if reply != "" {
		b = append(b, reply...)
		b = append(b, ' ')
	}
	if len(header) > 0 {
		b = strconv.AppendInt(b, int64(len(header)), 10)
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, int64(len(header)+len(data)), 10)
	b = append(b, "\r\n"...)
	b = append(b, header...)
	b = append(b, data...)
	b = append(b, "\r\n"...)
	c.buf = b
	c.wake()
	c.mu.Unlock()
	return nil
}

// wake tells the flusher there is something to write; c.mu is held.
func (c *Conn) wake() {
	if !c.kicked {
		c.kicked = true
		c.kick <- struct{}{}
	}
}

// Subscribe delivers the messages on subject (wildcards allowed) to h.
func (c *Conn) Subscribe(subject string, h Handler) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.nextSID++
	sid := c.nextSID
	c.subs[sid] = h
	c.buf = append(c.buf, "SUB "...)
	c.buf = append(c.buf, subject...)
	c.buf = append(c.buf, ' ')
	c.buf = strconv.AppendUint(c.buf, sid, 10)
	c.buf = append(c.buf, "\r\n"...)
	c.wake()
	return sid, nil
}

// Unsubscribe stops a subscription.
func (c *Conn) Unsubscribe(sid uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[sid]; !ok || c.err != nil {
		return
	}
	delete(c.subs, sid)
	c.buf = append(c.buf, "UNSUB "...)
	c.buf = strconv.AppendUint(c.buf, sid, 10)
	c.buf = append(c.buf, "\r\n"...)
	c.wake()
}

// Flush waits until the server has read everything buffered before it (a PING answered).
func (c *Conn) Flush(timeout time.Duration) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	// Drain a stale PONG so that the one awaited is this PING's.
	select {
	case <-c.pong:
	default:
	}
	c.buf = append(c.buf, "PING\r\n"...)
	c.wake()
	c.mu.Unlock()
	select {
	case <-c.pong:
		return nil
	case <-c.done:
		return c.Err()
	case <-time.After(timeout):
		return fmt.Errorf("natswire: flush: no answer within %s", timeout)
	}
}

// flusher writes what has been buffered, one write for everything buffered since the last.
func (c *Conn) flusher() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.kick:
		}
		c.mu.Lock()
		out := c.buf
		c.buf, c.spare = c.spare[:0], nil
		c.kicked = false
		c.mu.Unlock()
		if _, err := c.conn.Write(out); err != nil {
			c.fail(fmt.Errorf("natswire: write: %w", err))
			return
		}
		if cap(out) <= maxBuffered {
			c.mu.Lock()
			c.spare = out[:0]
			c.mu.Unlock()
		}
	}
}

// readLoop reads the server's protocol until the connection ends.
func (c *Conn) readLoop(r *bufio.Reader) {
	defer c.wg.Done()
	var (
		args    []byte // the current control line, copied: reading the payload may move r's buffer
		payload []byte // a payload too large for r's buffer
		m       Msg
	)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errors.New("protocol line too long")
			}
			c.fail(fmt.Errorf("natswire: read: %w", err))
			return
		}
		switch {
		case bytes.HasPrefix(line, []byte("MSG ")), bytes.HasPrefix(line, []byte("HMSG ")):
			args = append(args[:0], line...)
			sid, hlen, total, perr := parseMsgArgs(args, &m)
			if perr != nil {
				c.fail(fmt.Errorf("natswire: %w: %q", perr, bytes.TrimSpace(args)))
				return
			}
			var body []byte
			if total+2 <= r.Size() {
				body, err = r.Peek(total + 2)
			} else {
				if cap(payload) < total+2 {
					payload = make([]byte, total+2)
				}
				body = payload[:total+2]
				_, err = io.ReadFull(r, body)
			}
			if err != nil {
				c.fail(fmt.Errorf("natswire: read: %w", err))
				return
			}
			m.Header, m.Data = body[:hlen], body[hlen:total]
			c.mu.Lock()
			h := c.subs[sid]
			c.mu.Unlock()
			if h != nil {
				c.in.Add(1)
				h(&m)
			}
			if total+2 <= r.Size() {
				_, _ = r.Discard(total + 2)
			}
		case bytes.HasPrefix(line, []byte("PING")):
			c.mu.Lock()
			if c.err == nil {
				c.buf = append(c.buf, "PONG\r\n"...)
				c.wake()
			}
			c.mu.Unlock()
		case bytes.HasPrefix(line, []byte("PONG")):
			select {
			case c.pong <- struct{}{}:
			default:
			}
		case bytes.HasPrefix(line, []byte("-ERR")):
			// The server closes the connection after an error that ends it; the others
			// (a permissions violation, say) cannot happen with what a Conn sends.
			c.fail(fmt.Errorf("natswire: server: %s", bytes.TrimSpace(line[4:])))
			return
		default:
			// INFO updates and +OK need nothing.
		}
	}
}

// parseMsgArgs reads "MSG subject sid [reply] size" or "HMSG subject sid [reply] hsize
// size" into m's subject and reply, returning the sid, header size and total size. It
// allocates nothing: it runs once per delivered message.
func parseMsgArgs(line []byte, m *Msg) (sid uint64, hlen, total int, err error) {
	if len(line) == 0 {
		return 0, 0, 0, errMsgLine
	}
	var f [7][]byte
	n := 0
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n' {
			i++
		}
		if i > start {
			if n == len(f) {
				return 0, 0, 0, errMsgLine
			}
			f[n] = line[start:i]
			n++
		}
	}
	want := 4 // MSG subject sid size
	if line[0] == 'H' {
		want = 5 // HMSG subject sid hsize size
	}
	switch n {
	case want:
		m.Reply = nil
	case want + 1:
		m.Reply = f[3]
	default:
		return 0, 0, 0, errMsgLine
	}
	m.Subject = f[1]
	s, ok1 := Decimal(f[2])
	t, ok2 := Decimal(f[n-1])
	h, ok3 := uint64(0), true
	if want == 5 {
		h, ok3 = Decimal(f[n-2])
	}
	if !ok1 || !ok2 || !ok3 || h > t || t > 1<<30 {
		return 0, 0, 0, errMsgLine
	}
	return s, int(h), int(t), nil
}

var errMsgLine = errors.New("malformed message line")

// Decimal parses an unsigned decimal number of at most 19 digits, as the protocol writes
// sizes, sequences and times, without allocating.
func Decimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
