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
