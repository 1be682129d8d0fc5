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
