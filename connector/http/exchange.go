package httpconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
)

// sysClient is what the connector keeps per system: the standard client (redirects, a
// proxy from the environment) and the lean transport under it, which fast calls use
// directly.
type sysClient struct {
	hc *http.Client
	tr *transport
	// fast says a call can go straight to the lean client: the system follows no
	// redirects and no proxy from the environment is set for its base URL.
	fast bool
}

// proxied reports whether the environment sends requests to base through a proxy.
func proxied(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return true
	}
	p, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	return err != nil || p != nil
}

// exchange is one request of a call, ready to send.
type exchange struct {
	method, url string
	body        []byte
	// call is held by value, as fwd is: a pointer to the caller's would make the compiler
	// move the caller's onto the heap, once per call (the exchange's strings end up in
	// errors, and escape analysis does not tell one field from another).
	call Call
	// fwd, when forwarded is set, are the X-Forwarded-* fields of a prepared call, and
	// fwdMore its other forwarded headers.
	fwd       Forwarded
	forwarded bool
	fwdMore   [][2]string
	sys       *system.HTTP
	op        *system.HTTPOperation
	limit     int64
	// deadline ends the exchange, when it is not zero.
	deadline time.Time
	// newTrace sends a new trace's traceparent (call.Traceparent is empty).
	newTrace bool
}

// answer is what came back.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// headers applies the request's headers, lowest precedence first: what a gateway forwards,
// then the system's, the operation's and the call's own, then those the connector sets.
func (x *exchange) headers(add, set func(k, v string), get func(k string) string) {
	if x.forwarded {
		f := &x.fwd
		add("X-Forwarded-For", f.For)
		add("X-Forwarded-Proto", f.Proto)
		add("X-Forwarded-Host", f.Host)
	}
	for _, kv := range x.fwdMore {
		add(kv[0], kv[1])
	}
	for k, vs := range x.call.Forward {
		for _, v := range vs {
			add(k, v)
		}
	}
	for k, v := range x.sys.Headers {
		set(k, v)
	}
	for k, v := range x.op.Headers {
		set(k, v)
	}
	for k, v := range x.call.Headers {
		set(k, v)
	}
	if x.body != nil {
		set("Content-Type", "application/json")
	}
	if get("Accept") == "" {
		set("Accept", "application/json")
	}
	if x.call.IdempotencyKey != "" {
		set("Idempotency-Key", x.call.IdempotencyKey)
	}
	if x.call.Traceparent != "" {
		set("traceparent", x.call.Traceparent)
	}
}

// fastExchange sends the request with the lean client, without the standard library's
// request, client and answer types in between: on this path they cost as much as the
// exchange itself (ADR 0010).
// The answer is returned by value: it is read once, by finish, and needs no allocation.
func (c *Client) fastExchange(ctx context.Context, name string, sc *sysClient, x *exchange) (answer, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	// The path was built with every parameter escaped as one segment; the lean client
	// leaves it as it is (DisablePathNormalizing).
	req.SetRequestURI(x.url)
	req.Header.SetMethod(x.method)
	x.headers(req.Header.Add, req.Header.Set, func(k string) string { return string(req.Header.Peek(k)) })
	if x.newTrace {
		// Where headers sets call.Traceparent: last.
		var tp [message.TraceparentLen]byte
		req.Header.SetBytesV("traceparent", message.AppendTraceparent(tp[:0]))
	}
	if x.body != nil {
		req.SetBodyRaw(x.body)
	}
	auth := func(refresh bool) error {
		cr, err := c.credentials(ctx, name, x.sys.Auth, refresh)
		if err != nil {
			return err
		}
		if cr.header != "" {
			req.Header.Set(cr.header, cr.value)
		}
		if cr.query != "" {
			req.URI().QueryArgs().Set(cr.query, cr.value)
		}
		return nil
	}
	if err := auth(false); err != nil {
		return answer{}, &Error{Transient: transientStatus(statusOf(err)), Err: err}
	}
	deadline := x.deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(sc.tr.timeout)
	}
	// The exchange runs on this goroutine, so a caller that goes away is noticed through
	// the deadline only; checking the context first at least spares a request nobody
	// waits for.
	if err := ctx.Err(); err != nil {
		return answer{}, err
	}
	err := sc.tr.doDeadline(x.url, req, resp, deadline)
	if err == nil && resp.StatusCode() == http.StatusUnauthorized && x.sys.Auth != nil && x.sys.Auth.OAuth2 != nil {
		// The token may have been revoked before it expired: fetch a new one, once.
		if aerr := auth(true); aerr != nil {
			return answer{}, &Error{Transient: transientStatus(statusOf(aerr)), Err: aerr}
		}
		resp.Reset()
		err = sc.tr.doDeadline(x.url, req, resp, deadline)
	}
	if err != nil {
		return answer{}, failFast(x.method, x.url, err)
	}
	ans := answer{status: resp.StatusCode(), body: bytes.Clone(resp.Body())}
	if (x.call.Raw || x.call.NoHeaders) && x.op.ResponseMapping() == nil {
		// A caller that passes the answer on, or says it reads no header, looks at no
		// header but these; it never changes them (Result.Headers), so the usual JSON
		// answer shares one.
		ct, ra := resp.Header.ContentType(), resp.Header.Peek("Retry-After")
		if len(ra) == 0 {
			if h := sharedHeader(ct); h != nil {
				ans.header = h
				return ans, nil
			}
		}
		ans.header = make(http.Header, 2)
		if len(ct) > 0 {
			ans.header["Content-Type"] = contentType(ct)
		}
		if len(ra) > 0 {
			ans.header["Retry-After"] = []string{string(ra)}
		}
		return ans, nil
	}
	ans.header = make(http.Header, resp.Header.Len())
	for k, v := range resp.Header.All() {
		key := http.CanonicalHeaderKey(string(k))
		ans.header[key] = append(ans.header[key], string(v))
	}
	return ans, nil
}

