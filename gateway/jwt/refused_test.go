package jwt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func wantRefused(t *testing.T, v *Verifier, hits uint64, size int) {
	t.Helper()
	s := v.Stats()
	if s.RefusedHits != hits || s.RefusedTokens != size {
		t.Fatalf("refused tokens: %d hits, %d kept; want %d, %d", s.RefusedHits, s.RefusedTokens, hits, size)
	}
}

// TestRefusedKeptByReason sends each kind of refused token twice: the refusals its text
// decides are answered the second time from the cache, with the same error; the others
// are checked again.
func TestRefusedKeptByReason(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	now := clk.Now().Unix()
	cases := []struct {
		name  string
		token string
		want  error
		kept  bool
	}{
		{"malformed", "not.a.jwt", ErrMalformed, true},
		{"algorithm", sign(t, "HS256", "ec-a", []byte("shared-secret-of-32-bytes-long!!"), claims(clk)), ErrAlgorithm, true},
		{"issuer", sign(t, "ES256", "ec-a", k.ecA, claims(clk, "iss", "https://other.test")), ErrIssuer, true},
		{"audience", sign(t, "ES256", "ec-a", k.ecA, claims(clk, "aud", "api://other")), ErrAudience, true},
		{"expired", sign(t, "ES256", "ec-a", k.ecA, claims(clk, "exp", now-120)), ErrExpired, true},
		{"signature", sign(t, "ES256", "ec-a", k.ecB, claims(clk)), ErrSignature, true},
		{"not yet valid", sign(t, "ES256", "ec-a", k.ecA, claims(clk, "nbf", now+120)), ErrNotYetValid, false},
		{"unknown key", sign(t, "ES256", "ec-unknown", k.ecA, claims(clk)), ErrUnknownKey, false},
	}
	kept := 0
	for _, c := range cases {
		_, first := verify(t, v, c.token)
		wantErr(t, first, c.want)
		before := v.Stats()
		_, again := verify(t, v, c.token)
		wantErr(t, again, c.want)
		after := v.Stats()
		if hit := after.RefusedHits == before.RefusedHits+1; hit != c.kept {
			t.Errorf("%s: answered from the refused tokens: %v, want %v", c.name, hit, c.kept)
		}
		if c.kept {
			kept++
			if again != first || after.CacheMisses != before.CacheMisses {
				t.Errorf("%s: the kept refusal was not the first check's, or was counted as a check", c.name)
			}
		}
	}
	if n := v.Stats().RefusedTokens; n != kept {
		t.Errorf("%d refusals kept, want %d", n, kept)
	}
}

// TestRefusedExpiredFollowsClock keeps an expired token's refusal only while the clock is
// past its exp plus the skew: set back, the clock sees the token valid again.
func TestRefusedExpiredFollowsClock(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	token := sign(t, "ES256", "ec-a", k.ecA, claims(clk, "exp", clk.Now().Unix()+60))
	clk.Advance(90 * time.Second) // exp + the 30 s skew
	for range 2 {
		_, err := verify(t, v, token)
		wantErr(t, err, ErrExpired)
	}
	wantRefused(t, v, 1, 1)
	clk.Advance(-time.Second)
	_, err := verify(t, v, token)
	wantErr(t, err, nil)
	wantRefused(t, v, 1, 0)
}

// TestRefusedSignatureFollowsKeySet keeps a refused signature only while the key set that
// refused it is in use: the issuer's next set, which names another key under the token's
// kid, accepts it.
func TestRefusedSignatureFollowsKeySet(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, []map[string]any{rsaJWK("rsa-a", &k.rsaA.PublicKey)})
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	token := sign(t, "RS256", "rsa-a", k.rsaB, claims(clk))
	for range 2 {
		_, err := verify(t, v, token)
		wantErr(t, err, ErrSignature)
	}
	wantRefused(t, v, 1, 1)
	err := publishKeys(t, srv, v, clk, token, func() bool { return srv.hits.Load() == 2 && v.set.Load().expires.After(clk.Now()) },
		rsaJWK("rsa-a", &k.rsaB.PublicKey))
	// The kept refusal that found the set stale started the fetch (the server's second
	// hit), and was answered from the set then in use; or, when the fetch on loopback was
	// done before the refusal was looked at again, checked in full against the new set.
	hits := uint64(2)
	if err == nil {
		hits = 1
	} else {
		wantErr(t, err, ErrSignature)
	}
	_, err = verify(t, v, token)
	wantErr(t, err, nil)
	wantRefused(t, v, hits, 0)
}

// TestRefusedBounded fills the refused tokens with made-up tokens: they hold at most a
// quarter of the cache size, take no room from verified tokens, and tokens over 4 KiB never
// go in.
func TestRefusedBounded(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk, func(c *Config) { c.CacheSize = 64 })
	good := sign(t, "ES256", "ec-a", k.ecA, claims(clk))
	_, err := verify(t, v, good)
	wantErr(t, err, nil)
	for i := range 100 {
		_, err := verify(t, v, sign(t, "ES256", "ec-a", k.ecB, claims(clk, "sub", fmt.Sprint("forger-", i))))
		wantErr(t, err, ErrSignature)
		if n := v.Stats().RefusedTokens; n > 16 {
			t.Fatalf("after %d made-up tokens %d refusals kept, more than 16", i+1, n)
		}
	}
	if s := v.Stats(); s.CachedTokens != 1 {
		t.Fatalf("%d verified tokens kept, want the 1 good one", s.CachedTokens)
	}
	big := sign(t, "ES256", "ec-a", k.ecB, claims(clk, "groups", strings.Repeat("x", maxRefusedTokenLen)))
	before := v.Stats().RefusedHits
	for range 2 {
		_, err := verify(t, v, big)
		wantErr(t, err, ErrSignature)
	}
	if v.Stats().RefusedHits != before {
		t.Fatal("an oversized token's refusal was kept")
	}
}

// TestRefusedOff keeps no refusal with the cache off.
func TestRefusedOff(t *testing.T) {
	srv := newJWKSServer(t, standardSet(t))
	v := newVerifier(t, srv.URL, newClock(), func(c *Config) { c.CacheSize = -1 })
	for range 3 {
		_, err := verify(t, v, "not.a.jwt")
		wantErr(t, err, ErrMalformed)
	}
	wantRefused(t, v, 0, 0)
}

// BenchmarkVerifyRefused measures a refusal answered from the refused-token cache: a token
// whose ES256 signature the key set refuses, sent again.
func BenchmarkVerifyRefused(b *testing.B) {
	k := keys(b)
	srv := newJWKSServer(b, standardSet(b))
	clk := newClock()
	v := newVerifier(b, srv.URL, clk)
	token := sign(b, "ES256", "ec-a", k.ecB, claims(clk))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); !errors.Is(err, ErrSignature) {
			b.Fatal(err)
		}
	}
}
