package testutil

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ExternalNATS is the NATS server with JetStream that runs on this machine for tests.
const ExternalNATS = "127.0.0.1:4222"

// UseExternalNATS requires the machine's NATS server and holds it for the test alone: a
// node run against it creates Causeway's streams there, which tests of other packages,
// run in parallel processes by go test, would otherwise create, fill and delete under it.
// The hold is a lock file that the system releases with the process.
func UseExternalNATS(t testing.TB) string {
	t.Helper()
	RequireService(t, "NATS with JetStream", ExternalNATS)
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "causeway-test-external-nats.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
	return "nats://" + ExternalNATS
}

// causewayStreams are the streams a node creates on its NATS server.
var causewayStreams = []string{"MESSAGES", "TRACKING", "ERRORS", "INVOCATIONS", "PARKED", "AUDIT", "NOTIFY", "KV_CW_RUNS", "KV_CW_SYSTEMS", "KV_CW_ALERTS", "KV_CW_LIMITS", "KV_CW_REVOKED_KEYS", "REQUESTS", "GATEWAY_QUEUE"}

// CleanExternalNATS deletes Causeway's streams from the machine's NATS server, now and when
// the test ends, so that the test starts from an empty bus and leaves one behind. Call it
// after UseExternalNATS.
func CleanExternalNATS(t testing.TB, url string) {
	t.Helper()
	clean := func() {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range causewayStreams {
			_ = js.DeleteStream(ctx, s) // absent on a fresh server
		}
	}
	clean()
	t.Cleanup(clean)
}
