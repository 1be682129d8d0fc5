package system

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/causeway/causeway/config"
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
	Auth *HTTPAuth `yaml:"auth" doc:"How calls authenticate. Give one of bearer, basic or header."`
}

// HTTPAuth is one way of authenticating HTTP calls. Exactly one field is set.
type HTTPAuth struct {
	// Bearer is a token sent as "Authorization: Bearer <token>".
	Bearer config.Secret `yaml:"bearer" doc:"A token sent as Authorization: Bearer <token>." example:"${secret:ERP_TOKEN}"`
	// Basic is a user name and password for HTTP basic authentication.
	Basic *BasicAuth `yaml:"basic" doc:"A user name and password sent with HTTP basic authentication."`
	// Header is a secret sent in a header of its own, such as an API key.
	Header *HeaderAuth `yaml:"header" doc:"A secret sent in a header of its own, such as X-Api-Key."`
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
	HTTP *HTTPOperation `yaml:"http" doc:"The operation as an HTTP request to the system's baseURL. Give http or sql."`
	// SQL is the operation as SQL statements.
	SQL *SQLOperation `yaml:"sql" doc:"The operation as SQL statements run on the system's database. Give http or sql."`
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
}

// PathPlaceholder finds the {name} placeholders in an operation path.
var PathPlaceholder = regexp.MustCompile(`\{([^{}]*)\}`)

// paramName is what a path parameter may be called.
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// operationName is what an operation may be called: it is written after the system's name
// in a call ("erp.markShipped").
var operationName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

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
			for _, set := range []bool{!a.Bearer.IsZero(), a.Basic != nil, a.Header != nil} {
				if set {
					n++
				}
			}
			// A secret read with --skip-secrets is empty, so a bearer-only auth can look
			// unset; only more than one is certainly wrong then.
			if n > 1 {
				ctx.Errorf("http.auth", "give only one of bearer, basic or header")
			}
			if a.Header != nil {
				checkHeaderName(ctx, "http.auth.header.name", a.Header.Name)
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
		case op.HTTP == nil && op.SQL == nil:
			ctx.Errorf(field, "operation %q says nothing about how to carry it out: give http or sql", name)
			continue
		case op.HTTP != nil && op.SQL != nil:
			ctx.Errorf(field, "operation %q gives both http and sql: give one", name)
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
