package system

import (
	"net/mail"

	"github.com/causeway/causeway/config"
)

// SMTP is how the platform sends email through a mail server.
type SMTP struct {
	// Host and Port address the server.
	Host string `yaml:"host" required:"true" doc:"The mail server's host name." example:"smtp.example.com"`
	// Port is the server's port.
	Port int `yaml:"port" default:"587" doc:"The mail server's port: 587 for submission with STARTTLS, 465 for implicit TLS."`
	// TLS is how the connection is protected.
	TLS string `yaml:"tls" default:"starttls" enum:"starttls,implicit,none" doc:"starttls: upgrade the connection and refuse a server that cannot; implicit: TLS from the start (port 465); none: no TLS (only for a server on the same host or network)."`
	// Username and Password authenticate, when given.
	Username string `yaml:"username" doc:"The user name, for servers that need authentication (PLAIN)."`
	// Password is the password.
	Password config.Secret `yaml:"password" doc:"The password." example:"${secret:SMTP_PASSWORD}"`
	// From is the sender address.
	From string `yaml:"from" required:"true" doc:"The sender address." example:"Causeway <causeway@example.com>"`
}

// EmailOperation sends an email.
type EmailOperation struct {
	// To are the recipients; templates.
	To []string `yaml:"to" required:"true" doc:"The recipients; each a template over the call's with (.params)." example:"[\"${{ .params.email }}\"]"`
	// Subject is the subject line; a template.
	Subject string `yaml:"subject" required:"true" doc:"The subject line; a template." example:"Order ${{ .params.orderId }} shipped"`
	// Body is the plain-text body; a template.
	Body string `yaml:"body" required:"true" doc:"The plain-text body; a template."`
}

// validateSMTP checks the mail settings and operations.
func (s *Spec) validateSMTP(ctx *config.Context) {
	if m := s.SMTP; m != nil {
		if _, err := mail.ParseAddress(m.From); err != nil {
			ctx.Errorf("smtp.from", "%q is not an email address: %v", m.From, err)
		}
		if m.Port < 1 || m.Port > 65535 {
			ctx.Errorf("smtp.port", "%d is not a port", m.Port)
		}
	}
	for _, name := range sortedOps(s) {
		if op := s.Operations[name]; op.Email != nil && s.SMTP == nil {
			ctx.Errorf(config.MapPath("operations", name)+".email", "operation %q sends email, but the system has no smtp settings", name)
		}
	}
}
