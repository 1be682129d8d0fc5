package platform

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"sync"

	"github.com/causeway/causeway/internal/leanhttp"
	"github.com/valyala/fasthttp"
)

// leanHandler serves net/http handlers on the lean server. It is narrower than a general
// adaptor on purpose, because what it leaves out is what costs: the handler runs on the
// server's worker goroutine (no goroutine per request, so no fresh stack to grow), the
// request, its header map and the answer's are reused from a pool, and the request's
// context is a plain one that needs no goroutine to follow a parent (a context derived
// from the server's request context would start one for every timeout). The handlers of
// the http listener neither flush, nor hijack, nor keep the request after they return,
// which is what makes this safe.
type leanHandler struct {
	h http.Handler
	// fast, when set, serves what it can of the requests before h sees them (the
	// gateway's fast lane, ADR 0013); it reports whether it did.
	fast func(*fasthttp.RequestCtx) bool
	log  *slog.Logger
	pool sync.Pool
}

// leanExchange is the reusable state of one request.
type leanExchange struct {
	req    http.Request
	header http.Header
	body   leanBody
	w      leanWriter
}

func newLeanHandler(h http.Handler, fast func(*fasthttp.RequestCtx) bool, log *slog.Logger) *leanHandler {
	l := &leanHandler{h: h, fast: fast, log: log}
	l.pool.New = func() any {
		return &leanExchange{header: make(http.Header, 16), w: leanWriter{header: make(http.Header, 8)}}
	}
	return l
}

// methods spares an allocation for the usual methods.
var methods = map[string]string{"GET": "GET", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE",
	"HEAD": "HEAD", "OPTIONS": "OPTIONS"}

func (l *leanHandler) serve(ctx *fasthttp.RequestCtx) {
	if l.fast != nil && l.serveFast(ctx) {
		return
	}
	x := l.pool.Get().(*leanExchange)
	defer l.pool.Put(x)
	uri := string(ctx.RequestURI())
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		ctx.Error("Bad Request: malformed request target", fasthttp.StatusBadRequest)
		return
	}
	clear(x.header)
	for k, v := range ctx.Request.Header.All() {
		// Copies, not views of the connection's buffer: a handler may keep a value in
		// something that outlives the request (a log record, a cache key).
		key := string(k)
		x.header[key] = append(x.header[key], string(v))
	}
	m := ctx.Method()
	method, ok := methods[string(m)]
	if !ok {
		method = string(m)
	}
	body := ctx.PostBody()
	x.body.r.Reset(body)
	x.req = http.Request{
		Method: method, URL: u, RequestURI: uri, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: x.header, Body: &x.body, ContentLength: int64(len(body)), Host: string(ctx.Host()),
		RemoteAddr: remoteAddr(ctx.RemoteAddr()),
	}
	if !ctx.Request.Header.IsHTTP11() {
		x.req.Proto, x.req.ProtoMinor = "HTTP/1.0", 0
	}
	if te := x.header["Transfer-Encoding"]; te != nil {
		x.req.TransferEncoding = te
		delete(x.header, "Transfer-Encoding")
	}
	x.w.reset(ctx)
	// A request without a context of its own answers context.Background() from Context():
	// WithContext would copy the whole request for the same result.
	r := &x.req
	defer func() {
		if rec := recover(); rec != nil {
			if rec == http.ErrAbortHandler {
				ctx.SetConnectionClose()
				return
			}
			l.log.Error("panic serving a request", "path", u.Path, "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
			if !x.w.wrote {
				ctx.Response.Reset()
				ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
			}
			ctx.SetConnectionClose()
		}
	}()
	l.h.ServeHTTP(&x.w, r)
	x.w.finish()
}

// serveFast gives the request to the fast lane, with the same recovery from a panic as the
// general path's.
func (l *leanHandler) serveFast(ctx *fasthttp.RequestCtx) (served bool) {
	defer func() {
		if rec := recover(); rec != nil {
			l.log.Error("panic serving a request", "path", string(ctx.Path()), "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
			ctx.Response.Reset()
			ctx.Error("Internal Server Error", fasthttp.StatusInternalServerError)
			ctx.SetConnectionClose()
			served = true
		}
	}()
	return l.fast(ctx)
}

// remoteAddr is addr as net.TCPAddr.String writes it ("127.0.0.1:5000", "[::1]:5000"),
// in one allocation instead of three.
func remoteAddr(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return netip.AddrPortFrom(ip.Unmap().WithZone(ta.Zone), uint16(ta.Port)).String()
		}
	}
	return addr.String()
}

// leanBody is a request body read from the server's buffer.
type leanBody struct{ r bytes.Reader }

func (b *leanBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *leanBody) Close() error               { return nil }

// leanWriter is the http.ResponseWriter of a request on the lean server.
type leanWriter struct {
	ctx    *fasthttp.RequestCtx
	header http.Header
	status int
	wrote  bool
	// typed says the answer has a Content-Type; without one, the first write sniffs it.
	typed bool
}

func (w *leanWriter) reset(ctx *fasthttp.RequestCtx) {
	w.ctx, w.status, w.wrote, w.typed = ctx, 0, false, false
	clear(w.header)
}

func (w *leanWriter) Header() http.Header { return w.header }

// WriteHeader sends the status and the headers as they are now, as net/http does.
func (w *leanWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	w.wrote, w.status = true, code
	w.ctx.SetStatusCode(code)
	w.typed = leanhttp.CopyHeader(w.ctx, w.header)
	if !w.typed {
		// The body decides, on the first write, as net/http does.
		w.ctx.Response.Header.SetNoDefaultContentType(true)
	}
}

func (w *leanWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.status == http.StatusNoContent || w.status == http.StatusNotModified || w.status < 200 {
		return 0, http.ErrBodyNotAllowed
	}
	if !w.typed && len(b) > 0 {
		w.ctx.Response.Header.SetContentType(http.DetectContentType(b[:min(len(b), 512)]))
		w.typed = true
	}
	w.ctx.Response.AppendBody(b)
	return len(b), nil
}

// finish completes an answer the handler never wrote: 200 with no body, as net/http.
func (w *leanWriter) finish() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
}
