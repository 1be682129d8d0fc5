package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// apiKey is the key the guarded API's consumer holds; the definitions only hold its hash.
const apiKey = "cw-bench-3f9c2a7d41e8b605"

// systemDef is the backend as a Causeway System.
const systemDef = `apiVersion: causeway/v1
kind: System
metadata: {name: backend}
spec:
  http: {baseURL: "http://BACKEND", timeout: 5s}
  operations:
    getItem: {http: {method: GET, path: "/items/{id}"}}
`

// plainAPIDef is the API without policies, for builds of Causeway that do not know them.
const plainAPIDef = `apiVersion: causeway/v1
kind: API
metadata: {name: plain}
spec:
  basePath: /plain
  routes:
    - match: GET /items/{id}
      proxy: {call: backend.getItem, with: {id: "${{ .path.id }}"}}
`

// policyDefs are the API without policies, said explicitly, and the guarded API: API key,
// a rate limit set far above what the machine can do (so that it is applied to every
// request but refuses none) and a response mapping.
const policyDefs = `apiVersion: causeway/v1
kind: API
metadata: {name: plain}
spec:
  basePath: /plain
  policies: {auth: {none: true}}
  routes:
    - match: GET /items/{id}
      proxy: {call: backend.getItem, with: {id: "${{ .path.id }}"}}
---
apiVersion: causeway/v1
kind: Consumer
metadata: {name: bench}
spec:
  keys:
    - {name: primary, sha256: "KEYHASH"}
---
apiVersion: causeway/v1
kind: API
metadata: {name: guarded}
spec:
  basePath: /guarded
  policies:
    auth: {apiKey: {header: X-Api-Key}}
    rateLimit: {requests: 10000000, per: 1s, burst: 10000000}
  routes:
    - match: GET /items/{id}
      proxy:
        call: backend.getItem
        with: {id: "${{ .path.id }}"}
        response:
          body: '{id: .body.id, name: .body.name, price: (.body.price_cents / 100), available: .body.in_stock}'
---
apiVersion: causeway/v1
kind: API
metadata: {name: tokens}
spec:
  basePath: /tokens
  policies:
    auth: {jwt: {issuer: "` + tokenIssuer + `", audiences: [` + tokenAudience + `], jwksURL: "JWKSURL"}}
    rateLimit: {requests: 10000000, per: 1s, burst: 10000000}
  routes:
    - match: GET /items/{id}
      policies: {scopes: ["items:read"]}
      proxy:
        call: backend.getItem
        with: {id: "${{ .path.id }}"}
        response:
          body: '{id: .body.id, name: .body.name, price: (.body.price_cents / 100), available: .body.in_stock}'
`

// causewaySetup is the definitions the Causeway scenarios run with.
type causewaySetup struct {
	bin, configDir string
	// policies says whether the guarded API is among the definitions; when it is not,
	// skipped says why.
	policies bool
	skipped  string
	// profile says whether causeway serve takes --cpuprofile.
	profile bool
}

// unsupported matches the problems causeway validate reports for a build that does not
// know policies or the Consumer kind yet.
var unsupported = regexp.MustCompile(`unknown field "policies"|unknown kind "Consumer"`)

// prepareCauseway writes the definitions for a backend at backendAddr into dir/config and
// checks them with causeway validate. When the build rejects policies or the Consumer kind,
// it falls back to the API without policies alone and says why.
func prepareCauseway(ctx context.Context, bin, dir, backendAddr, jwksURL string) (*causewaySetup, error) {
	s := &causewaySetup{bin: bin, configDir: filepath.Join(dir, "config"), profile: serveHasFlag(ctx, bin, "cpuprofile")}
	if err := os.MkdirAll(s.configDir, 0o755); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(apiKey))
	system := strings.Replace(systemDef, "BACKEND", backendAddr, 1)
	full := system + "---\n" + strings.NewReplacer("KEYHASH", hex.EncodeToString(sum[:]), "JWKSURL", jwksURL).Replace(policyDefs)
	problems, err := s.validate(ctx, full)
	if err != nil {
		return nil, err
	}
	if problems == "" {
		s.policies = true
		return s, nil
	}
	if unsupported.MatchString(problems) {
		s.skipped = "this build of Causeway does not support API policies or the Consumer kind yet; causeway validate said: " + problems
	} else {
		s.skipped = "causeway validate rejected the definitions with policies: " + problems
	}
	plainProblems, err := s.validate(ctx, system+"---\n"+plainAPIDef)
	if err != nil {
		return nil, err
	}
	if plainProblems != "" {
		return nil, fmt.Errorf("causeway validate rejected even the definitions without policies: %s", plainProblems)
	}
	return s, nil
}

