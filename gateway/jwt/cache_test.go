package jwt

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// wantCache checks the cache's counters.
func wantCache(t *testing.T, v *Verifier, hits, misses uint64, size int) {
	t.Helper()
	s := v.Stats()
	if s.CacheHits != hits || s.CacheMisses != misses || s.CachedTokens != size {
		t.Fatalf("cache: %d hits, %d misses, %d tokens; want %d, %d, %d", s.CacheHits, s.CacheMisses, s.CachedTokens, hits, misses, size)
	}
}

// publishKeys has the issuer serve a new key set and lets the verifier's set go stale; the
// verification of token (from the stale set) starts the refresh, whose error it returns
// once inUse says the new set is the one in use.
func publishKeys(t *testing.T, srv *jwksServer, v *Verifier, clk *clock, token string, inUse func() bool, set ...map[string]any) error {
	t.Helper()
	srv.setKeys(set...)
	clk.Advance(DefaultRefresh)
	_, err := verify(t, v, token)
	eventually(t, "the new key set in use", inUse)
	return err
}

func TestCacheAnswersKnownToken(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	token := sign(t, "ES256", "ec-a", k.ecA, claims(clk, "scope", "orders:read"))

	first, err := verify(t, v, token)
	wantErr(t, err, nil)
	wantCache(t, v, 0, 1, 1)
	second, err := verify(t, v, token)
	wantErr(t, err, nil)
	wantCache(t, v, 1, 1, 1)
	if second != first || !second.HasScopes("orders:read") || second.Subject != "user-42" {
		t.Fatalf("cached claims %+v, want the first check's %+v", second, first)
	}

	// A token that differs from a cached one in any byte is checked in full: here its
	// signature, with a byte of it changed, fails.
	forged := token[:len(token)-2] + flip(token[len(token)-2]) + token[len(token)-1:]
	_, err = verify(t, v, forged)
	wantErr(t, err, ErrSignature)
	// A refused token is not kept among the verified ones; sent again, it is refused
	// again from the refused tokens (refused_test.go).
	_, err = verify(t, v, forged)
	wantErr(t, err, ErrSignature)
	wantCache(t, v, 1, 2, 1)
	wantRefused(t, v, 1, 1)
	wantHits(t, srv, 1)
}

// flip changes a base64url character into another one of the alphabet.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestCacheKeepsValidityPeriod(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	now := clk.Now().Unix()
	// Valid from now+10s (nbf, within the 30 s skew) until now+60s (exp).
	token := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk, "nbf", now+10, "exp", now+60))
	_, err := verify(t, v, token)
	wantErr(t, err, nil)

	// Within exp plus the skew the cached answer holds; at exp plus the skew the token
	// has expired as an uncached one would have.
	clk.Advance(89 * time.Second)
	_, err = verify(t, v, token)
	wantErr(t, err, nil)
	wantCache(t, v, 1, 1, 1)
	clk.Advance(time.Second)
	_, err = verify(t, v, token)
	wantErr(t, err, ErrExpired)
	wantCache(t, v, 1, 2, 0)

	// A clock that goes back before nbf minus the skew refuses the cached token too.
	token = sign(t, "RS256", "rsa-a", k.rsaA, claims(clk, "iat", nil, "nbf", clk.Now().Unix()+10))
	_, err = verify(t, v, token)
	wantErr(t, err, nil)
	clk.Advance(-20 * time.Second)
	_, err = verify(t, v, token)
	wantErr(t, err, nil)
	clk.Advance(-21 * time.Second)
	_, err = verify(t, v, token)
	wantErr(t, err, ErrNotYetValid)
}

func TestCacheFollowsKeyRotation(t *testing.T) {
	k := keys(t)
	a, b := rsaJWK("rsa-a", &k.rsaA.PublicKey), rsaJWK("rsa-b", &k.rsaB.PublicKey)
	srv := newJWKSServer(t, []map[string]any{a})
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	tokenA := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk))
	tokenB := sign(t, "RS256", "rsa-b", k.rsaB, claims(clk))
	_, err := verify(t, v, tokenA)
	wantErr(t, err, nil)

	// The issuer adds rsa-b; a token naming it brings the new set. rsa-a is still in it,
	// so tokenA's cached answer holds.
	srv.setKeys(a, b)
	clk.Advance(DefaultMinRefresh)
	_, err = verify(t, v, tokenB)
	wantErr(t, err, nil)
	wantHits(t, srv, 2)
	_, err = verify(t, v, tokenA)
	wantErr(t, err, nil)
	wantCache(t, v, 1, 2, 2)

	// The issuer drops rsa-a. Once the set is fetched again (it went stale), tokenA is no
	// longer answered from the cache, and is refused as an uncached token would be.
	// tokenB's request is a hit that starts the refresh of the stale set.
	err = publishKeys(t, srv, v, clk, tokenB, func() bool { return srv.hits.Load() == 3 && len(v.set.Load().all) == 1 }, b)
	wantErr(t, err, nil)
	_, err = verify(t, v, tokenA)
	wantErr(t, err, ErrUnknownKey)
	_, err = verify(t, v, tokenB)
	wantErr(t, err, nil)
}

