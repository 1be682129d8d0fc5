package httpconn

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	fast     *fasthttp.Client
	fallback *http.Transport
	// timeout bounds an exchange that has no deadline of its own; the connector always
	// gives one when the system or operation has a timeout.
	timeout time.Duration
}

// newTransport builds the transport of one system.
func newTransport(cfg *tls.Config, maxBody int64) *transport {
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
	return &transport{fast: fc, fallback: fb, timeout: 2 * time.Minute}
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
	if err := t.fast.DoDeadline(req, resp, deadline); err != nil {
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
	t.fast.CloseIdleConnections()
	t.fallback.CloseIdleConnections()
}
