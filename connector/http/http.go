// Package httpconn is the HTTP connector: it carries out a System's HTTP operations, the
// calls that flow steps make. It fills the operation's path from the call's parameters,
// adds the system's authentication and headers, sends a JSON body, and sorts failures into
// transient ones (worth retrying: the network, timeouts, 408, 429, 5xx) and permanent ones
// (other 4xx, a missing parameter), which is what the retry path and the errors queue need.
package httpconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/internal/jsonscan"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/telemetry"
)

// MaxResponseBytes bounds the body of an answer the connector reads; a larger answer is a
// permanent error rather than a node out of memory.
const MaxResponseBytes = 10 << 20

// Call is one call of an operation.
type Call struct {
	// Params fill the {placeholders} of the operation's path.
	Params map[string]any
	// Query adds query parameters to the operation's own.
	Query map[string]any
	// Headers add headers to the system's and the operation's.
	Headers map[string]string
	// Body is sent as JSON when it is not nil.
	Body any
	// IdempotencyKey is sent as Idempotency-Key, so that a target can recognise a call
	// made again after a crash.
	IdempotencyKey string
	// Traceparent is the W3C trace context to carry on.
	Traceparent string
	// Forward are headers passed on from a gateway's client; every other header of the
	// call, the system's and the operation's wins over them.
	Forward http.Header
	// Raw asks for a JSON answer as it came (Result.Raw) rather than decoded, for a
	// caller that passes it on; an operation with a response mapping decodes it anyway.
	// The result's headers are then Content-Type and Retry-After only, and may be
	// shared with other results: read them, never change them.
	Raw bool
	// NoHeaders says the caller reads no header of the result: unless the operation's
	// response mapping reads them, the result's headers are Content-Type and Retry-After
	// only, as with Raw (shared: read them, never change them).
	NoHeaders bool
}

// Result is a successful call's answer.
type Result struct {
	// Status is the HTTP status code.
	Status int
	// Headers are the answer's headers.
	Headers http.Header
	// Body is the answer decoded from JSON, or the text itself for another content type,
	// or nil for none.
	Body any
	// Raw is the JSON answer as it came, instead of Body, when the call asked for it.
	Raw []byte
	// Duration is how long the call took.
	Duration time.Duration
}

// Error is a failed call.
type Error struct {
	// System and Operation name what was called.
	System, Operation string
	// Status is the HTTP status of the answer, 0 when there was none.
	Status int
	// Transient reports that calling again later may succeed.
	Transient bool
	// RetryAfter is what the target asked for in a Retry-After header, if anything.
	RetryAfter time.Duration
	// Body is the start of the answer's body, for the run history.
	Body string
	// Err is the cause.
	Err error
}

// Error says which call failed, how, and whether it is worth retrying.
func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	msg := fmt.Sprintf("call %s.%s: %v (%s)", e.System, e.Operation, e.Err, kind)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Unwrap gives the cause.
func (e *Error) Unwrap() error { return e.Err }

// Client carries out HTTP operations. It is safe for concurrent use. Each system gets an
// HTTP client of its own (its TLS settings and redirect policy) and, with OAuth 2.0, a
// cached token.
type Client struct {
	mu      sync.Mutex // held while a system's client or token source is made
	clients sync.Map   // system name → *sysClient
	tokens  map[string]*tokenSource
	metrics *telemetry.CallMetrics
}

// New returns a client; its metrics are registered with reg when reg is not nil.
func New(reg prometheus.Registerer) *Client {
	return &Client{tokens: map[string]*tokenSource{}, metrics: telemetry.NewCallMetrics(reg)}
}

// Close releases idle connections.
func (c *Client) Close() {
	c.clients.Range(func(_, v any) bool {
		v.(*sysClient).hc.CloseIdleConnections()
		return true
	})
}

