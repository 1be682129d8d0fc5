package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary strings to a verifier whose key set has no
// private keys anywhere: the keys are made here and their private halves
// dropped, so no input can carry a valid signature and every one must be
// refused, with a sentinel error and without panicking.
func FuzzVerify(f *testing.F) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	srv := newJWKSServer(f, []map[string]any{
		rsaJWK("rsa-a", &rsaKey.PublicKey),
		ecJWK("ec-a", &ecKey.PublicKey),
		edJWK("ed-a", edPub),
	})
	// The clock stands still, so MinRefresh allows at most one refetch for
	// the whole run and the fuzzer does not flood the test server.
	clk := newClock()
	v := newVerifier(f, srv.URL, clk)

	// Tokens signed with the test keys under the set's kids get past the
	// parsing and reach the signature check.
	k := keys(f)
	f.Add(sign(f, "RS256", "rsa-a", k.rsaA, claims(clk)))
	f.Add(sign(f, "ES256", "ec-a", k.ecA, claims(clk, "scope", "a b")))
	f.Add(sign(f, "EdDSA", "ed-a", k.edA, claims(clk, "aud", []any{testAudience})))
	f.Add(sign(f, "HS256", "rsa-a", []byte("secret"), claims(clk)))

	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(context.Background(), token)
		if err == nil {
			t.Fatalf("accepted a token no key of the set signed: %+v", c)
		}
		if c != nil {
			t.Fatalf("returned claims with error %v", err)
		}
		matched := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				matched++
			}
		}
		if matched != 1 {
			t.Fatalf("error %v matches %d sentinels, want 1", err, matched)
		}
		// Shorter inputs could be words of the message itself.
		if len(token) >= 24 && strings.Contains(err.Error(), token) {
			t.Fatalf("error %q repeats the token", err)
		}
	})
}
