package natswire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// runServer starts an embedded NATS server without a listener, as the bus does.
func runServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{DontListen: true, NoSigs: true, MaxPayload: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func dial(t *testing.T, s *server.Server) *Conn {
	t.Helper()
	nc, err := s.InProcessConn()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(nc, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type got struct {
	subject, reply string
	header, data   []byte
}

// TestPublishAndDeliver sends messages with and without headers and reply subjects, one
// larger than the connection's read buffer, from one connection to another, and checks each
// arrives whole and in order.
func TestPublishAndDeliver(t *testing.T) {
	s := runServer(t)
	pub, sub := dial(t, s), dial(t, s)
	ch := make(chan got, 16)
	if _, err := sub.Subscribe("t.>", func(m *Msg) {
		// The slices are only valid during the call.
		ch <- got{string(m.Subject), string(m.Reply), bytes.Clone(m.Header), bytes.Clone(m.Data)}
	}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), 20000) // 200 KB: more than the read buffer
	hdr := []byte("NATS/1.0\r\nce-id: x\r\n\r\n")
	want := []got{
		{"t.plain", "", nil, []byte("hello")},
		{"t.reply", "r.1", nil, []byte("")},
		{"t.header", "r.2", hdr, []byte(`{"a":1}`)},
		{"t.big", "", hdr, big},
		{"t.headeronly", "", hdr, nil},
	}
	for _, w := range want {
		if err := pub.Publish(w.subject, w.reply, w.header, w.data); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range want {
		select {
		case g := <-ch:
			if g.subject != w.subject || g.reply != w.reply || !bytes.Equal(g.header, w.header) || !bytes.Equal(g.data, w.data) {
				t.Errorf("message %d: got %s %q header %q data of %d bytes, want %s %q header %q data of %d bytes",
					i, g.subject, g.reply, g.header, len(g.data), w.subject, w.reply, w.header, len(w.data))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d (%s) not delivered", i, w.subject)
		}
	}
	if n := sub.Delivered(); n != uint64(len(want)) {
		t.Errorf("Delivered() = %d, want %d", n, len(want))
	}
}

// TestTooLargeIsRefusedBeforeSending: the server would end the connection over a message
// beyond its max_payload, so the Conn refuses it and stays usable.
func TestTooLargeIsRefusedBeforeSending(t *testing.T) {
	s := runServer(t)
	c := dial(t, s)
	err := c.Publish("t.x", "", nil, make([]byte, 1<<20+1))
	if !errors.Is(err, ErrMaxPayload) {
		t.Fatalf("got %v, want ErrMaxPayload", err)
	}
	if err := c.Flush(5 * time.Second); err != nil {
		t.Fatalf("connection unusable after a refused message: %v", err)
	}
}

// TestEndsWithTheServer: when the server shuts down, Done is closed, Err says why, and a
// publish fails instead of waiting.
func TestEndsWithTheServer(t *testing.T) {
	s := runServer(t)
	c := dial(t, s)
	s.Shutdown()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection still up after the server shut down")
	}
	if c.Err() == nil {
		t.Error("Err() is nil after the connection ended")
	}
	if err := c.Publish("t.x", "", nil, []byte("x")); err == nil {
		t.Error("publish on an ended connection succeeded")
	}
}

// TestUnsubscribeStopsDeliveries: after Unsubscribe, nothing more arrives.
func TestUnsubscribeStopsDeliveries(t *testing.T) {
	s := runServer(t)
	c := dial(t, s)
	n := 0
	sid, err := c.Subscribe("u", func(*Msg) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Publish("u", "", nil, []byte("1"))
	if err := c.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Unsubscribe(sid)
	_ = c.Publish("u", "", nil, []byte("2"))
	if err := c.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.Delivered(); got != 1 {
		t.Errorf("%d deliveries, want 1", got)
	}
}

func TestParseMsgArgs(t *testing.T) {
	for _, tc := range []struct {
		line           string
		subject, reply string
		sid            uint64
		hlen, total    int
		wantErr        bool
	}{
		{line: "MSG a.b 7 5\r\n", subject: "a.b", sid: 7, total: 5},
		{line: "MSG a.b 7 r.1 5\r\n", subject: "a.b", reply: "r.1", sid: 7, total: 5},
		{line: "HMSG a 1 22 30\r\n", subject: "a", sid: 1, hlen: 22, total: 30},
		{line: "HMSG a 1 $JS.ACK.S.C.1.2.3.4.0 22 30\r\n", subject: "a", reply: "$JS.ACK.S.C.1.2.3.4.0", sid: 1, hlen: 22, total: 30},
		{line: "MSG  a\t1   0\r\n", subject: "a", sid: 1, total: 0},
		{line: "MSG a 1\r\n", wantErr: true},
		{line: "MSG a x 5\r\n", wantErr: true},
		{line: "MSG a 1 -5\r\n", wantErr: true},
		{line: "HMSG a 1 31 30\r\n", wantErr: true},
		{line: "HMSG a 1 r x 30\r\n", wantErr: true},
		{line: "MSG a 1 r s t u v 5\r\n", wantErr: true},
		{line: "MSG a 1 99999999999999999999\r\n", wantErr: true},
		{line: "MSG a 1 2000000000\r\n", wantErr: true},
	} {
		var m Msg
		sid, hlen, total, err := parseMsgArgs([]byte(tc.line), &m)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%q: no error", tc.line)
			}
			continue
		}
		if err != nil || sid != tc.sid || hlen != tc.hlen || total != tc.total || string(m.Subject) != tc.subject || string(m.Reply) != tc.reply {
			t.Errorf("%q: got sid %d hlen %d total %d subject %q reply %q err %v", tc.line, sid, hlen, total, m.Subject, m.Reply, err)
		}
	}
}

// FuzzParseMsgArgs: whatever the line, parsing does not panic, and what it accepts is
// consistent (the header inside the total, the subject among the line's words).
func FuzzParseMsgArgs(f *testing.F) {
	for _, s := range []string{"MSG a 1 5\r\n", "HMSG a 1 r 2 3\r\n", "HMSG a 1 22 30\r\n", "MSG \r\n", "HMSG"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var m Msg
		_, hlen, total, err := parseMsgArgs([]byte(line), &m)
		if err != nil {
			return
		}
		if hlen < 0 || hlen > total || !strings.Contains(line, string(m.Subject)) {
			t.Fatalf("%q: accepted with hlen %d total %d subject %q", line, hlen, total, m.Subject)
		}
	})
}
