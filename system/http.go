package system

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
)

// HTTP is how the platform reaches a system over HTTP: the base URL every operation's path
// is relative to, the authentication every call carries, and defaults for the calls.
type HTTP struct {
	// BaseURL is an absolute http or https URL.
	BaseURL string `yaml:"baseURL" required:"true" doc:"Absolute http or https URL that operation paths are appended to; a path in it (/api/v2) is kept." example:"https://erp.example.com/api"`
	// Timeout bounds one call, unless the operation says otherwise.
	Timeout time.Duration `yaml:"timeout" default:"30s" doc:"How long one call may take, connecting and reading the whole answer included, unless the operation sets its own."`
	// Headers are sent with every call.
	Headers map[string]string `yaml:"headers" doc:"Headers sent with every call, such as a tenant id. Authentication belongs in auth, which keeps its values secret."`
	// Auth is the authentication of every call.
	Auth *HTTPAuth `yaml:"auth" doc:"How calls authenticate. Give one of bearer, basic, header, query or oauth2."`
	// TLS configures the connection's TLS.
	TLS *TLS `yaml:"tls" doc:"TLS settings: the certificate authority to trust, a client certificate for mutual TLS, the lowest version."`
	// FollowRedirects lets calls follow redirects to the same host.
	FollowRedirects bool `yaml:"followRedirects" doc:"Follow redirects (up to 5), only to the same host, so that credentials are not carried elsewhere. Off by default: a 3xx answer is then a permanent failure."`
	// MaxResponseBytes bounds the answers read.
	MaxResponseBytes int64 `yaml:"maxResponseBytes" default:"10485760" doc:"The largest answer body read; a larger one is a permanent failure."`

	// tlsConfig is TLS built from TLS at load time.
	tlsConfig *tls.Config
}

// TLS is the TLS of a system's connections. Paths are relative to the definition file.
type TLS struct {
	// CAFile is a PEM file of certificate authorities to trust instead of the system's.
	CAFile string `yaml:"caFile" doc:"A PEM file of the certificate authorities to trust, instead of the operating system's; relative to the definition file." example:"certs/erp-ca.pem"`
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile string `yaml:"certFile" doc:"A PEM client certificate, for mutual TLS (with keyFile); relative to the definition file."`
	// KeyFile is the client certificate's key.
	KeyFile string `yaml:"keyFile" doc:"The PEM private key of certFile; relative to the definition file."`
	// MinVersion is the lowest TLS version accepted.
	MinVersion string `yaml:"minVersion" default:"1.2" enum:"1.2,1.3" doc:"The lowest TLS version accepted."`
}

// TLSConfig returns the TLS configuration built when the definitions loaded, or nil for
// the defaults.
func (h *HTTP) TLSConfig() *tls.Config { return h.tlsConfig }

// HTTPAuth is one way of authenticating HTTP calls. Exactly one field is set.
type HTTPAuth struct {
	// Bearer is a token sent as "Authorization: Bearer <token>".
	Bearer config.Secret `yaml:"bearer" doc:"A token sent as Authorization: Bearer <token>." example:"${secret:ERP_TOKEN}"`
	// Basic is a user name and password for HTTP basic authentication.
	Basic *BasicAuth `yaml:"basic" doc:"A user name and password sent with HTTP basic authentication."`
	// Header is a secret sent in a header of its own, such as an API key.
	Header *HeaderAuth `yaml:"header" doc:"A secret sent in a header of its own, such as X-Api-Key."`
	// Query is a secret sent as a query parameter, such as an API key.
	Query *HeaderAuth `yaml:"query" doc:"A secret sent as a query parameter of its own, such as api_key. Prefer header where the system allows it: URLs end up in logs of proxies along the way."`
	// OAuth2 gets tokens with the client credentials grant.
	OAuth2 *OAuth2 `yaml:"oauth2" doc:"OAuth 2.0 client credentials: a token is fetched from tokenURL, cached, refreshed before it expires, and sent as a bearer token."`
}

// OAuth2 is the OAuth 2.0 client credentials grant.
type OAuth2 struct {
	// TokenURL is the token endpoint.
	TokenURL string `yaml:"tokenURL" required:"true" doc:"The token endpoint." example:"https://login.example.com/oauth2/token"`
	// ClientID is the client's id.
	ClientID string `yaml:"clientID" required:"true" doc:"The client id."`
	// ClientSecret is the client's secret.
	ClientSecret config.Secret `yaml:"clientSecret" required:"true" doc:"The client secret, sent with HTTP basic authentication to the token endpoint." example:"${secret:ERP_CLIENT_SECRET}"`
	// Scopes are the scopes asked for.
	Scopes []string `yaml:"scopes" doc:"The scopes asked for."`
	// Audience is the audience asked for, where the provider needs one.
	Audience string `yaml:"audience" doc:"The audience asked for, for providers that need one."`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	// Username is the user name.
	Username string `yaml:"username" required:"true" doc:"The user name."`
	// Password is the password.
	Password config.Secret `yaml:"password" required:"true" doc:"The password." example:"${secret:ERP_PASSWORD}"`
}

