package emailconn

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil/smtptest"
	"github.com/causeway/causeway/system"
)

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
	srv := smtptest.Start(t)
	ctx := context.Background()
	res, err := Do(ctx, "mail", mailSystem(srv.Addr, "none"), "notify", map[string]any{"email": "jane@example.com", "orderId": "A-1"})
	if err != nil {
		t.Fatal(err)
	}
	msg := srv.Messages()[0]
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
		if _, err := Do(ctx, "mail", mailSystem(srv.Addr, "none"), "notify", map[string]any{"email": email, "orderId": "A-2"}); !errors.As(err, &ee) || ee.Transient != transient {
			t.Errorf("%s: %v, want transient=%v", email, err, transient)
		}
	}
	// STARTTLS is required by default, and this server does not offer it: permanent.
	if _, err := Do(ctx, "mail", mailSystem(srv.Addr, "starttls"), "notify", map[string]any{"email": "jane@example.com", "orderId": "A-3"}); !errors.As(err, &ee) || ee.Transient || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("no STARTTLS: %v", err)
	}
	if _, err := Do(ctx, "mail", mailSystem(srv.Addr, "none"), "notify", map[string]any{"email": "not an address", "orderId": "A-4"}); !errors.As(err, &ee) || ee.Transient {
		t.Errorf("bad address: %v", err)
	}
	if detail, err := Check(ctx, "mail", mailSystem(srv.Addr, "none")); err != nil || detail == "" {
		t.Errorf("check: %q %v", detail, err)
	}
}