// Values of the usual Content-Type fields, shared by the answers that carry them: header
// values are replaced, never changed in place (http.Header's Set and Add make new slices).
var (
	jsonContentType     = []string{"application/json"}
	jsonUTF8ContentType = []string{"application/json; charset=utf-8"}
)

// The headers of answers that carry only the usual Content-Type, shared read-only.
var (
	jsonHeader     = http.Header{"Content-Type": jsonContentType}
	jsonUTF8Header = http.Header{"Content-Type": jsonUTF8ContentType}
)

// sharedHeader is the shared header of an answer with only Content-Type ct, or nil.
func sharedHeader(ct []byte) http.Header {
	switch string(ct) {
	case "application/json":
		return jsonHeader
	case "application/json; charset=utf-8":
		return jsonUTF8Header
	}
	return nil
}

// contentType is the value of an answer's Content-Type field.
func contentType(ct []byte) []string {
	switch string(ct) {
	case "application/json":
		return jsonContentType
	case "application/json; charset=utf-8":
		return jsonUTF8ContentType
	}
	return []string{string(ct)}
}

// failFast turns the lean client's errors into the ones the connector tells apart.
func failFast(method, target string, err error) error {
	where := target
	if u, perr := url.Parse(target); perr == nil {
		if u.RawQuery != "" {
			u.RawQuery = "…"
		}
		u.User = nil
		where = u.String()
	}
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return fmt.Errorf("%s %s: %w", method, where, context.DeadlineExceeded)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errTooLarge
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fmt.Errorf("%s %s: every connection to the system is busy", method, where)
	}
	return fmt.Errorf("%s %s: %w", method, where, err)
}

// stdExchange sends the request through the standard client, for systems that follow
// redirects or are reached through a proxy.
func (c *Client) stdExchange(ctx context.Context, name string, sc *sysClient, x *exchange) (answer, error) {
	var body io.Reader
	if x.body != nil {
		body = bytes.NewReader(x.body)
	}
	req, err := http.NewRequestWithContext(ctx, x.method, x.url, body)
	if err != nil {
		return answer{}, &Error{Err: err}
	}
	x.headers(req.Header.Add, req.Header.Set, req.Header.Get)
	if err := c.authenticate(ctx, name, req, x.sys.Auth, false); err != nil {
		return answer{}, &Error{Transient: transientStatus(statusOf(err)), Err: err}
	}
	resp, err := sc.hc.Do(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && x.sys.Auth != nil && x.sys.Auth.OAuth2 != nil {
		resp.Body.Close()
		if aerr := c.authenticate(ctx, name, req, x.sys.Auth, true); aerr != nil {
			return answer{}, &Error{Transient: transientStatus(statusOf(aerr)), Err: aerr}
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return answer{}, &Error{Err: err}
			}
		}
		resp, err = sc.hc.Do(req)
	}
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, x.limit+1))
	if err != nil {
		return answer{}, &Error{Status: resp.StatusCode, Transient: true, Err: fmt.Errorf("reading the answer: %w", scrub(err))}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}, nil
}