// HeaderAuth is a secret sent in a named header.
type HeaderAuth struct {
	// Name is the header's name.
	Name string `yaml:"name" required:"true" doc:"The header's name." example:"X-Api-Key"`
	// Value is the header's value.
	Value config.Secret `yaml:"value" required:"true" doc:"The header's value." example:"${secret:CRM_API_KEY}"`
}

// Operation is one named thing a system can be asked to do.
type Operation struct {
	// Description says what the operation does.
	Description string `yaml:"description" doc:"What the operation does, for people reading the definitions and the console."`
	// HTTP is the operation as an HTTP request.
	HTTP *HTTPOperation `yaml:"http" doc:"The operation as an HTTP request to the system's baseURL. Give one kind per operation."`
	// SQL is the operation as SQL statements.
	SQL *SQLOperation `yaml:"sql" doc:"The operation as SQL statements run on the system's database. Give one kind per operation."`
	// AMQP is the operation as a publish to a broker.
	AMQP *AMQPOperation `yaml:"amqp" doc:"The operation as a publish to the system's AMQP broker, confirmed by the broker. Give one kind per operation."`
	// NATS is the operation as a publish or request on the system's NATS server.
	NATS *NATSOperation `yaml:"nats" doc:"The operation as a publish or a request on the system's NATS server. Give one kind per operation."`
	// MQTT is the operation as a publish to the system's MQTT broker.
	MQTT *MQTTOperation `yaml:"mqtt" doc:"The operation as a publish to the system's MQTT broker. Give one kind per operation."`
	// File is the operation as a file written to the system's directory.
	File *FileOperation `yaml:"file" doc:"The operation as a file written, atomically, to the system's directory. Give one kind per operation."`
	// Kafka is the operation as a record produced to the system's Kafka cluster.
	Kafka *KafkaOperation `yaml:"kafka" doc:"The operation as a record produced to the system's Kafka cluster, acknowledged by all in-sync replicas. Give one kind per operation."`
	// Email is the operation as an email sent through the system's mail server.
	Email *EmailOperation `yaml:"email" doc:"The operation as an email sent through the system's mail server. Give one kind per operation."`
}

// kinds counts how many ways of carrying out the operation it gives.
func (o *Operation) kinds() int {
	n := 0
	for _, set := range []bool{o.HTTP != nil, o.SQL != nil, o.AMQP != nil, o.NATS != nil, o.MQTT != nil, o.File != nil, o.Email != nil, o.Kafka != nil} {
		if set {
			n++
		}
	}
	return n
}

// HTTPOperation is an operation carried out by one HTTP request.
type HTTPOperation struct {
	// Method is the HTTP method.
	Method string `yaml:"method" required:"true" enum:"GET,HEAD,POST,PUT,PATCH,DELETE" doc:"The HTTP method."`
	// Path is appended to the base URL; {name} placeholders are filled from the call's
	// parameters.
	Path string `yaml:"path" required:"true" doc:"Path appended to the system's baseURL. {name} placeholders are filled from the call's parameters of that name, percent-encoded." example:"/orders/{orderId}/ship"`
	// Query are query parameters sent with every call of the operation.
	Query map[string]string `yaml:"query" doc:"Query parameters sent with every call of this operation; a call adds its own."`
	// Headers are sent with every call of the operation.
	Headers map[string]string `yaml:"headers" doc:"Headers sent with every call of this operation, on top of the system's."`
	// Timeout overrides the system's timeout.
	Timeout time.Duration `yaml:"timeout" doc:"How long one call of this operation may take; the system's timeout when not set."`
	// Success lists the statuses that count as success.
	Success []int `yaml:"success" doc:"The HTTP statuses that count as success; any 2xx when not set." example:"[200, 404]"`
	// Response maps the answer's body to the call's result.
	Response string `yaml:"response" doc:"A jq program that maps the answer to the call's result; its input is {status, headers, body}. The body itself when not set." example:"{id: .body.orderId, found: (.status == 200)}"`

	response *expr.Program
}

// ResponseMapping returns the compiled response mapping, or nil.
func (o *HTTPOperation) ResponseMapping() *expr.Program { return o.response }

// IsSuccess reports whether an answer's status counts as success.
func (o *HTTPOperation) IsSuccess(status int) bool {
	if len(o.Success) == 0 {
		return status >= 200 && status <= 299
	}
	return slices.Contains(o.Success, status)
}

// PathPlaceholder finds the {name} placeholders in an operation path.
var PathPlaceholder = regexp.MustCompile(`\{([^{}]*)\}`)

