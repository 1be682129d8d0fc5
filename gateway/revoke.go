package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Revoking a key at once.
//
// A key marked revoked: true in its Consumer's definition is refused once the definitions
// are deployed. A key that has leaked cannot wait for a deployment: an operator revokes it
// through the admin API (or causeway consumers revoke), and every node sharing the bus
// refuses it within moments. The revocation is kept in the CW_REVOKED_KEYS bucket by the
// key's hash until it is lifted; the definition can then catch up (revoked: true, or the
// key removed) at the next deployment.

// RevocationsBucket is the key-value bucket of keys revoked at run time: "key.<hex hash>"
// holds a Revocation.
const RevocationsBucket = "CW_REVOKED_KEYS"

// Revocation is a key revoked at run time.
type Revocation struct {
	// Consumer and Key name the key (the Consumer's name, the key's name in it).
	Consumer string `json:"consumer"`
	Key      string `json:"key"`
	// Reason, Actor and At say why, by whom and when.
	Reason string    `json:"reason"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
}

// Errors of RevokeKey and ReinstateKey.
var (
	// ErrUnknownKey is a Consumer or key name the definitions do not have.
	ErrUnknownKey = errors.New("no such key")
	// ErrNotRevoked is a key that has no run-time revocation to lift.
	ErrNotRevoked = errors.New("the key is not revoked at run time")
	// ErrNoRevocations is a node without the revocations bucket (no API is defined).
	ErrNoRevocations = errors.New("keys cannot be revoked on this node: no API is defined")
)

// Revocations holds the keys revoked at run time, followed from the bucket so that every
// node learns of a revocation as soon as the bus has it. Lookups read an immutable map
// through an atomic pointer: the request path takes no lock.
type Revocations struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu  sync.Mutex // serializes writers of set
	set atomic.Pointer[map[[32]byte]Revocation]

	stop context.CancelFunc
	done chan struct{}
}

// OpenRevocations binds (creating when needed) the bucket, reads every revocation in it, and
// follows it until Close.
func OpenRevocations(ctx context.Context, js jetstream.JetStream, replicas int, log *slog.Logger) (*Revocations, error) {
	if log == nil {
		log = slog.Default()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: RevocationsBucket, Description: "Causeway: API keys revoked at run time, by hash",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("gateway revocations bucket: %w", err)
	}
	r := &Revocations{kv: kv, log: log.With("component", "gateway"), done: make(chan struct{})}
	r.set.Store(&map[[32]byte]Revocation{})
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gateway revocations bucket: watch: %w", err)
	}
	// The watch sends what the bucket holds, then a nil entry, then changes: the node
	// starts refusing revoked keys before it serves anything.
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, errors.New("gateway revocations bucket: the watch ended")
			}
			if e == nil {
				loaded = true
				continue
			}
			r.apply(e)
		case <-ctx.Done():
			_ = w.Stop()
			cancel()
			return nil, fmt.Errorf("gateway revocations bucket: %w", ctx.Err())
		}
	}
	r.stop = cancel
	go func() {
		defer close(r.done)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-wctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					r.apply(e)
				}
			}
		}
	}()
	return r, nil
}

// Close stops following the bucket.
func (r *Revocations) Close() {
	if r == nil || r.stop == nil {
		return
	}
	r.stop()
	<-r.done
}

// apply takes in one change of the bucket.
func (r *Revocations) apply(e jetstream.KeyValueEntry) {
	hash, ok := hashOfEntry(e.Key())
	if !ok {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		r.update(hash, nil)
		return
	}
	var rev Revocation
	if err := json.Unmarshal(e.Value(), &rev); err != nil {
		// Refuse the key all the same: a revocation that cannot be read is still one.
		r.log.Warn("unreadable key revocation; the key stays refused", "entry", e.Key(), "err", err)
	}
	r.update(hash, &rev)
}

// update replaces the set with one where hash is revoked (rev) or not (nil).
func (r *Revocations) update(hash [32]byte, rev *Revocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.set.Load()
	next := make(map[[32]byte]Revocation, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if rev == nil {
		delete(next, hash)
	} else {
		next[hash] = *rev
	}
	r.set.Store(&next)
}

// revoked reports whether the key with this hash is revoked at run time.
func (r *Revocations) revoked(hash [32]byte) bool {
	if r == nil {
		return false
	}
	_, ok := (*r.set.Load())[hash]
	return ok
}

// list returns the revocations, by Consumer and key.
func (r *Revocations) list() []Revocation {
	if r == nil {
		return nil
	}
	set := *r.set.Load()
	out := make([]Revocation, 0, len(set))
	for _, v := range set {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Revocation) int {
		if c := strings.Compare(a.Consumer, b.Consumer); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

func entryKey(hash [32]byte) string { return "key." + hex.EncodeToString(hash[:]) }

func hashOfEntry(key string) ([32]byte, bool) {
	var h [32]byte
	hexHash, ok := strings.CutPrefix(key, "key.")
	if !ok {
		return h, false
	}
	b, err := hex.DecodeString(hexHash)
	if err != nil || len(b) != len(h) {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// keyNamed finds a Consumer's key by the names the definitions give them.
func (g *Gateway) keyNamed(consumerName, keyName string) *keyEntry {
	c := g.consumers[consumerName]
	if c == nil {
		return nil
	}
	for _, k := range c.spec.Keys {
		if k.Name == keyName {
			return &keyEntry{consumer: c, key: k}
		}
	}
	return nil
}

// revocable finds the revocations to change and the key they are about.
func (g *Gateway) revocable(consumerName, keyName string) (*Revocations, *keyEntry, error) {
	r := g.opts.Revocations
	if r == nil {
		return nil, nil, ErrNoRevocations
	}
	e := g.keyNamed(consumerName, keyName)
	if e == nil {
		return nil, nil, fmt.Errorf("%w: Consumer %q has no key %q", ErrUnknownKey, consumerName, keyName)
	}
	return r, e, nil
}

// RevokeKey revokes a Consumer's key on every node at once, until ReinstateKey. The
// revocation is stored on the bus before this returns.
func (g *Gateway) RevokeKey(ctx context.Context, consumerName, keyName, reason, actor string) (Revocation, error) {
	r, e, err := g.revocable(consumerName, keyName)
	if err != nil {
		return Revocation{}, err
	}
	rev := Revocation{Consumer: consumerName, Key: keyName, Reason: reason, Actor: actor, At: time.Now().UTC()}
	data, err := json.Marshal(rev)
	if err != nil {
		return Revocation{}, err
	}
	if _, err := r.kv.Put(ctx, entryKey(e.key.hash), data); err != nil {
		return Revocation{}, fmt.Errorf("revoke key %s of %s: %w", keyName, consumerName, err)
	}
	// This node refuses the key from now on, without waiting for the watch.
	r.update(e.key.hash, &rev)
	g.log.Warn("API key revoked", "consumer", consumerName, "key", keyName, "actor", actor, "reason", reason)
	return rev, nil
}

// ReinstateKey lifts a run-time revocation. A key its definition marks revoked stays
// refused.
func (g *Gateway) ReinstateKey(ctx context.Context, consumerName, keyName string) (Revocation, error) {
	r, e, err := g.revocable(consumerName, keyName)
	if err != nil {
		return Revocation{}, err
	}
	rev, ok := (*r.set.Load())[e.key.hash]
	if !ok {
		return Revocation{}, fmt.Errorf("%w: key %s of %s", ErrNotRevoked, keyName, consumerName)
	}
	if err := r.kv.Delete(ctx, entryKey(e.key.hash)); err != nil {
		return Revocation{}, fmt.Errorf("reinstate key %s of %s: %w", keyName, consumerName, err)
	}
	r.update(e.key.hash, nil)
	g.log.Info("API key reinstated", "consumer", consumerName, "key", keyName)
	return rev, nil
}

// RevokedKeys lists the keys revoked at run time.
func (g *Gateway) RevokedKeys() []Revocation { return g.opts.Revocations.list() }
