package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// aptInstall is the command that installs the load generator and nginx on Debian.
const aptInstall = "apt-get install -y wrk nginx"

// caddyPackage is what go install builds Caddy from.
const caddyPackage = "github.com/caddyserver/caddy/v2/cmd/caddy"

// tools are the programs the scenarios need, "" where one is missing.
type tools struct {
	wrk, nginx, caddy, causeway string
	// versions describes them in one line for the report.
	versions []string
}

// lookTool finds a program on PATH or in the system directories Debian puts it in, which a
// user's PATH may lack (nginx is in /usr/sbin).
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// ensurePackages finds wrk and nginx and, when one is missing, install is set and this
// program runs as root, installs both with apt-get. Otherwise it says how to install them.
func ensurePackages(ctx context.Context, t *tools, install bool) error {
	t.wrk, t.nginx = lookTool("wrk"), lookTool("nginx")
	if t.wrk != "" && t.nginx != "" {
		return nil
	}
	var missing []string
	for _, tool := range []struct{ name, path string }{{"wrk", t.wrk}, {"nginx", t.nginx}} {
		if tool.path == "" {
			missing = append(missing, tool.name)
		}
	}
	logf("%s not found; install with: %s", strings.Join(missing, " and "), aptInstall)
	switch {
	case !install:
		logf("not installing (-install=false)")
	case os.Geteuid() != 0:
		logf("not installing: that takes root; run the command above as root, or with sudo")
	default:
		logf("running: %s", aptInstall)
		if err := aptGet(ctx, "install", "-y", "wrk", "nginx"); err != nil {
			// A fresh container has no package lists yet.
			logf("%v; running apt-get update and trying again", err)
			if err := aptGet(ctx, "update"); err != nil {
				return err
			}
			if err := aptGet(ctx, "install", "-y", "wrk", "nginx"); err != nil {
				return err
			}
		}
		t.wrk, t.nginx = lookTool("wrk"), lookTool("nginx")
	}
	if t.wrk == "" {
		return fmt.Errorf("wrk is required: install it with %s", aptInstall)
	}
	return nil
}

// aptGet runs apt-get with args, its output on stderr.
func aptGet(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// goTool is the go command: the one on PATH, else the one this program was built with.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// ensureCaddy returns the Caddy binary of the given version, installing it with go install
// into a cache directory of its own the first time. go install pkg@version builds outside
// any module, so this module's go.mod and go.sum are not touched; it runs in the cache
// directory and with GOWORK=off so that no module or workspace around could matter.
func ensureCaddy(ctx context.Context, version string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "causeway-bench", "caddy-"+version)
	bin := filepath.Join(dir, "caddy")
	if st, err := os.Stat(bin); err == nil && !st.IsDir() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	logf("installing Caddy: GOBIN=%s go install %s@%s (first run only; this takes minutes)", dir, caddyPackage, version)
	cmd := exec.CommandContext(ctx, goTool(), "install", caddyPackage+"@"+version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", caddyPackage, version, err, strings.TrimSpace(out.String()))
	}
	return bin, nil
}

// buildCauseway builds the causeway command of the module this program is run in, into
// dir/bin.
func buildCauseway(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run this from inside the causeway module (go env GOMOD names no go.mod)")
	}
	bin := filepath.Join(dir, "bin", "causeway")
	logf("building causeway: go build -o %s ./cmd/causeway", bin)
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", bin, "./cmd/causeway")
	cmd.Dir = filepath.Dir(gomod)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/causeway: %v\n%s", err, strings.TrimSpace(buf.String()))
	}
	return bin, nil
}

// toolVersion is the first line a program prints about its version, "" if it prints none.
func toolVersion(ctx context.Context, path string, args ...string) string {
	out, _ := exec.CommandContext(ctx, path, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// serveHasFlag reports whether causeway serve of the given binary has the named flag.
func serveHasFlag(ctx context.Context, causeway, flag string) bool {
	out, _ := exec.CommandContext(ctx, causeway, "serve", "--help").CombinedOutput()
	return bytes.Contains(out, []byte("--"+flag+" "))
}

// logf prints a progress line on stderr, apart from the report on stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
