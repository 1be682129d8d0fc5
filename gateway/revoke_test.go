package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/bus"
)

// TestRevocationsFollowTheBucket has two followers of one bucket, as two nodes would: what
// one stores, the other refuses moments later, while lookups run concurrently (the race
// detector checks the lock-free reads); a follower opened later starts with what is there.
func TestRevocationsFollowTheBucket(t *testing.T) {
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Sync: bus.Sync{Interval: time.Second}, NodeName: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func() *Revocations {
		r, err := OpenRevocations(ctx, b.JetStream(), 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	a, other := open(), open()
	hashes := make([][32]byte, 50)
	for i := range hashes {
		hashes[i] = sha256.Sum256([]byte{byte(i)})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, h := range hashes {
					other.revoked(h)
					a.revoked(h)
				}
			}
		})
	}
	for i, h := range hashes {
		if _, err := a.kv.Put(ctx, entryKey(h), []byte(`{"consumer":"c","key":"k`+string(rune('a'+i%26))+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, h := range hashes {
		for !other.revoked(h) {
			if time.Now().After(deadline) {
				t.Fatalf("the other follower never saw %x revoked", h[:4])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Lifted on one side, lifted on the other.
	if err := a.kv.Delete(ctx, entryKey(hashes[7])); err != nil {
		t.Fatal(err)
	}
	for other.revoked(hashes[7]) {
		if time.Now().After(deadline) {
			t.Fatal("the other follower never saw the revocation lifted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	late := open()
	if n := len(late.list()); n != len(hashes)-1 {
		t.Errorf("a follower opened later holds %d revocations, want %d", n, len(hashes)-1)
	}
	if late.revoked(hashes[7]) || !late.revoked(hashes[8]) {
		t.Error("a follower opened later has the wrong set")
	}
	// Without the bucket (a node with no API), nothing is revoked and RevokeKey says why.
	var none *Revocations
	if none.revoked(hashes[0]) || none.list() != nil {
		t.Error("a nil set revokes something")
	}
	if _, err := (&Gateway{}).RevokeKey(ctx, "c", "k", "r", "me"); !errors.Is(err, ErrNoRevocations) {
		t.Errorf("RevokeKey without revocations: %v", err)
	}
}
