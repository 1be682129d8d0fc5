// Package testutil holds helpers shared by Causeway's tests.
package testutil

import (
	"net"
	"os"
	"testing"
	"time"
)

// RequireService checks that a server the test needs (PostgreSQL, NATS, …) answers on addr.
// When it does not, the test is skipped with a message saying what is missing, or fails
// when CAUSEWAY_REQUIRE_SERVICES=1, as in CI, where a skipped test would hide a gap.
func RequireService(t testing.TB, name, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		conn.Close()
		return
	}
	msg := name + " is not reachable on " + addr + " (" + err.Error() + "); start it (../shared/bin/services-up) to run this test"
	if os.Getenv("CAUSEWAY_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg + "; CAUSEWAY_REQUIRE_SERVICES=1 makes that a failure")
	}
	t.Skip(msg)
}

// Chromium returns the path of the Chromium the browser tests drive. When there is none,
// the test is skipped saying how to install it, or fails when CAUSEWAY_REQUIRE_SERVICES=1
// (.ci/run installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CAUSEWAY_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "no Chromium for browser tests (apt-get install -y chromium, or set CAUSEWAY_CHROMIUM)"
	if os.Getenv("CAUSEWAY_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg + "; CAUSEWAY_REQUIRE_SERVICES=1 makes that a failure")
	}
	t.Skip(msg)
	return ""
}
