package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/source"
)

// server is an HTTP server on a listener: the standard library's, or the lean one the http
// listener uses by default (ADR 0010).
type server interface {
	Serve(ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// Server engines for the http listener.
const (
	// EngineLean serves HTTP/1.1 with a lean server that reuses its per-connection and
	// per-request state; the handlers are the same.
	EngineLean = "lean"
	// EngineStandard serves with the standard library's server (HTTP/1.1 and, over TLS
	// terminated elsewhere, nothing more).
	EngineStandard = "standard"
)

// DefaultGCPercent is the garbage collection target causeway serve runs with unless GOGC
// or --gc-percent says otherwise. The Go default of 100 collects every time the small live
// heap doubles: under load that is many collections a second (docs/performance.md).
const DefaultGCPercent = 400

// Limits both engines apply.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// leanServer serves the same handlers over fasthttp's connection handling: a pool of
// workers instead of a goroutine per connection and a background reader per request,
// buffers reused across requests, and an answer written in one system call.
type leanServer struct {
	s *fasthttp.Server
}

// newLeanServer serves h. maxBody bounds a request body: the handlers apply their own,
// smaller limits with their own errors, so this one only has to be above all of them.
// headerTimeout bounds the wait for a request's line and headers (readHeaderTimeout).
func newLeanServer(h http.Handler, fast func(*fasthttp.RequestCtx) bool, log *slog.Logger, maxBody int64, headerTimeout time.Duration) *leanServer {
	return &leanServer{s: &fasthttp.Server{
		// The handlers see the request target as it was sent, never fasthttp's
		// normalized path: that would hide a traversal attempt the gateway refuses, and
		// decode what a route must see encoded.
		Handler:               newLeanHandler(h, fast, log).serve,
		NoDefaultServerHeader: true,
		// A request's line and headers must arrive within readHeaderTimeout, as with the
		// standard server; a body gets readTimeout once its headers are in.
		ReadTimeout:  headerTimeout,
		WriteTimeout: readTimeout,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if h.ContentLength() != 0 {
				return fasthttp.RequestConfig{ReadTimeout: readTimeout}
			}
			return fasthttp.RequestConfig{}
		},
		IdleTimeout: idleTimeout,
		// The read buffer bounds the request line and headers, as MaxHeaderBytes does.
		ReadBufferSize:                maxHeaderBytes,
		MaxRequestBodySize:            int(maxBody),
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{log},
	}}
}

func (l *leanServer) Serve(ln net.Listener) error {
	err := l.s.Serve(ln)
	if err != nil && isClosed(err) {
		return http.ErrServerClosed
	}
	return err
}

func (l *leanServer) Shutdown(ctx context.Context) error { return l.s.ShutdownWithContext(ctx) }

// isClosed reports the error of a listener closed by Shutdown.
func isClosed(err error) bool {
	ne, ok := err.(*net.OpError)
	return ok && ne.Err != nil && ne.Err.Error() == "use of closed network connection"
}

// fasthttpLogger sends the lean server's messages to the node's log.
type fasthttpLogger struct{ log *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.log.Warn(fmt.Sprintf(format, args...), "component", "http")
}

// maxBody is the largest request body any handler of the http listener takes (ingestion, an
// API, a webhook), and a little more, so that the handler, not the server, refuses one
// over its own limit, with its own error.
func (p *Platform) maxBody() int64 {
	n := max(p.opts.MaxBatchBytes, p.opts.MaxMessageBytes, 8<<20)
	for _, r := range p.cfg.ByKind(gateway.Kind) {
		n = max(n, r.Spec.(*gateway.Spec).MaxBodyBytes)
	}
	for _, r := range p.cfg.ByKind(source.Kind) {
		if wh := r.Spec.(*source.Spec).Webhook; wh != nil {
			n = max(n, wh.MaxBodyBytes)
		}
	}
	return n + 64<<10
}
