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
// Failures are not kept: a refused token is checked again each time, so that nothing an
// unauthenticated client sends can take room from valid tokens.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[string]*cachedToken
	max int
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
	return &tokenCache{m: make(map[string]*cachedToken), max: size}
}

// get returns the token's entry, or nil.
func (c *tokenCache) get(token string) *cachedToken {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.m[token]
	c.mu.RUnlock()
	if e == nil {
		c.misses.Add(1)
	}
	return e
}

// put keeps a verified token. When the cache is full, an eighth of it goes first, chosen
// by the map's random order: expired entries would be found only by a scan of the whole
// map, which a client sending many distinct valid tokens could make every request pay.
func (c *tokenCache) put(token string, e *cachedToken) {
	if c == nil || len(token) > maxCachedTokenLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		drop := max(c.max/8, 1)
		for k := range c.m {
			delete(c.m, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.m[token] = e
}

// remove forgets a token, if e is still its entry.
func (c *tokenCache) remove(token string, e *cachedToken) {
	c.mu.Lock()
	if c.m[token] == e {
		delete(c.m, token)
	}
	c.mu.Unlock()
}

// size is the number of tokens kept.
func (c *tokenCache) size() int {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// cached answers Verify from the cache when it can: ok is false when the token is not
// kept or its entry no longer holds, and the token must then be checked in full.
func (v *Verifier) cached(ctx context.Context, token string) (*Claims, bool) {
	e := v.cache.get(token)
	if e == nil {
		return nil, false
	}
	// keys also starts the background refresh of a stale set, as a full check would.
	set, err := v.keys(ctx)
	if now := v.cfg.Now(); err != nil || now.Before(e.validFrom) || !now.Before(e.validUntil) || !v.stillHolds(e, set) {
		// The full check says what is wrong, in its own words; the entry goes.
		v.cache.remove(token, e)
		v.cache.misses.Add(1)
		return nil, false
	}
	v.cache.hits.Add(1)
	return e.claims, true
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