// paramName is what a path parameter may be called.
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// operationName is what an operation may be called: it is written after the system's name
// in a call ("erp.markShipped").
var operationName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// SplitCall splits "<system>.<operation>" at its last dot: a System's name may have dots
// ("erp.eu"), an operation's never has. ok is false when either part is empty.
func SplitCall(call string) (sys, op string, ok bool) {
	i := strings.LastIndexByte(call, '.')
	if i <= 0 || i == len(call)-1 {
		return "", "", false
	}
	return call[:i], call[i+1:], true
}

// PathParams returns the names of the {placeholders} in the operation's path, in order.
func (o *HTTPOperation) PathParams() []string {
	var names []string
	for _, m := range PathPlaceholder.FindAllStringSubmatch(o.Path, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

// validateHTTP checks the HTTP settings of a system and its operations.
func (s *Spec) validateHTTP(ctx *config.Context) {
	if h := s.HTTP; h != nil {
		u, err := url.Parse(h.BaseURL)
		switch {
		case err != nil:
			ctx.Errorf("http.baseURL", "invalid URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			ctx.Errorf("http.baseURL", "%q is not an absolute http or https URL", h.BaseURL)
		case u.RawQuery != "" || u.Fragment != "":
			ctx.Errorf("http.baseURL", "%q has a query or fragment; put query parameters in the operations", h.BaseURL)
		}
		if h.Timeout <= 0 {
			ctx.Errorf("http.timeout", "must be positive")
		}
		for name := range h.Headers {
			checkHeaderName(ctx, config.MapPath("http.headers", name), name)
		}
		if a := h.Auth; a != nil {
			n := 0
			for _, set := range []bool{!a.Bearer.IsZero(), a.Basic != nil, a.Header != nil, a.Query != nil, a.OAuth2 != nil} {
				if set {
					n++
				}
			}
			// A secret read with --skip-secrets is empty, so a bearer-only auth can look
			// unset; only more than one is certainly wrong then.
			if n > 1 {
				ctx.Errorf("http.auth", "give only one of bearer, basic, header, query or oauth2")
			}
			if a.Header != nil {
				checkHeaderName(ctx, "http.auth.header.name", a.Header.Name)
			}
			if o := a.OAuth2; o != nil {
				if u, err := url.Parse(o.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					ctx.Errorf("http.auth.oauth2.tokenURL", "%q is not an absolute http or https URL", o.TokenURL)
				}
			}
		}
	}
	for _, name := range sortedOps(s) {
		op := s.Operations[name]
		field := config.MapPath("operations", name)
		if !operationName.MatchString(name) {
			ctx.Errorf(field, "invalid operation name %q: start with a letter, then letters, digits, '_' or '-'", name)
		}
		switch {
		case op.kinds() == 0:
			ctx.Errorf(field, "operation %q says nothing about how to carry it out: give http, sql, amqp, nats, mqtt, kafka, file or email", name)
			continue
		case op.kinds() > 1:
			ctx.Errorf(field, "operation %q gives more than one of http, sql, amqp, nats, mqtt, kafka, file and email: give one", name)
			continue
		case op.HTTP == nil:
			continue
		}
		if s.HTTP == nil {
			ctx.Errorf(field+".http", "operation %q is an HTTP request, but the system has no http settings (spec.http.baseURL)", name)
		}
		h := op.HTTP
		if !strings.HasPrefix(h.Path, "/") {
			ctx.Errorf(field+".http.path", "%q must start with /", h.Path)
		}
		if strings.Count(h.Path, "{") != strings.Count(h.Path, "}") {
			ctx.Errorf(field+".http.path", "unbalanced braces in %q", h.Path)
		}
		for _, p := range h.PathParams() {
			if !paramName.MatchString(p) {
				ctx.Errorf(field+".http.path", "invalid placeholder {%s}: use letters, digits and '_'", p)
			}
		}
		if h.Timeout < 0 {
			ctx.Errorf(field+".http.timeout", "must be positive")
		}
		for i, code := range h.Success {
			if code < 100 || code > 599 {
				ctx.Errorf(fmt.Sprintf("%s.http.success[%d]", field, i), "%d is not an HTTP status", code)
			}
		}
		for hn := range h.Headers {
			checkHeaderName(ctx, config.MapPath(field+".http.headers", hn), hn)
		}
	}
}

// checkHeaderName reports a header name that HTTP would refuse.
func checkHeaderName(ctx *config.Context, field, name string) {
	if name == "" || strings.ContainsAny(name, " \t\r\n:") || http.CanonicalHeaderKey(name) == "" {
		ctx.Errorf(field, "invalid header name %q", name)
	}
}

// Operation returns the named operation.
func (s *Spec) Operation(name string) (*Operation, bool) {
	op, ok := s.Operations[name]
	return op, ok
}

// String describes an operation for messages: "POST /orders/{orderId}/ship".
func (o *HTTPOperation) String() string { return fmt.Sprintf("%s %s", o.Method, o.Path) }

// sortedOps returns the names of a system's operations in order, so that problems are
// reported in the same order every time.
func sortedOps(s *Spec) []string {
	names := make([]string, 0, len(s.Operations))
	for name := range s.Operations {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