// client returns the HTTP client of a system, built on first use from its settings.
func (c *Client) client(name string, h *system.HTTP) *sysClient {
	if sc, ok := c.clients.Load(name); ok {
		return sc.(*sysClient)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if sc, ok := c.clients.Load(name); ok {
		return sc.(*sysClient)
	}
	limit := h.MaxResponseBytes
	if limit <= 0 {
		limit = MaxResponseBytes
	}
	tr := newTransport(h.TLSConfig(), limit, h.BaseURL)
	hc := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		// A redirect to another host would carry the system's credentials there; and an
		// operation is declared with its path, so by default a redirect is the answer.
		if !h.FollowRedirects || len(via) >= 5 || req.URL.Host != via[0].URL.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	sc := &sysClient{hc: hc, tr: tr, fast: !h.FollowRedirects && !proxied(h.BaseURL)}
	c.clients.Store(name, sc)
	return sc
}

// Do calls the operation op of the system named sysName.
func (c *Client) Do(ctx context.Context, sysName string, sys *system.Spec, opName string, call Call) (*Result, error) {
	start := time.Now()
	res, err := c.do(ctx, sysName, sys, opName, call)
	c.observe(sysName, opName, start, res, err)
	return res, err
}

// observe counts a call in the metrics and notes its duration in its result.
func (c *Client) observe(sysName, opName string, start time.Time, res *Result, err error) {
	took := time.Since(start)
	c.metrics.Observe("http", sysName, opName, outcomeOf(err), took)
	if res != nil {
		res.Duration = took
	}
}

// outcomeOf is the outcome label of a call that ended with err.
func outcomeOf(err error) string {
	if err != nil {
		// Only here: errors.As's target would be made on the heap for every call.
		var ce *Error
		if errors.As(err, &ce) {
			if ce.Transient {
				return "transient"
			}
			return "permanent"
		}
	}
	return "ok"
}

func (c *Client) do(ctx context.Context, sysName string, sys *system.Spec, opName string, call Call) (*Result, error) {
	op, ok := sys.Operation(opName)
	if !ok || op.HTTP == nil || sys.HTTP == nil {
		return nil, &Error{System: sysName, Operation: opName, Err: errors.New("no such HTTP operation")}
	}
	h := op.HTTP
	target, err := buildURL(sys.HTTP.BaseURL, h, call)
	if err != nil {
		return nil, &Error{System: sysName, Operation: opName, Err: err}
	}
	var body []byte
	if call.Body != nil {
		if body, err = expr.MarshalJSON(call.Body); err != nil {
			return nil, &Error{System: sysName, Operation: opName, Err: fmt.Errorf("body: %w", err)}
		}
	}
	timeout, deadline, hasDeadline := callDeadline(ctx, time.Time{}, sys.HTTP, h)
	sc := c.client(sysName, sys.HTTP)
	x := exchange{method: h.Method, url: target, body: body, call: call, sys: sys.HTTP, op: h, limit: responseLimit(sys.HTTP), deadline: deadline}
	var ans answer
	if sc.fast {
		// The lean client takes the deadline itself: no timer, no context of our own.
		ans, err = c.fastExchange(ctx, sysName, sc, &x)
	} else {
		if hasDeadline {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		ans, err = c.stdExchange(ctx, sysName, sc, &x)
	}
	if err != nil {
		return nil, exchangeError(ctx, sysName, opName, timeout, x.limit, err)
	}
	return finish(ctx, sysName, opName, &x, &ans)
}

// callDeadline is when a call ends: at the caller's deadline (its context's, or until when
// it is not zero, whichever is sooner) or after the operation's (or else the system's)
// timeout, whichever comes first. hasDeadline is false when none is set.
func callDeadline(ctx context.Context, until time.Time, sys *system.HTTP, h *system.HTTPOperation) (timeout time.Duration, deadline time.Time, hasDeadline bool) {
	timeout = sys.Timeout
	if h.Timeout > 0 {
		timeout = h.Timeout
	}
	deadline, hasDeadline = ctx.Deadline()
	if !until.IsZero() && (!hasDeadline || until.Before(deadline)) {
		deadline, hasDeadline = until, true
	}
	switch {
	case timeout <= 0:
	case !hasDeadline:
		deadline, hasDeadline = time.Now().Add(timeout), true
	default:
		// now + timeout, if sooner, worked out from the deadline: time.Until reads only the
		// monotonic clock, half of what time.Now costs, on every call.
		if left := time.Until(deadline); left > timeout {
			deadline = deadline.Add(timeout - left)
		}
	}
	return timeout, deadline, hasDeadline
}

// responseLimit is the largest answer a system may give.
func responseLimit(sys *system.HTTP) int64 {
	if sys.MaxResponseBytes > 0 {
		return sys.MaxResponseBytes
	}
	return MaxResponseBytes
}

// exchangeError is the call's error for an exchange that got no usable answer.
func exchangeError(ctx context.Context, sysName, opName string, timeout time.Duration, limit int64, err error) error {
	var e *Error
	if errors.As(err, &e) {
		e.System, e.Operation = sysName, opName
		return e
	}
	fail := func(transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Transient: transient, Err: err}
	}
	if errors.Is(err, errTooLarge) {
		return fail(false, fmt.Errorf("answer over %d bytes", limit))
	}
	// The request never got an answer: the network, a refused connection, a timeout.
	// All are worth another try, except a certificate the system's TLS settings do not
	// accept, which is a configuration to fix. The error text is the transport's,
	// which names the URL but never a header.
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fail(true, fmt.Errorf("no answer within %s", timeout))
	}
	return fail(!isTLSConfigError(err), scrub(err))
}

