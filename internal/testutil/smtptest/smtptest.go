// Package smtptest runs an SMTP server in a test process, for the tests of everything that
// sends email.
package smtptest

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"
)

// Server is a small SMTP server in the test process: it takes PLAIN authentication
// for user/pass, refuses recipients containing "unknown" (550) and "busy" (451), and keeps
// what it was sent.
type Server struct {
	// Addr is host:port.
	Addr string
	mu   sync.Mutex
	got  []string
}

// Start starts a server on a loopback port until the test ends.
func Start(t *testing.T) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &Server{Addr: ln.Addr().String()}
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

func (s *Server) serve(conn net.Conn) {
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

// Messages are the messages the server took, as sent after DATA.
func (s *Server) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}
