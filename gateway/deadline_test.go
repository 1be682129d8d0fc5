package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlineContext checks the lazy deadline context against what a standard one does:
// it ends at its deadline whether or not anything waits, cancel ends it, a child follows
// it, and a cancellable parent gets the standard context.
func TestDeadlineContext(t *testing.T) {
	ctx, cancel := withDeadline(context.Background(), time.Now().Add(30*time.Millisecond))
	defer cancel()
	if _, ok := ctx.(*deadlineCtx); !ok {
		t.Fatalf("a Background parent got %T", ctx)
	}
	if ctx.Err() != nil {
		t.Fatal("ended before its deadline")
	}
	time.Sleep(40 * time.Millisecond)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline, nobody waiting: %v", ctx.Err())
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done not closed after the deadline")
	}

	ctx, cancel = withDeadline(context.Background(), time.Now().Add(30*time.Millisecond))
	child, stop := context.WithCancel(ctx)
	defer stop()
	select {
	case <-child.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("a child did not end with its parent's deadline")
	}
	if !errors.Is(child.Err(), context.Canceled) && !errors.Is(context.Cause(child), context.DeadlineExceeded) && !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("child's error: %v", child.Err())
	}
	cancel()

	ctx, cancel = withDeadline(context.Background(), time.Now().Add(time.Hour))
	done := ctx.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("cancel did not close Done")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err after cancel: %v", ctx.Err())
	}
	cancel() // a second cancel changes nothing

	parent, pcancel := context.WithCancel(context.Background())
	ctx, cancel = withDeadline(parent, time.Now().Add(time.Hour))
	defer cancel()
	pcancel()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("a cancellable parent's cancel did not reach the child: %v", ctx.Err())
	}
}

// TestDeadlineContextAfterFunc checks that derived contexts follow the lazy context through
// AfterFunc, and that a stopped function does not run.
func TestDeadlineContextAfterFunc(t *testing.T) {
	ctx, cancel := withDeadline(context.Background(), time.Now().Add(time.Hour))
	child, stopChild := context.WithTimeout(ctx, time.Hour)
	defer stopChild()
	ran := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { t.Error("a stopped function ran") })
	if !stop() {
		t.Fatal("stop of a pending function reported false")
	}
	context.AfterFunc(ctx, func() { close(ran) })
	cancel()
	select {
	case <-child.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("a derived context did not end with its parent")
	}
	select {
	case <-ran:
	case <-time.After(2 * time.Second):
		t.Fatal("an AfterFunc function did not run")
	}
	late := make(chan struct{})
	if context.AfterFunc(ctx, func() { close(late) })() {
		t.Error("stop after the end reported true")
	}
	select {
	case <-late:
	case <-time.After(2 * time.Second):
		t.Fatal("a function registered after the end did not run")
	}
}