// finish turns an answer into the call's result: a status the operation does not count
// as success is an error, JSON is checked (and decoded unless the caller passes it on),
// and the operation's response mapping applies.
func finish(ctx context.Context, sysName, opName string, x *exchange, ans *answer) (*Result, error) {
	fail := func(status int, transient bool, err error) *Error {
		return &Error{System: sysName, Operation: opName, Status: status, Transient: transient, Err: err}
	}
	h, call := x.op, &x.call
	data := ans.body
	if int64(len(data)) > x.limit {
		return nil, fail(ans.status, false, fmt.Errorf("answer over %d bytes", x.limit))
	}
	if !h.IsSuccess(ans.status) {
		e := fail(ans.status, transientStatus(ans.status), fmt.Errorf("HTTP %d %s", ans.status, http.StatusText(ans.status)))
		e.RetryAfter = retryAfter(ans.header.Get("Retry-After"))
		e.Body = snippet(data)
		return nil, e
	}
	res := &Result{Status: ans.status, Headers: ans.header}
	m := h.ResponseMapping()
	if len(data) > 0 {
		ct := ans.header.Get("Content-Type")
		var err error
		switch {
		case call.Raw && m == nil && isJSON(ct):
			// The caller passes the answer on as it is: it is checked, not decoded.
			if !jsonscan.Valid(data) {
				return nil, fail(ans.status, false, errors.New("the answer says it is JSON but is not"))
			}
			res.Raw = data
		case isJSON(ct):
			if res.Body, err = expr.DecodeJSON(data); err != nil {
				return nil, fail(ans.status, false, fmt.Errorf("the answer says it is JSON but is not: %v", err))
			}
		default:
			res.Body = string(data)
		}
	}
	if m != nil {
		headers := map[string]any{}
		for k := range ans.header {
			headers[strings.ToLower(k)] = ans.header.Get(k)
		}
		in := map[string]any{"status": ans.status, "headers": headers, "body": res.Body}
		var err error
		if res.Body, err = m.Eval(ctx, in); err != nil {
			return nil, fail(ans.status, false, fmt.Errorf("response mapping: %w", err))
		}
	}
	return res, nil
}

// isTLSConfigError reports a failure of certificate verification or of the TLS handshake's
// agreement, which only a change of settings can fix.
func isTLSConfigError(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &ve)
}

