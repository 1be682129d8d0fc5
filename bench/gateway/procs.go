package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children tracks every server process this run starts, so that all of them are stopped at
// the end, when a scenario fails and on Ctrl-C. Each one leads a process group of its own:
// stopping it signals the whole group, which takes nginx's workers along with their master,
// and Ctrl-C in the terminal reaches this program alone, which then stops them in order.
type children struct {
	mu   sync.Mutex
	live map[*child]bool
}

// child is one server process.
type child struct {
	name string
	cmd  *exec.Cmd
	// done is closed once the process has exited.
	done chan struct{}
	// log is the file that holds the process's output, "" when it goes elsewhere.
	log string
}

// start starts cmd as a child called name. Output the caller has not redirected goes to
// logFile when it is not "".
func (cs *children) start(name string, cmd *exec.Cmd, logFile string) (*child, error) {
	if logFile != "" {
		f, err := os.Create(logFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if cmd.Stdout == nil {
			cmd.Stdout = f
		}
		if cmd.Stderr == nil {
			cmd.Stderr = f
		}
	}
	// Pdeathsig stops the process should this program die without the chance to do so.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	cs.mu.Lock()
	if cs.live == nil {
		cs.live = map[*child]bool{}
	}
	cs.live[c] = true
	cs.mu.Unlock()
	return c, nil
}

// stop ends c's process group, politely first, and waits for the process to exit.
func (cs *children) stop(c *child) {
	if c == nil {
		return
	}
	cs.mu.Lock()
	delete(cs.live, c)
	cs.mu.Unlock()
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	// Members of the group may outlive its leader (a worker busy when the master left).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// stopAll stops every process still running.
func (cs *children) stopAll() {
	cs.mu.Lock()
	list := make([]*child, 0, len(cs.live))
	for c := range cs.live {
		list = append(list, c)
	}
	cs.mu.Unlock()
	for _, c := range list {
		cs.stop(c)
	}
}

// exited reports whether c's process has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// logTail is the end of c's output, to explain a failure.
func (c *child) logTail() string {
	if c.log == "" {
		return ""
	}
	b, err := os.ReadFile(c.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	const keep = 2000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return "\n--- end of " + c.log + " ---\n" + strings.TrimRight(string(b), "\n")
}

// startRole runs this program again in the given role, with extra flags, and returns the
// address it reports on its first line of output, "READY host:port".
func (cs *children) startRole(ctx context.Context, role string, extra ...string) (*child, string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	cmd := exec.Command(os.Args[0], append([]string{"-role", role}, extra...)...)
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	c, err := cs.start(role, cmd, "")
	w.Close()
	if err != nil {
		return nil, "", err
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		fields := strings.Fields(line)
		if len(fields) != 2 || fields[0] != "READY" {
			cs.stop(c)
			return nil, "", fmt.Errorf("%s process said %q", role, line)
		}
		return c, fields[1], nil
	case <-time.After(10 * time.Second):
		cs.stop(c)
		return nil, "", fmt.Errorf("%s process did not start within 10s", role)
	case <-ctx.Done():
		cs.stop(c)
		return nil, "", ctx.Err()
	}
}

// freePort finds a loopback port nobody listens on. Another process could take it before
// the server that is given it does; on a benchmark machine that does not happen.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls url until it answers 200, c exits or limit passes.
func waitReady(ctx context.Context, c *child, url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	last := errors.New("no answer yet")
	for time.Now().Before(deadline) {
		if c.exited() {
			return fmt.Errorf("%s exited before it was ready: %v%s", c.name, c.cmd.ProcessState, c.logTail())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready within %s: %v%s", c.name, limit, last, c.logTail())
}
