package emailconn

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// mailServer is a small SMTP server in the test process: it takes PLAIN authentication
// for user/pass, refuses recipients containing "unknown" (550) and "busy" (451), and keeps
// what it was sent.
type mailServer struct {
	addr string
	mu   sync.Mutex
	got  []string
}

func startMailServer(t *testing.T) *mailServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &mailServer{addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return s
}

func (s *mailServer) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	say := func(line string) { _, _ = conn.Write([]byte(line + "\r\n")) }
	say("220 test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimSpace(line)
		upper := strings.ToUpper(cmd)
		switch {
		case strings.HasPrefix(upper, "EHLO"), strings.HasPrefix(upper, "HELO"):
			say("250-test")
			say("250-AUTH PLAIN")
			say("250 8BITMIME")
		case strings.HasPrefix(upper, "AUTH PLAIN "):
			raw, _ := base64.StdEncoding.DecodeString(cmd[len("AUTH PLAIN "):])
			if string(raw) == "\x00user\x00pass" {
				say("235 ok")
			} else {
				say("535 bad credentials")
			}
		case strings.HasPrefix(upper, "MAIL FROM"):
			say("250 ok")
		case strings.HasPrefix(upper, "RCPT TO"):
			switch {
			case strings.Contains(cmd, "unknown"):
				say("550 no such user")
			case strings.Contains(cmd, "busy"):
				say("451 try later")
			default:
				say("250 ok")
			}
		case upper == "DATA":
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.got = append(s.got, b.String())
			s.mu.Unlock()
			say("250 queued")
		case upper == "QUIT":
			say("221 bye")
			return
		default:
			say("500 what")
		}
	}
}

func mailSystem(addr, tlsMode string) *system.Spec {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &system.Spec{
		SMTP: &system.SMTP{Host: host, Port: p, TLS: tlsMode, Username: "user", Password: config.NewSecret("pass"), From: "Causeway <causeway@example.com>"},
		Operations: map[string]*system.Operation{"notify": {Email: &system.EmailOperation{
			To: []string{"${{ .params.email }}"}, Subject: "Order ${{ .params.orderId }} shipped", Body: "Hello,\nyour order ${{ .params.orderId }} is on its way.\n",
		}}},
	}
}

func TestSendEmail(t *testing.T) {
	srv := startMailServer(t)
	ctx := context.Background()
	res, err := Do(ctx, "mail", mailSystem(srv.addr, "none"), "notify", map[string]any{"email": "jane@example.com", "orderId": "A-1"})
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	msg := srv.got[0]
	srv.mu.Unlock()
	for _, want := range []string{"From: \"Causeway\" <causeway@example.com>\r\n", "To: jane@example.com\r\n", "Subject: Order A-1 shipped\r\n", "\r\n\r\nHello,\r\nyour order A-1 is on its way.\r\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if res.(map[string]any)["messageId"] == "" {
		t.Error("no message id")
	}
	var ee *Error
	for email, transient := range map[string]bool{"unknown@example.com": false, "busy@example.com": true} {
		if _, err := Do(ctx, "mail", mailSystem(srv.addr, "none"), "notify", map[string]any{"email": email, "orderId": "A-2"}); !errors.As(err, &ee) || ee.Transient != transient {
			t.Errorf("%s: %v, want transient=%v", email, err, transient)
		}
	}
	// STARTTLS is required by default, and this server does not offer it: permanent.
	if _, err := Do(ctx, "mail", mailSystem(srv.addr, "starttls"), "notify", map[string]any{"email": "jane@example.com", "orderId": "A-3"}); !errors.As(err, &ee) || ee.Transient || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("no STARTTLS: %v", err)
	}
	if _, err := Do(ctx, "mail", mailSystem(srv.addr, "none"), "notify", map[string]any{"email": "not an address", "orderId": "A-4"}); !errors.As(err, &ee) || ee.Transient {
		t.Errorf("bad address: %v", err)
	}
	if detail, err := Check(ctx, "mail", mailSystem(srv.addr, "none")); err != nil || detail == "" {
		t.Errorf("check: %q %v", detail, err)
	}
}
