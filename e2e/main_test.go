// Package e2e tests Causeway through its real binary: built once, started as a process on
// temporary directories and random loopback ports, and killed the way an operator's machine
// would kill it.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/internal/testutil"
)

// binary is the causeway executable built for this test run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "causeway-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "causeway")
	build := exec.Command("go", "build", "-o", binary, "./cmd/causeway")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building causeway: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback address with a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n loopback addresses with distinct ports that were free a moment ago.
// The listeners stay open until all are taken: a port closed at once can be handed out
// again by the next call, and two listeners of a node would then collide.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// node is a causeway serve process.
type node struct {
	t          *testing.T
	cmd        *exec.Cmd
	http       string
	admin      string
	nats       string
	logs       *syncBuffer
	exited     chan struct{}
	exitErr    error
	configDir  string
	dataDir    string
	extraFlags []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode starts causeway serve and waits until /readyz answers 200.
func startNode(t *testing.T, configDir, dataDir string, extra ...string) *node {
	t.Helper()
	ports := freePorts(t, 3)
	n := &node{t: t, http: ports[0], admin: ports[1], nats: ports[2], logs: &syncBuffer{},
		exited: make(chan struct{}), configDir: configDir, dataDir: dataDir, extraFlags: extra}
	args := append([]string{"serve", "--config", configDir, "--data", dataDir,
		"--http-addr", n.http, "--admin-addr", n.admin, "--nats-listen", n.nats, "--log-format", "json", "--node", "e2e"}, extra...)
	n.cmd = exec.Command(binary, args...)
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.exitErr = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("node logs:\n%s", tail(n.logs.String(), 4000))
			// The whole log, for a failure that needs more than its end: kept where
			// CAUSEWAY_E2E_LOGS names a directory.
			if dir := os.Getenv("CAUSEWAY_E2E_LOGS"); dir != "" {
				f, err := os.CreateTemp(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-*.log")
				if err == nil {
					_, _ = f.WriteString(n.logs.String())
					_ = f.Close()
					t.Logf("the whole node log: %s", f.Name())
				}
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-n.exited:
			t.Fatalf("causeway serve exited during start: %v\n%s", n.exitErr, n.logs.String())
		default:
		}
		resp, err := http.Get("http://" + n.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("causeway serve not ready after 60s\n%s", n.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL (no chance to flush or clean up) and waits for it.
func (n *node) kill() {
	if n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}

func tail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return "…" + s[len(s)-max:]
}

// writeConfig writes definition files into a new directory.
func writeConfig(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, files)
	return dir
}

const orderTypes = `apiVersion: causeway/v1
kind: MessageType
metadata:
  name: order.created
  description: An order was placed
spec:
  schema:
    type: object
    required: [orderId, total]
    properties:
      orderId: {type: string, minLength: 1}
      total: {type: number, minimum: 0}
`

// postJSON posts body and returns the status and the decoded JSON answer.
func postJSON(url, contentType, body string) (int, map[string]any, error) {
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("answer is not JSON: %q", raw)
	}
	return resp.StatusCode, v, nil
}

func getJSON(url string) (int, map[string]any, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, v, nil
}

// logLines returns the JSON log records the node wrote.
func (n *node) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(n.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}