func TestCacheRefusesReusedKid(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, []map[string]any{rsaJWK("rsa-a", &k.rsaA.PublicKey)})
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	tokenA := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk))
	_, err := verify(t, v, tokenA)
	wantErr(t, err, nil)

	// The issuer publishes another key under the same kid: tokens signed by the old one
	// no longer verify, cached or not.
	_ = publishKeys(t, srv, v, clk, tokenA, func() bool { return srv.hits.Load() == 2 && v.set.Load().expires.After(clk.Now()) },
		rsaJWK("rsa-a", &k.rsaB.PublicKey))
	_, err = verify(t, v, tokenA)
	wantErr(t, err, ErrSignature)
}

func TestCacheTokenWithoutKid(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, []map[string]any{rsaJWK("rsa-a", &k.rsaA.PublicKey)})
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	token := sign(t, "RS256", "", k.rsaA, claims(clk))
	_, err := verify(t, v, token)
	wantErr(t, err, nil)

	// With a second key in the set a token without kid is ambiguous: refused, although
	// the key that checked it is still there.
	_ = publishKeys(t, srv, v, clk, token, func() bool { return len(v.set.Load().all) == 2 },
		rsaJWK("rsa-a", &k.rsaA.PublicKey), rsaJWK("rsa-b", &k.rsaB.PublicKey))
	_, err = verify(t, v, token)
	wantErr(t, err, ErrUnknownKey)
}

func TestCacheBounded(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk, func(c *Config) { c.CacheSize = 16 })
	for i := range 40 {
		_, err := verify(t, v, sign(t, "ES256", "ec-a", k.ecA, claims(clk, "sub", fmt.Sprint("user-", i))))
		wantErr(t, err, nil)
		if n := v.Stats().CachedTokens; n > 16 {
			t.Fatalf("after %d tokens the cache holds %d, more than its size 16", i+1, n)
		}
	}
	// Oversized tokens are checked every time and never kept.
	big := sign(t, "ES256", "ec-a", k.ecA, claims(clk, "groups", strings.Repeat("x", maxCachedTokenLen)))
	for range 2 {
		_, err := verify(t, v, big)
		wantErr(t, err, nil)
	}
	if s := v.Stats(); s.CacheHits != 0 {
		t.Fatalf("%d cache hits for distinct and oversized tokens", s.CacheHits)
	}
}

func TestCacheOff(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk, func(c *Config) { c.CacheSize = -1 })
	token := sign(t, "ES256", "ec-a", k.ecA, claims(clk))
	for range 3 {
		_, err := verify(t, v, token)
		wantErr(t, err, nil)
	}
	wantCache(t, v, 0, 0, 0)
}

func BenchmarkVerifyCached(b *testing.B) {
	k := keys(b)
	srv := newJWKSServer(b, standardSet(b))
	clk := newClock()
	v := newVerifier(b, srv.URL, clk)
	token := sign(b, "RS256", "rsa-a", k.rsaA, claims(clk, "scope", "orders:read orders:write"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCachedOnly(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	token := sign(t, "ES256", "ec-a", k.ecA, claims(clk))
	ctx := context.Background()

	// Before any full check: nothing kept, no key set fetched, nothing counted.
	if _, ok := v.Cached(ctx, []byte(token)); ok {
		t.Fatal("Cached answered a token never checked")
	}
	wantHits(t, srv, 0)
	wantCache(t, v, 0, 0, 0)

	first, err := verify(t, v, token)
	wantErr(t, err, nil)
	c, ok := v.Cached(ctx, []byte(token))
	if !ok || c != first {
		t.Fatalf("Cached after a full check: %v, %v", c, ok)
	}
	wantCache(t, v, 0, 1, 1)
	v.CountHit()
	wantCache(t, v, 1, 1, 1)

	// Expired: Cached says no, and Verify gives the reason.
	clk.Advance(time.Hour + DefaultClockSkew)
	if _, ok := v.Cached(ctx, []byte(token)); ok {
		t.Fatal("Cached answered an expired token")
	}
	_, err = verify(t, v, token)
	wantErr(t, err, ErrExpired)
	wantCache(t, v, 1, 2, 0)
}
