package jwt

import (
	"context"
	"crypto"
	"sync"
	"sync/atomic"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// DefaultCacheSize is how many verified tokens a Verifier keeps when Config.CacheSize is
// zero.
const DefaultCacheSize = 10000

// maxCachedTokenLen bounds the tokens the cache keeps, so that its memory stays bounded by
// the entry count: a real token of a few kilobytes fits, and a larger one is verified
// every time.
const maxCachedTokenLen = 8 << 10

// The verified-token cache. Checking a token's signature costs tens of microseconds (RS256
// about 25 µs, ES256 about 50 µs on the project's two-core machine): several times what the
// gateway spends on the rest of a request. A client sends the same token with every
// request until it expires, so the outcome of the check is kept, keyed by the exact token
// text. Only tokens that passed every check go in; a hit still checks what can change
// with time or with the issuer's keys:
//   - the validity period (exp, nbf and iat, with the clock skew) against the clock of
//     this request, so a cached token expires exactly when an uncached one would;
//   - the key: when the key set has been replaced since the token was checked, the key
//     that checked it must still be in the new set under the same kid, or the token is
//     checked again in full (and refused when its key was rotated out).
//
// Failures are not kept here, so that nothing an unauthenticated client sends can take
// room from valid tokens: the refusals a token's text decides are kept apart
// (refusedCache).
type tokenCache struct {
	tokenMap[*cachedToken]
	// hits and misses count lookups, for Stats.
	hits, misses atomic.Uint64
}

// cachedToken is the outcome of a token's full check.
type cachedToken struct {
	claims *Claims
	// key checked the signature of a token with header kid and alg; set is the newest
	// key set known to hold it.
	key      *key
	kid, alg string
	set      atomic.Pointer[keySet]
	// The validity period, with the clock skew already applied: the token is valid from
	// validFrom (inclusive) until validUntil (exclusive).
	validFrom, validUntil time.Time
}

func newTokenCache(size int) *tokenCache {
	if size <= 0 {
		return nil
	}
	return &tokenCache{tokenMap: newTokenMap[*cachedToken](size)}
}

// tokenMap is what both token caches hold: entries by the exact token text, at most max of
// them, read under a read lock.
type tokenMap[V comparable] struct {
	mu  sync.RWMutex
	m   map[string]V
	max int
}

func newTokenMap[V comparable](max int) tokenMap[V] {
	return tokenMap[V]{m: make(map[string]V), max: max}
}

// get returns the token's entry, or the zero V.
func (t *tokenMap[V]) get(token string) V {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[token]
}

// getBytes is get for a token as bytes: indexing with the conversion itself copies nothing.
func (t *tokenMap[V]) getBytes(token []byte) V {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[string(token)]
}

// put keeps an entry. When the map is full, an eighth of it goes first (makeRoom).
func (t *tokenMap[V]) put(token string, e V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	makeRoom(t.m, t.max)
	t.m[token] = e
}

// makeRoom drops an eighth of m when it holds size entries or more, chosen by the map's
// random order: expired entries would be found only by a scan of the whole map, which a
// client sending many distinct tokens could make every request pay.
func makeRoom[V any](m map[string]V, size int) {
	if len(m) < size {
		return
	}
	drop := max(size/8, 1)
	for k := range m {
		delete(m, k)
		if drop--; drop == 0 {
			break
		}
	}
}

// remove forgets a token, if e is still its entry.
func (t *tokenMap[V]) remove(token string, e V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[token] == e {
		delete(t.m, token)
	}
}

// size is the number of entries.
func (t *tokenMap[V]) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// Cached returns the claims of a token that passed every check before and still holds
// (its validity period and its key are checked, as Verify does for a kept token), without
// a signature check and without waiting for a key set; ok is false when the token is not
// kept or no longer holds, and Verify must then be asked. The gateway's fast lane serves
// only tokens it finds here, and leaves the others to the general path. Cached counts
// nothing: a caller that goes on with the claims calls CountHit, so that a token it leaves
// to Verify after all is not counted twice.
func (v *Verifier) Cached(ctx context.Context, token []byte) (c *Claims, ok bool) {
	if v.cache == nil {
		return nil, false
	}
	e := v.cache.getBytes(token)
	if e == nil {
		return nil, false
	}
	if !v.holds(ctx, e) {
		v.cache.remove(string(token), e)
		return nil, false
	}
	return e.claims, true
}

// CountHit counts a cache hit for a token Cached answered.
func (v *Verifier) CountHit() {
	if v.cache != nil {
		v.cache.hits.Add(1)
	}
}

// cached is Cached for Verify's token, counting its hits.
func (v *Verifier) cached(ctx context.Context, token string) (*Claims, bool) {
	if v.cache == nil {
		return nil, false
	}
	e := v.cache.get(token)
	if e == nil {
		return nil, false
	}
	if !v.holds(ctx, e) {
		v.cache.remove(token, e)
		return nil, false
	}
	v.cache.hits.Add(1)
	return e.claims, true
}

// holds reports whether a kept token is valid now with the key set in use. When it is
// not, the full check says what is wrong, in its own words, and the entry goes.
func (v *Verifier) holds(ctx context.Context, e *cachedToken) bool {
	// keys also starts the background refresh of a stale set, as a full check would.
	set, err := v.keys(ctx)
	now := v.cfg.Now()
	return err == nil && !now.Before(e.validFrom) && now.Before(e.validUntil) && v.stillHolds(e, set)
}

// stillHolds reports whether the key that checked an entry's token is in set.
func (v *Verifier) stillHolds(e *cachedToken, set *keySet) bool {
	if seen := e.set.Load(); seen == set {
		return true
	}
	k, err := set.lookup(e.kid, e.alg)
	if err != nil {
		return false
	}
	if k != e.key {
		pub, ok := k.pub.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(e.key.pub) {
			return false
		}
	}
	e.set.Store(set)
	return true
}

// remember keeps a token that passed every check, with the key and set that checked it
// and its validity period from its claims.
func (v *Verifier) remember(token string, c *Claims, mc gojwt.MapClaims, k *key, kid, alg string, set *keySet) {
	if v.cache == nil || k == nil || set == nil || len(token) > maxCachedTokenLen {
		return
	}
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return
	}
	skew := v.cfg.ClockSkew
	e := &cachedToken{claims: c, key: k, kid: kid, alg: alg, validUntil: exp.Add(skew)}
	for _, get := range []func() (*gojwt.NumericDate, error){mc.GetNotBefore, mc.GetIssuedAt} {
		t, err := get()
		if err != nil {
			return
		}
		if t != nil && t.Add(-skew).After(e.validFrom) {
			e.validFrom = t.Add(-skew)
		}
	}
	e.set.Store(set)
	v.cache.put(token, e)
}
