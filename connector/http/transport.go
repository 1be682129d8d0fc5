package httpconn

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// transport carries out the connector's requests over a lean HTTP/1.1 client that keeps
// its connections and does each exchange on the calling goroutine (ADR 0009). The standard
// library's transport hands every request to two goroutines per connection and back, and
// allocates per request much more than this one; measured through the gateway that costs
// half the throughput a proxy can reach on two cores. The http.Client above it still
// does what it is good at: redirects, the request and answer types the connector and its
// authentication use.
//
// Requests the lean client cannot carry go to the standard transport instead: those that
// an HTTP proxy from the environment must carry, and HTTP/2-only targets are not supported
// by either path (an operation names an HTTP/1.1 API).
type transport struct {
	fast *fasthttp.Client
	// base is the lean client of the system's own origin (origin: scheme://host[:port]),
	// which every call of the system goes to: fasthttp.Client would look it up by host
	// under a lock and count the request in a shared counter, on every request, and on two
	// cores the processors take turns for those. nil when the base URL has no origin the
	// lean client can take; fast serves any other target (a redirect's).
	base     *fasthttp.HostClient
	origin   string
	fallback *http.Transport
	// timeout bounds an exchange that has no deadline of its own; the connector always
	// gives one when the system or operation has a timeout.
	timeout time.Duration
}

// newTransport builds the transport of one system, whose calls go to baseURL.
func newTransport(cfg *tls.Config, maxBody int64, baseURL string) *transport {
	fb := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if cfg != nil {
		fb.TLSClientConfig = cfg.Clone()
	}
	fc := &fasthttp.Client{
		MaxConnsPerHost:     1024,
		MaxIdleConnDuration: 90 * time.Second,
		MaxConnWaitTimeout:  5 * time.Second,
		// A connection the target closed while idle is tried once more, as the standard
		// transport does for idempotent requests; a failure of a fresh one is the answer.
		MaxIdemponentCallAttempts: 2,
		ReadBufferSize:            16 << 10,
		NoDefaultUserAgentHeader:  true,
		// The connector builds the path itself, with every parameter percent-encoded as
		// one segment; normalizing it again would undo that.
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		MaxResponseBodySize:           int(maxBody) + 1,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return (&net.Dialer{Timeout: min(timeout, 30*time.Second), KeepAlive: 30 * time.Second}).Dial("tcp", addr)
		},
	}
	if cfg != nil {
		fc.TLSConfig = cfg.Clone()
	}
	t := &transport{fast: fc, fallback: fb, timeout: 2 * time.Minute}
	if u, err := url.Parse(baseURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil {
		isTLS := u.Scheme == "https"
		// The same settings as fc's, which fasthttp.Client would give the host client it
		// makes for this host.
		t.base = &fasthttp.HostClient{
			Addr:                          fasthttp.AddMissingPort(u.Host, isTLS),
			IsTLS:                         isTLS,
			MaxConns:                      fc.MaxConnsPerHost,
			MaxIdleConnDuration:           fc.MaxIdleConnDuration,
			MaxConnWaitTimeout:            fc.MaxConnWaitTimeout,
			MaxIdemponentCallAttempts:     fc.MaxIdemponentCallAttempts,
			ReadBufferSize:                fc.ReadBufferSize,
			NoDefaultUserAgentHeader:      fc.NoDefaultUserAgentHeader,
			DisablePathNormalizing:        fc.DisablePathNormalizing,
			DisableHeaderNamesNormalizing: fc.DisableHeaderNamesNormalizing,
			MaxResponseBodySize:           fc.MaxResponseBodySize,
			DialTimeout:                   fc.DialTimeout,
			TLSConfig:                     fc.TLSConfig,
		}
		t.origin = u.Scheme + "://" + u.Host
	}
	return t
}

// doDeadline sends req, whose URL is target, and reads the answer into resp, through the
// base origin's client when target is there.
func (t *transport) doDeadline(target string, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	if t.atBase(target) {
		return t.base.DoDeadline(req, resp, deadline)
	}
	return t.fast.DoDeadline(req, resp, deadline)
}

// atBase reports whether target is at the base origin: its scheme and authority are the
// origin's, whole (http://h:1 is not the origin of http://h:10/).
func (t *transport) atBase(target string) bool {
	if t.base == nil || len(target) < len(t.origin) || target[:len(t.origin)] != t.origin {
		return false
	}
	rest := target[len(t.origin):]
	return rest == "" || rest[0] == '/' || rest[0] == '?'
}

// RoundTrip carries out one exchange.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if p, err := t.fallback.Proxy(r); err != nil || p != nil {
		return t.fallback.RoundTrip(r)
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(r.URL.String())
	req.Header.SetMethod(r.Method)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.Host != "" && r.Host != r.URL.Host {
		req.Header.SetHost(r.Host)
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		req.SetBody(body)
	}
	deadline, ok := r.Context().Deadline()
	if !ok {
		deadline = time.Now().Add(t.timeout)
	}
	// The exchange runs on this goroutine, so a caller that goes away (a client that hung
	// up) is noticed through the deadline only, which the connector always sets; checking
	// the context first at least spares a request nobody waits for.
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	if err := t.doDeadline(r.URL.String(), req, resp, deadline); err != nil {
		return nil, t.fail(r, err)
	}
	out := &http.Response{
		Status:     fmt.Sprintf("%d %s", resp.StatusCode(), http.StatusText(resp.StatusCode())),
		StatusCode: resp.StatusCode(), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, resp.Header.Len()), Request: r,
	}
	for k, v := range resp.Header.All() {
		key := http.CanonicalHeaderKey(string(k))
		out.Header[key] = append(out.Header[key], string(v))
	}
	body := bytes.Clone(resp.Body())
	out.ContentLength = int64(len(body))
	out.Body = io.NopCloser(bytes.NewReader(body))
	return out, nil
}

// fail turns the lean client's errors into the ones the connector tells apart (failFast).
func (t *transport) fail(r *http.Request, err error) error {
	return failFast(r.Method, r.URL.String(), err)
}

// errTooLarge says an answer was over the system's size limit.
var errTooLarge = errors.New("the answer is over the size limit")

// CloseIdleConnections closes the connections not in use.
func (t *transport) CloseIdleConnections() {
	if t.base != nil {
		t.base.CloseIdleConnections()
	}
	t.fast.CloseIdleConnections()
	t.fallback.CloseIdleConnections()
}