// buildURL joins the base URL and the operation's path, fills its placeholders (each value
// percent-encoded as one path segment) and adds the query.
func buildURL(base string, h *system.HTTPOperation, call Call) (string, error) {
	var missing, dots []string
	// The placeholders are filled by hand: a regular expression here costs more than the
	// rest of building the request.
	var b strings.Builder
	b.Grow(len(base) + len(h.Path) + 16)
	b.WriteString(strings.TrimSuffix(base, "/"))
	rest := h.Path
	for {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest[max(i, 0):], '}')
		if i < 0 || j < 0 {
			b.WriteString(rest)
			break
		}
		j += i
		b.WriteString(rest[:i])
		name := rest[i+1 : j]
		v, ok := call.Params[name]
		switch s := ""; {
		case !ok || v == nil:
			missing = append(missing, name)
			b.WriteString(rest[i : j+1])
		default:
			s = expr.ToString(v)
			if s == "." || s == ".." {
				// Percent-encoding leaves dots alone, and a server resolves them: a value
				// of ".." would climb out of the operation's path.
				dots = append(dots, name)
			}
			b.WriteString(url.PathEscape(s))
		}
		rest = rest[j+1:]
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("the path %s needs the parameter %s", h.Path, strings.Join(missing, ", "))
	}
	if len(dots) > 0 {
		return "", fmt.Errorf("the path %s: parameter %s may not be . or ..", h.Path, strings.Join(dots, ", "))
	}
	if len(h.Query) == 0 && len(call.Query) == 0 {
		// The base URL was checked when the definitions were loaded, and the path is
		// made of escaped segments: there is nothing to parse.
		return b.String(), nil
	}
	path := strings.TrimPrefix(b.String(), strings.TrimSuffix(base, "/"))
	u, err := url.Parse(strings.TrimSuffix(base, "/") + path)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, v := range h.Query {
		q.Set(k, v)
	}
	for k, v := range call.Query {
		if list, ok := v.([]any); ok {
			q.Del(k)
			for _, e := range list {
				q.Add(k, expr.ToString(e))
			}
			continue
		}
		q.Set(k, expr.ToString(v))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// placeholderRe finds {name} in a path.
var placeholderRe = system.PathPlaceholder

// authenticate adds the system's credentials to a request of the standard client.
func (c *Client) authenticate(ctx context.Context, name string, req *http.Request, a *system.HTTPAuth, refresh bool) error {
	cr, err := c.credentials(ctx, name, a, refresh)
	if err != nil {
		return err
	}
	if cr.header != "" {
		req.Header.Set(cr.header, cr.value)
	}
	if cr.query != "" {
		q := req.URL.Query()
		q.Set(cr.query, cr.value)
		req.URL.RawQuery = q.Encode()
	}
	return nil
}

// credential is how a call authenticates: a header, or a query parameter, with its value.
type credential struct {
	header, query, value string
}

// credentials are the system's credentials for one call. With OAuth 2.0, refresh fetches a
// new token even if the cached one has not expired.
func (c *Client) credentials(ctx context.Context, name string, a *system.HTTPAuth, refresh bool) (credential, error) {
	switch {
	case a == nil:
	case !a.Bearer.IsZero():
		return credential{header: "Authorization", value: "Bearer " + a.Bearer.Reveal()}, nil
	case a.Basic != nil:
		auth := a.Basic.Username + ":" + a.Basic.Password.Reveal()
		return credential{header: "Authorization", value: "Basic " + base64.StdEncoding.EncodeToString([]byte(auth))}, nil
	case a.Header != nil:
		return credential{header: a.Header.Name, value: a.Header.Value.Reveal()}, nil
	case a.Query != nil:
		return credential{query: a.Query.Name, value: a.Query.Value.Reveal()}, nil
	case a.OAuth2 != nil:
		c.mu.Lock()
		ts, ok := c.tokens[name]
		if !ok {
			ts = &tokenSource{cfg: a.OAuth2, hc: &http.Client{Timeout: 30 * time.Second}}
			c.tokens[name] = ts
		}
		c.mu.Unlock()
		tok, err := ts.token(ctx, refresh)
		if err != nil {
			return credential{}, err
		}
		return credential{header: "Authorization", value: "Bearer " + tok}, nil
	}
	return credential{}, nil
}

// transientStatus reports the answers worth another try: the target was busy, down for a
// moment, or asked to be called later.
func transientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooEarly || code == http.StatusTooManyRequests || code >= 500
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// snippet is the start of an answer's body for an error, so that the run history shows
// what the target said without holding megabytes.
func snippet(data []byte) string {
	const max = 512
	s := strings.ToValidUTF8(string(data[:min(len(data), max)]), "?")
	if len(data) > max {
		s += fmt.Sprintf("… (%d bytes in all)", len(data))
	}
	return s
}

func isJSON(contentType string) bool {
	// The usual answers are known without parsing (which builds a map of parameters).
	if strings.EqualFold(contentType, "application/json") || strings.EqualFold(contentType, "application/json; charset=utf-8") {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// scrub removes the query string from a transport error's URL: a query may carry a token.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.RawQuery != "" {
			u.RawQuery = "…"
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("timeout: %w", err)
	}
	return err
}

// Check tries a system's HTTP connection: a GET of its base URL with its TLS settings and
// credentials (an OAuth 2.0 token is fetched). Any answer means the system is reachable;
// the detail says what it answered.
func (c *Client) Check(ctx context.Context, name string, sys *system.Spec) (detail string, err error) {
	if sys.HTTP == nil {
		return "", errors.New("the system has no http settings")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sys.HTTP.BaseURL, nil)
	if err != nil {
		return "", err
	}
	for k, v := range sys.HTTP.Headers {
		req.Header.Set(k, v)
	}
	if err := c.authenticate(ctx, name, req, sys.HTTP.Auth, false); err != nil {
		return "", err
	}
	resp, err := c.client(name, sys.HTTP).hc.Do(req)
	if err != nil {
		return "", scrub(err)
	}
	resp.Body.Close()
	detail = fmt.Sprintf("GET %s answered HTTP %d", sys.HTTP.BaseURL, resp.StatusCode)
	if resp.TLS != nil {
		detail += fmt.Sprintf(" over TLS %s", tls.VersionName(resp.TLS.Version))
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return detail, fmt.Errorf("%s: the credentials were refused", detail)
	}
	return detail, nil
}