// validate writes defs as the only definition file and runs causeway validate on them. It
// returns the problems reported, "" when there are none, and an error only when validate
// could not run.
func (s *causewaySetup) validate(ctx context.Context, defs string) (string, error) {
	if err := os.WriteFile(filepath.Join(s.configDir, "bench.yaml"), []byte(defs), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, s.bin, "validate", s.configDir)
	cmd.Env = causewayEnv()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "", nil
	case errors.As(err, &exit) && len(strings.TrimSpace(string(out))) > 0:
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(strings.TrimSpace(l), s.configDir+string(filepath.Separator))
		}
		return strings.Join(lines, "; "), nil
	default:
		return "", fmt.Errorf("causeway validate: %v: %s", err, out)
	}
}

// causewayEnv is this process's environment without CAUSEWAY_ variables, which would set
// flags of the causeway commands behind the benchmark's back.
func causewayEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAUSEWAY_") {
			env = append(env, kv)
		}
	}
	return env
}

// startCauseway runs causeway serve with the prepared definitions, on free loopback ports
// (the embedded bus gets no client port at all), and waits until it is ready. It returns
// the base URL of the http listener. profile, when not "", is passed as --cpuprofile.
func startCauseway(ctx context.Context, cs *children, s *causewaySetup, dir, profile string) (*child, string, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	args := []string{"serve", "--config", s.configDir, "--data", filepath.Join(dir, "data"),
		"--http-addr", "127.0.0.1:" + strconv.Itoa(httpPort), "--admin-addr", "127.0.0.1:" + strconv.Itoa(adminPort),
		"--node", "bench", "--log-format", "text", "--log-level", "warn"}
	if profile != "" && s.profile {
		args = append(args, "--cpuprofile", profile)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = causewayEnv()
	c, err := cs.start("causeway", cmd, filepath.Join(dir, "causeway.log"))
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(ctx, c, base+"/readyz", 2*time.Minute); err != nil {
		cs.stop(c)
		return nil, "", err
	}
	return c, base, nil
}

// nginxConf is nginx as a reverse proxy with keep-alive connections to the backend. Every
// path it writes is under the scratch directory. keepalive_requests is raised on both sides
// so that nginx, like the Go servers, does not close busy connections after 1000 requests.
const nginxConf = `daemon off;
master_process on;
worker_processes auto;
pid DIR/nginx.pid;
error_log DIR/error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path DIR/client_body;
    proxy_temp_path DIR/proxy;
    fastcgi_temp_path DIR/fastcgi;
    uwsgi_temp_path DIR/uwsgi;
    scgi_temp_path DIR/scgi;
    keepalive_requests 1000000;

    upstream backend {
        server BACKEND;
        keepalive 64;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

// startNginx runs nginx in the foreground with a configuration of its own in dir, in front
// of the backend at backendAddr, and returns its base URL once it answers.
func startNginx(ctx context.Context, cs *children, bin, dir, backendAddr string) (*child, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	conf := strings.NewReplacer("DIR", dir, "BACKEND", backendAddr, "PORT", strconv.Itoa(port)).Replace(nginxConf)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	// -e sends the messages nginx writes before it has read its configuration to the
	// scratch directory as well, instead of /var/log/nginx.
	cmd := exec.Command(bin, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", file)
	c, err := cs.start("nginx", cmd, filepath.Join(dir, "nginx.out"))
	if err != nil {
		return nil, "", err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(ctx, c, base+"/items/"+itemID, 30*time.Second); err != nil {
		cs.stop(c)
		return nil, "", err
	}
	return c, base, nil
}

// caddyfile is Caddy with reverse_proxy to the backend, without its admin endpoint, HTTPS
// automation or access logs, keeping whatever it stores under the scratch directory.
const caddyfile = `{
	admin off
	persist_config off
	auto_https off
	storage file_system DIR/storage
	log {
		level ERROR
	}
}

http://127.0.0.1:PORT {
	reverse_proxy BACKEND
}
`

// startCaddy runs caddy run with a Caddyfile of its own in dir, in front of the backend at
// backendAddr, and returns its base URL once it answers.
func startCaddy(ctx context.Context, cs *children, bin, dir, backendAddr string) (*child, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	conf := strings.NewReplacer("DIR", dir, "BACKEND", backendAddr, "PORT", strconv.Itoa(port)).Replace(caddyfile)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	// Caddy keeps data and configuration under the home directory by default.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	c, err := cs.start("caddy", cmd, filepath.Join(dir, "caddy.log"))
	if err != nil {
		return nil, "", err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(ctx, c, base+"/items/"+itemID, 30*time.Second); err != nil {
		cs.stop(c)
		return nil, "", err
	}
	return c, base, nil
}
