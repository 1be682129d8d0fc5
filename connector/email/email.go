// Package emailconn is the email connector: it sends a plain-text message through a
// system's mail server over SMTP, with STARTTLS (required unless turned off) or implicit
// TLS, and PLAIN authentication. A server that cannot be reached or answers 4xx is a
// transient failure; 5xx (an unknown recipient, a refused sender), a bad address or a
// server without STARTTLS when it is required a permanent one.
package emailconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// Error is a failed send.
type Error struct {
	System, Operation string
	Transient         bool
	Err               error
}

// Error says which operation failed, how, and whether it is worth retrying.
func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	return fmt.Sprintf("call %s.%s: %v (%s)", e.System, e.Operation, e.Err, kind)
}

// Unwrap gives the cause.
func (e *Error) Unwrap() error { return e.Err }

// Do renders the operation's templates with the call's with (.params) and sends the email.
func Do(ctx context.Context, sysName string, sys *system.Spec, opName string, with map[string]any) (any, error) {
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	op, ok := sys.Operation(opName)
	if !ok || op.Email == nil || sys.SMTP == nil {
		return nil, fail(false, errors.New("no such email operation"))
	}
	in := map[string]any{"params": with}
	render := func(what, src string) (string, error) {
		t, err := expr.ParseTemplate(src)
		if err != nil {
			return "", err
		}
		v, err := t.Eval(ctx, in)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		return expr.ToString(v), nil
	}
	var to []string
	for _, src := range op.Email.To {
		addr, err := render("to", src)
		if err != nil {
			return nil, fail(false, err)
		}
		a, err := mail.ParseAddress(addr)
		if err != nil {
			return nil, fail(false, fmt.Errorf("recipient %q: %v", addr, err))
		}
		to = append(to, a.Address)
	}
	subject, err := render("subject", op.Email.Subject)
	if err != nil {
		return nil, fail(false, err)
	}
	body, err := render("body", op.Email.Body)
	if err != nil {
		return nil, fail(false, err)
	}
	from, _ := mail.ParseAddress(sys.SMTP.From)
	id := "<" + message.NewID() + "@causeway>"
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
		from.String(), strings.Join(to, ", "), mime.QEncoding.Encode("utf-8", subject), time.Now().Format(time.RFC1123Z), id)
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	if err := send(ctx, sys.SMTP, from.Address, to, []byte(b.String())); err != nil {
		return nil, fail(transientSMTP(err), err)
	}
	return map[string]any{"messageId": id, "to": to}, nil
}

// send delivers one message over SMTP.
func send(ctx context.Context, cfg *system.SMTP, from string, to []string, msg []byte) error {
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	d := net.Dialer{Timeout: 15 * time.Second}
	var conn net.Conn
	var err error
	tlsCfg := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.TLS == "implicit" {
		conn, err = tls.DialWithDialer(&d, "tcp", addr, tlsCfg)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Minute))
	}
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errNoStartTLS
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return err
		}
	}
	if cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password.Reveal(), cfg.Host)); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

var errNoStartTLS = errors.New("the mail server does not offer STARTTLS, which the system's smtp settings require")

// transientSMTP reports the failures worth another try: no connection, or a 4xx answer.
func transientSMTP(err error) bool {
	if errors.Is(err, errNoStartTLS) {
		return false
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code >= 400 && te.Code < 500
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// Check connects to the mail server and says hello.
func Check(ctx context.Context, _ string, sys *system.Spec) (string, error) {
	if sys.SMTP == nil {
		return "", errors.New("the system has no smtp settings")
	}
	cfg := sys.SMTP
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if cfg.TLS == "implicit" {
		tc := tls.Client(conn, &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", err
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Hello("causeway"); err != nil {
		return "", err
	}
	if cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return "", errNoStartTLS
		}
	}
	return "the mail server answered", nil
}
