package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/causeway/causeway/bench/internal/proccpu"
	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/platform"
	"github.com/valyala/fasthttp"
)

// definitions is the MessageType the HTTP scenarios send: a realistic schema, so that the
// measured path includes schema validation.
const definitions = `apiVersion: causeway/v1
kind: MessageType
metadata:
  name: order.created
  description: An order was placed
spec:
  schema:
    type: object
    required: [orderId, customer, items, total]
    properties:
      orderId: {type: string, minLength: 1}
      customer:
        type: object
        required: [id, email]
        properties:
          id: {type: string}
          email: {type: string}
          name: {type: string}
      items:
        type: array
        minItems: 1
        items:
          type: object
          required: [sku, qty]
          properties:
            sku: {type: string}
            qty: {type: integer, minimum: 1}
            price: {type: number}
      total: {type: number}
      currency: {type: string, enum: [EUR, USD, GBP]}
      channel: {type: string}
`

// httpIngest starts a Causeway node in a process of its own and posts to it from clients
// concurrent clients in this process, each sending batch messages per request (batch 1:
// single structured events). The node runs apart from the load, as it does for real
// producers, so that the Go scheduler of one process does not mix the two.
func httpIngest(ctx context.Context, dir string, policy bus.Sync, d time.Duration, clients, batch int) (*result, error) {
	url, admin, pid, stop, err := startChild(ctx, "node", dir, policy)
	if err != nil {
		return nil, err
	}
	defer stop()
	r, err := driveCounted(pid, url, d, clients, batch)
	if err != nil {
		return nil, err
	}
	// Ingestion is only sustainable if the tracking index keeps up with it: report how long
	// after the load ended the last accepted message could be looked up.
	r.indexCatchUp, err = waitIndexed(admin, 2*time.Minute)
	return r, err
}

// waitIndexed polls the node's metrics until the tracking index has caught up with the
// MESSAGES stream, and returns how long that took.
func waitIndexed(admin string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	var lastErr error
	for time.Since(start) < limit {
		resp, err := http.Get(admin + "/metrics")
		if err != nil {
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "causeway_tracking_index_lag{stream=\"MESSAGES\"} 0\n") {
			return time.Since(start), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("the tracking index did not catch up within %s (last error: %v)", limit, lastErr)
}

// httpNoop is the HTTP reference: a server process that reads each request body and answers
// 202 with an id, doing nothing else. What the same clients reach against it is the most
// any HTTP ingestion could reach on this machine. role "noop" is net/http's server, role
// "noop-lean" the HTTP engine of Causeway's http listener (fasthttp), set up as the
// listener is.
func httpNoop(ctx context.Context, role, dir string, d time.Duration, clients, batch int) (*result, error) {
	url, _, pid, stop, err := startChild(ctx, role, dir, bus.Sync{})
	if err != nil {
		return nil, err
	}
	defer stop()
	return driveCounted(pid, url, d, clients, batch)
}

// driveCounted is drive, with the CPU time the server process pid and this process (the
// load generator) spent per message meanwhile.
func driveCounted(pid int, url string, d time.Duration, clients, batch int) (*result, error) {
	before, ok := proccpu.Process(pid)
	selfBefore, selfOK := proccpu.Process(os.Getpid())
	r, err := drive(url, d, clients, batch)
	if err != nil {
		return nil, err
	}
	if after, ok2 := proccpu.Process(pid); ok && ok2 {
		r.cpu, r.cpuOK = after.Sub(before).Per(int64(r.messages)), true
	}
	if selfAfter, ok2 := proccpu.Process(os.Getpid()); selfOK && ok2 {
		r.clientCPU = selfAfter.Sub(selfBefore).Per(int64(r.messages))
	}
	return r, nil
}

// nodeProfile and nodeAllocs, when set, make each server process write a CPU profile and
// an allocation profile next to them.
var nodeProfile, nodeAllocs string

// startChild runs this program again in the given role and returns the ingestion URL and
// the admin URL it reports, its process id, and a function that stops it with SIGTERM.
func startChild(ctx context.Context, role, dir string, policy bus.Sync) (string, string, int, func(), error) {
	args := []string{"-role", role, "-dir", dir}
	if nodeProfile != "" {
		args = append(args, "-cpuprofile", nodeProfile+"."+filepath.Base(dir))
	}
	if nodeAllocs != "" {
		args = append(args, "-memprofile", nodeAllocs+"."+filepath.Base(dir))
	}
	if role == "node" {
		args = append(args, "-sync", policy.String())
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", "", 0, nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", "", 0, nil, fmt.Errorf("%s process: %w", role, err)
	}
	fields := strings.Fields(line)
	if len(fields) != 3 || fields[0] != "READY" {
		stop()
		return "", "", 0, nil, fmt.Errorf("%s process said %q", role, line)
	}
	return fields[1], fields[2], cmd.Process.Pid, stop, nil
}

// serveChild is the child side of startChild: it serves until SIGTERM.
func serveChild(role, dir, syncPolicy string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	switch role {
	case "noop-lean":
		return serveLeanNoop(ctx)
	case "noop":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, noopAnswer)
		})}
		go srv.Serve(ln) //nolint:errcheck // ends with Close below
		fmt.Printf("READY http://%s/v1/messages -\n", ln.Addr())
		<-ctx.Done()
		return srv.Close()
	case "node":
		// As causeway serve runs by default: the node is measured as it ships.
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(platform.DefaultGCPercent)
		}
		policy, err := bus.ParseSync(syncPolicy)
		if err != nil {
			return err
		}
		cfgDir := filepath.Join(dir, "config")
		if err := os.MkdirAll(cfgDir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cfgDir, "types.yaml"), []byte(definitions), 0o644); err != nil {
			return err
		}
		p, err := platform.New(ctx, platform.Options{
			ConfigDir: cfgDir, DataDir: filepath.Join(dir, "data"), Registry: kinds.Default(),
			HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Sync: policy, Node: "bench",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return err
		}
		p.Start()
		fmt.Printf("READY http://%s/v1/messages http://%s\n", p.HTTPAddr(), p.AdminAddr())
		<-ctx.Done()
		return p.Shutdown()
	}
	return fmt.Errorf("unknown role %q", role)
}

