package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/platform"
)

// runQuickstart starts a real node in this process on the quickstart example, with a
// temporary data directory and random loopback ports, and stops it when the test ends.
func runQuickstart(t *testing.T) *platform.Platform {
	t.Helper()
	return runNodeOn(t, "../../examples/quickstart")
}

// runNodeOn starts a node in this process on the definitions in dir, temporary data and
// random loopback ports.
func runNodeOn(t *testing.T, dir string) *platform.Platform {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := platform.New(ctx, platform.Options{
		ConfigDir: dir, DataDir: t.TempDir(), Registry: kinds.Default(),
		HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Sync: bus.Sync{Interval: time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}
