package platform

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLean serves h on the lean server on a free loopback port.
func startLean(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newLeanServer(h, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 1<<20, 300*time.Millisecond)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown(t.Context()) })
	return "http://" + ln.Addr().String()
}

// TestLeanServerAnswersAsNetHTTP checks the lean server's handling of what the http
// listener's handlers do: status and headers, a sniffed content type, bodies read and
// written, a 204, a HEAD, a panic, and request values that stay intact after the request.
func TestLeanServerAnswersAsNetHTTP(t *testing.T) {
	var (
		mu   sync.Mutex
		kept []string
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo/{name}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		kept = append(kept, r.Header.Get("X-Keep"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"name":%q,"q":%q,"body":%q,"method":%q,"len":%d}`, r.PathValue("name"), r.URL.Query().Get("q"), body, r.Method, r.ContentLength)
	})
	mux.HandleFunc("GET /sniff", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html><body>hi</body></html>")
	})
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		if _, err := w.Write([]byte("no")); err != http.ErrBodyNotAllowed {
			t.Errorf("a body after 204: %v", err)
		}
	})
	mux.HandleFunc("GET /nothing", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.HandleFunc("GET /peer", func(w http.ResponseWriter, r *http.Request) {
		if r.Context() == nil || r.Context().Err() != nil {
			t.Errorf("request context: %v", r.Context())
		}
		_, _ = io.WriteString(w, r.RemoteAddr)
	})
	base := startLean(t, mux)

	for i := range 20 {
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/echo/n%%2F%d?q=%d", base, i, i), strings.NewReader(fmt.Sprintf("body-%d", i)))
		req.Header.Set("X-Keep", fmt.Sprintf("value-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf(`{"name":"n/%d","q":"%d","body":"body-%d","method":"POST","len":%d}`, i, i, i, len(fmt.Sprintf("body-%d", i)))
		if resp.StatusCode != 201 || string(got) != want || resp.Header.Get("Content-Type") != "application/json" || fmt.Sprint(resp.Header.Values("X-Multi")) != "[a b]" {
			t.Fatalf("echo %d: %d %v %s", i, resp.StatusCode, resp.Header, got)
		}
	}
	mu.Lock()
	for i, v := range kept {
		if v != fmt.Sprintf("value-%d", i) {
			t.Errorf("a header value kept after its request changed: %q at %d", v, i)
		}
	}
	mu.Unlock()

	check := func(method, path string, status int, ctype, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status || resp.Header.Get("Content-Type") != ctype || string(got) != body {
			t.Errorf("%s %s: %d %q %q; want %d %q %q", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), got, status, ctype, body)
		}
	}
	check("GET", "/sniff", 200, "text/html; charset=utf-8", "<html><body>hi</body></html>")
	check("HEAD", "/sniff", 200, "text/html; charset=utf-8", "")
	check("GET", "/empty", 204, "", "")
	check("GET", "/nothing", 200, "", "")
	check("GET", "/panic", 500, "text/plain; charset=utf-8", "Internal Server Error")
	check("GET", "/missing", 404, "text/plain; charset=utf-8", "404 page not found\n")

	// HTTP/1.0 without keep-alive is answered and the connection closed.
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /sniff HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.0: %v %v", resp, err)
	}

	// The handler sees the client's address as the standard server writes it.
	c2, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprint(c2, "GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := io.ReadAll(resp.Body)
	if string(peer) != c2.LocalAddr().String() {
		t.Errorf("RemoteAddr %q, want %q", peer, c2.LocalAddr())
	}
}

func TestRemoteAddr(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000},
		&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3).To4(), Port: 1},
		&net.TCPAddr{IP: net.ParseIP("::1"), Port: 443},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"},
		&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 8080},
		&net.TCPAddr{Port: 9},
		&net.UnixAddr{Name: "/tmp/sock", Net: "unix"},
	} {
		if got, want := remoteAddr(a), a.String(); got != want {
			t.Errorf("remoteAddr(%#v) = %q, want %q", a, got, want)
		}
	}
}

// TestLeanServerDropsSlowHeaders closes a connection whose request headers do not arrive
// within the header timeout, while a body that is slower than that is still read.
func TestLeanServerDropsSlowHeaders(t *testing.T) {
	base := startLean(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	addr := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	_, _ = io.ReadAll(c)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a request whose headers never end held the connection for %v", took)
	}

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
	time.Sleep(500 * time.Millisecond)
	fmt.Fprint(slow, "cd")
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("a body slower than the header timeout: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != "abcd" {
		t.Fatalf("slow body: %d %q", resp.StatusCode, got)
	}
}