// clientKind selects the load generator's HTTP client: "raw" (rawClient) or "nethttp".
var clientKind = "raw"

// idKind selects the events' ids: "producers" (each client counts on its own) or "uuid"
// (random version 4 UUIDs, what the CloudEvents SDKs make). The order of ids matters to
// the tracking index, which finds messages by id.
var idKind = "producers"

// appendUUID appends a random version 4 UUID.
func appendUUID(b []byte) []byte {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return append(b, s[:]...)
}

// drive posts to url from clients concurrent clients for d, each request carrying batch
// events (1: a single structured event), and records each request's latency.
func drive(url string, d time.Duration, clients, batch int) (*result, error) {
	if idKind != "producers" && idKind != "uuid" {
		return nil, fmt.Errorf("-ids %q: expected producers or uuid", idKind)
	}
	contentType := "application/cloudevents+json"
	if batch > 1 {
		contentType = "application/cloudevents-batch+json"
	}
	var post func(c int, body []byte) (int, error)
	switch clientKind {
	case "raw":
		conns := make([]*rawClient, clients)
		for i := range conns {
			rc, err := newRawClient(url)
			if err != nil {
				return nil, err
			}
			conns[i] = rc
			defer rc.close()
		}
		post = func(c int, body []byte) (int, error) { return conns[c].post(contentType, body) }
	case "nethttp":
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
		defer client.CloseIdleConnections()
		post = func(_ int, body []byte) (int, error) {
			resp, err := client.Post(url, contentType, bytes.NewReader(body))
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, nil
		}
	default:
		return nil, fmt.Errorf("-client %q: expected raw or nethttp", clientKind)
	}
	bodies := make([]bytes.Buffer, clients)
	return fanOut(d, clients, func(c, n int) (int, error) {
		body := &bodies[c]
		body.Reset()
		var idBuf [36]byte
		if batch > 1 {
			body.WriteByte('[')
		}
		for i := range batch {
			if i > 0 {
				body.WriteByte(',')
			}
			body.WriteString(`{"specversion":"1.0","id":"`)
			if idKind == "uuid" {
				body.Write(appendUUID(idBuf[:0]))
			} else {
				body.WriteByte('c')
				body.WriteString(strconv.Itoa(c))
				body.WriteByte('-')
				body.WriteString(strconv.Itoa(n))
				body.WriteByte('-')
				body.WriteString(strconv.Itoa(i))
			}
			body.WriteString(`","source":"bench","type":"order.created","data":`)
			body.WriteString(payload)
			body.WriteByte('}')
		}
		if batch > 1 {
			body.WriteByte(']')
		}
		status, err := post(c, body.Bytes())
		if err != nil {
			return 0, err
		}
		if status != http.StatusAccepted {
			return 0, fmt.Errorf("HTTP %d", status)
		}
		return batch, nil
	})
}

// noopAnswer is the no-op servers' answer body: what Causeway answers a single message.
const noopAnswer = `{"ids":["01JD3S5Q5Z8W3JQ0X9T3V8M6QK"]}`

// serveLeanNoop serves the no-op handler on fasthttp, set up as Causeway's http listener
// is (platform/server.go): its read, write and idle timeouts, the body's own read timeout
// once the headers are in, its header and body limits. It answers 202 to every request,
// with the body fasthttp has already read. Against it the load generator measures what
// Causeway's HTTP engine costs on this machine when the handler does nothing.
func serveLeanNoop(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			c.SetStatusCode(http.StatusAccepted)
			c.SetContentType("application/json")
			c.SetBodyString(noopAnswer)
		},
		NoDefaultServerHeader: true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          2 * time.Minute,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if h.ContentLength() != 0 {
				return fasthttp.RequestConfig{ReadTimeout: 2 * time.Minute}
			}
			return fasthttp.RequestConfig{}
		},
		IdleTimeout:                  2 * time.Minute,
		ReadBufferSize:               64 << 10,
		MaxRequestBodySize:           1 << 20,
		DisablePreParseMultipartForm: true,
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	fmt.Printf("READY http://%s/v1/messages -\n", ln.Addr())
	<-ctx.Done()
	return srv.Shutdown()
}
