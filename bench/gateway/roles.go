package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/causeway/causeway/message"
	"github.com/valyala/fasthttp"
)

// itemID is the item every scenario asks for, and itemBody the backend's answer for it.
const (
	itemID   = "42"
	itemBody = `{"id":"42","name":"widget","price_cents":1999,"in_stock":true}`
)

// wantItem is itemBody as the checks compare it, and wantMapped what the response mapping
// of the guarded API makes of it.
var (
	wantItem   = map[string]any{"id": "42", "name": "widget", "price_cents": 1999.0, "in_stock": true}
	wantMapped = map[string]any{"id": "42", "name": "widget", "price": 19.99, "available": true}
)

// serveRole is the child side of children.startRole: it serves until SIGTERM. The backend
// answers GET /items/{id} with a small JSON object; the proxy is net/http/httputil's
// ReverseProxy in front of target, the plainest Go gateway there is.
func serveRole(role, target, profile string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	if profile != "" && role != "backend" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var h http.Handler
	switch role {
	case "backend":
		h = backendHandler()
	case "proxy":
		u, err := url.Parse(target)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-target %q: expected http://host:port", target)
		}
		h = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			// wrk ends a run with requests in flight, each of which the proxy would log.
			ErrorLog: log.New(io.Discard, "", 0),
			// The default transport keeps two idle connections to a host: with 64 clients
			// the proxy would open and close connections to the backend all the time.
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:        256,
				MaxIdleConnsPerHost: 256,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
			},
		}
	case "fastproxy":
		return serveFastProxy(ctx, target, false)
	case "fastproxy-guarded":
		return serveFastProxy(ctx, target, true)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close below
	fmt.Printf("READY %s\n", ln.Addr())
	<-ctx.Done()
	return srv.Close()
}

// backendHandler answers GET /items/{id} with the item as JSON, on keep-alive connections.
// The answer for itemID is encoded once: the backend should cost as little as possible, so
// that the proxies in front of it account for the differences between scenarios.
func backendHandler() http.Handler {
	contentType := []string{"application/json"}
	item := []byte(itemBody)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		body := item
		if id := r.PathValue("id"); id != itemID {
			body, _ = json.Marshal(map[string]any{"id": id, "name": "widget", "price_cents": 1999, "in_stock": true})
		}
		w.Header()["Content-Type"] = contentType
		_, _ = w.Write(body)
	})
	return mux
}

// serveFastProxy passes every request to target with fasthttp's server and client and does
// nothing else: no routing, no header rules, no metrics. It is the floor of what a Go
// proxy costs on the machine, which no gateway doing any work can go below. guarded adds
// what a gateway must do on every request whatever else it does: the server's read, idle
// and write timeouts and a deadline for the backend call (as Causeway's listener and
// connector set them), and the X-Forwarded-* and traceparent headers the backend is given.
func serveFastProxy(ctx context.Context, target string, guarded bool) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-target %q: expected http://host:port", target)
	}
	client := &fasthttp.HostClient{Addr: u.Host, MaxConns: 1024, ReadBufferSize: 16 << 10}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.Request.SetHost(u.Host)
		if err := client.Do(&c.Request, &c.Response); err != nil {
			c.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}, NoDefaultServerHeader: true}
	if guarded {
		srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = 10*time.Second, 2*time.Minute, 2*time.Minute
		srv.Handler = func(c *fasthttp.RequestCtx) {
			h := &c.Request.Header
			h.Set("X-Forwarded-For", c.RemoteIP().String())
			h.Set("X-Forwarded-Proto", "http")
			h.SetBytesV("X-Forwarded-Host", c.Host())
			h.Set("Traceparent", message.NewTraceparent())
			c.Request.SetHost(u.Host)
			if err := client.DoDeadline(&c.Request, &c.Response, time.Now().Add(30*time.Second)); err != nil {
				c.Error("bad gateway", fasthttp.StatusBadGateway)
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	fmt.Printf("READY %s\n", ln.Addr())
	<-ctx.Done()
	return srv.Shutdown()
}
