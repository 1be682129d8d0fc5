package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventually waits for cond, which background fetches make true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantHits(t *testing.T, srv *jwksServer, want int64) {
	t.Helper()
	if got := srv.hits.Load(); got != want {
		t.Fatalf("key set fetched %d times, want %d", got, want)
	}
}

// verifyAll runs Verify from n goroutines at once and returns their errors;
// the caller checks them, since only the test goroutine may fail the test.
func verifyAll(v *Verifier, n int, token string) func() []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = v.Verify(context.Background(), token) })
	}
	return func() []error { wg.Wait(); return errs }
}

func TestKeyRotation(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, []map[string]any{rsaJWK("rsa-a", &k.rsaA.PublicKey)})
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	tokenA := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk))
	tokenB := sign(t, "RS256", "rsa-b", k.rsaB, claims(clk))

	_, err := verify(t, v, tokenA)
	wantErr(t, err, nil)
	wantHits(t, srv, 1)

	// An unknown kid makes the verifier look again, but the issuer has not
	// published the key yet.
	clk.Advance(DefaultMinRefresh)
	_, err = verify(t, v, tokenB)
	wantErr(t, err, ErrUnknownKey)
	wantHits(t, srv, 2)

	// The issuer rotates; right away MinRefresh still holds the verifier
	// back, and once it has passed the new key is found.
	srv.setKeys(rsaJWK("rsa-a", &k.rsaA.PublicKey), rsaJWK("rsa-b", &k.rsaB.PublicKey))
	_, err = verify(t, v, tokenB)
	wantErr(t, err, ErrUnknownKey)
	wantHits(t, srv, 2)
	clk.Advance(DefaultMinRefresh)
	_, err = verify(t, v, tokenB)
	wantErr(t, err, nil)
	wantHits(t, srv, 3)
	_, err = verify(t, v, tokenA)
	wantErr(t, err, nil)

	// The old key is retired; once the cached set goes stale and is
	// refreshed, tokens signed with it are refused.
	srv.setKeys(rsaJWK("rsa-b", &k.rsaB.PublicKey))
	clk.Advance(DefaultRefresh)
	_, err = verify(t, v, tokenA) // still accepted: stale keys serve while the refresh runs
	wantErr(t, err, nil)
	eventually(t, "the background refresh", func() bool { return v.Stats().Keys == 1 })
	wantHits(t, srv, 4)
	_, err = verify(t, v, tokenA)
	wantErr(t, err, ErrUnknownKey)
	_, err = verify(t, v, tokenB)
	wantErr(t, err, nil)
}

func TestRefetchRateLimited(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)

	// Concurrent first requests share one fetch.
	release := srv.hold(t)
	wait := verifyAll(v, 16, sign(t, "ES256", "ec-a", k.ecA, claims(clk)))
	eventually(t, "the first fetch", func() bool { return srv.hits.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // let the others queue on the fetch
	release()
	for _, err := range wait() {
		wantErr(t, err, nil)
	}
	wantHits(t, srv, 1)

	// Made-up kids within MinRefresh of the last fetch cause no fetch.
	for i := range 20 {
		tok := sign(t, "RS256", "made-up-"+string(rune('a'+i)), k.rsaB, claims(clk))
		_, err := verify(t, v, tok)
		wantErr(t, err, ErrUnknownKey)
	}
	wantHits(t, srv, 1)

	// Once it has passed, concurrent tokens naming a new kid share one
	// refetch, and all of them see the rotated set.
	clk.Advance(DefaultMinRefresh)
	release = srv.hold(t)
	tokenB := sign(t, "RS256", "rsa-b", k.rsaB, claims(clk))
	wait = verifyAll(v, 32, tokenB)
	eventually(t, "the refetch", func() bool { return srv.hits.Load() == 2 })
	time.Sleep(20 * time.Millisecond)
	srv.setKeys(append(standardSet(t), rsaJWK("rsa-b", &k.rsaB.PublicKey))...)
	release()
	for _, err := range wait() {
		wantErr(t, err, nil)
	}
	wantHits(t, srv, 2)

	// The window counts from the refetch.
	_, err := verify(t, v, sign(t, "RS256", "rsa-c", k.rsaB, claims(clk)))
	wantErr(t, err, ErrUnknownKey)
	wantHits(t, srv, 2)
	clk.Advance(DefaultMinRefresh - time.Second)
	_, err = verify(t, v, sign(t, "RS256", "rsa-c", k.rsaB, claims(clk)))
	wantErr(t, err, ErrUnknownKey)
	wantHits(t, srv, 2)
	clk.Advance(time.Second)
	_, err = verify(t, v, sign(t, "RS256", "rsa-c", k.rsaB, claims(clk)))
	wantErr(t, err, ErrUnknownKey)
	wantHits(t, srv, 3)
	if st := v.Stats(); st.Fetches != 3 || st.FetchErrors != 0 || !st.LastFetch.Equal(clk.Now()) {
		t.Errorf("stats = %+v", st)
	}
}

// failures are the ways a key set endpoint can let the verifier down.
var failures = []struct {
	name   string
	induce func(*jwksServer)
}{
	{"server down", func(s *jwksServer) { s.Close() }},
	{"status 503", func(s *jwksServer) { s.setBody(http.StatusServiceUnavailable, []byte(`{"keys":[]}`)) }},
	{"status 404", func(s *jwksServer) { s.setBody(http.StatusNotFound, nil) }},
	{"not JSON", func(s *jwksServer) { s.setBody(http.StatusOK, []byte("<html>maintenance</html>")) }},
	{"empty set", func(s *jwksServer) { s.setBody(http.StatusOK, []byte(`{"keys":[]}`)) }},
	{"no usable key", func(s *jwksServer) {
		s.setBody(http.StatusOK, []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`))
	}},
	{"oversized", func(s *jwksServer) {
		s.setBody(http.StatusOK, []byte(`{"keys":[]`+strings.Repeat(" ", maxKeySetSize)+`}`))
	}},
}

func TestStaleWhileError(t *testing.T) {
	k := keys(t)
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			srv := newJWKSServer(t, standardSet(t))
			clk := newClock()
			v := newVerifier(t, srv.URL, clk)
			token := sign(t, "EdDSA", "ed-a", k.edA, claims(clk, "exp", clk.Now().Add(24*time.Hour).Unix()))
			_, err := verify(t, v, token)
			wantErr(t, err, nil)

			f.induce(srv)
			clk.Advance(DefaultRefresh + time.Second)
			_, err = verify(t, v, token)
			wantErr(t, err, nil)
			eventually(t, "the failed refresh", func() bool { return v.Stats().FetchErrors == 1 })
			_, err = verify(t, v, token)
			wantErr(t, err, nil)

			// An unknown kid gets a refetch, which fails too, and is
			// refused as unknown: the cached keys are still there.
			clk.Advance(DefaultMinRefresh)
			_, err = verify(t, v, sign(t, "RS256", "rsa-b", k.rsaB, claims(clk)))
			wantErr(t, err, ErrUnknownKey)
			st := v.Stats()
			if st.Fetches != 3 || st.FetchErrors != 2 || st.Keys != 4 || st.LastError == "" || st.LastSuccess.IsZero() {
				t.Errorf("stats = %+v", st)
			}
			assertSafe(t, st.LastError, token)
		})
	}
}

func TestKeysUnavailable(t *testing.T) {
	k := keys(t)
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			srv := newJWKSServer(t, standardSet(t))
			f.induce(srv)
			clk := newClock()
			v := newVerifier(t, srv.URL, clk)
			token := sign(t, "ES256", "ec-a", k.ecA, claims(clk, "exp", clk.Now().Add(24*time.Hour).Unix()))
			_, err := verify(t, v, token)
			wantErr(t, err, ErrKeysUnavailable)
			if strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q tells the client where the keys live", err)
			}
			// Within MinRefresh the verifier does not hammer the endpoint.
			_, err = verify(t, v, token)
			wantErr(t, err, ErrKeysUnavailable)
			if st := v.Stats(); st.Fetches != 1 || st.FetchErrors != 1 || st.LastError == "" || st.Keys != 0 {
				t.Errorf("stats = %+v", st)
			}
			if f.name == "server down" {
				return
			}
			srv.setKeys(standardSet(t)...)
			clk.Advance(DefaultMinRefresh)
			_, err = verify(t, v, token)
			wantErr(t, err, nil)
			if st := v.Stats(); st.LastError != "" || st.Keys != 4 {
				t.Errorf("stats after recovery = %+v", st)
			}
		})
	}
}

func TestWaitCancelled(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	token := sign(t, "ES256", "ec-a", k.ecA, claims(clk))
	release := srv.hold(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.hits.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := v.Verify(ctx, token)
	wantErr(t, err, ErrKeysUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not say the wait was cancelled", err)
	}
	assertSafe(t, err.Error(), token)
	// The fetch outlives the caller that started it.
	release()
	eventually(t, "the fetch", func() bool { return v.Stats().Keys == 4 })
	_, err = verify(t, v, token)
	wantErr(t, err, nil)
	wantHits(t, srv, 1)
}

func TestKeySetParsing(t *testing.T) {
	k := keys(t)
	good := rsaJWK("rsa-a", &k.rsaA.PublicKey)
	// Only the size of a modulus is checked on parsing, so any 1024-bit
	// number stands in for a small key.
	small := map[string]any{"kty": "RSA", "kid": "small", "n": enc(append([]byte{0xc1}, make([]byte, 127)...)), "e": "AQAB"}
	set := []map[string]any{
		with(rsaJWK("enc", &k.rsaB.PublicKey), "use", "enc"),
		with(rsaJWK("oaep", &k.rsaB.PublicKey), "use", nil, "alg", "RSA-OAEP-256"),
		with(rsaJWK("wrap", &k.rsaB.PublicKey), "use", nil, "key_ops", []string{"wrapKey"}),
		with(rsaJWK("private", &k.rsaB.PublicKey), "d", enc(k.rsaB.D.Bytes())),
		with(rsaJWK("even-e", &k.rsaB.PublicKey), "e", "AQAA"),
		with(rsaJWK("bad-n", &k.rsaB.PublicKey), "n", "***"),
		small,
		{"kty": "oct", "kid": "oct", "k": enc([]byte("secret"))},
		{"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": enc(make([]byte, 32))},
		{"kty": "OKP", "kid": "ed-short", "crv": "Ed25519", "x": enc(make([]byte, 31))},
		{"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": enc([]byte{1}), "y": enc([]byte{1})},
		with(ecJWK("p192", &k.ecB.PublicKey), "crv", "P-192"),
		with(ecJWK("ec-rs", &k.ecB.PublicKey), "alg", "RS256"),
		{"kty": "RSA", "kid": 7, "n": good["n"], "e": good["e"]},
		{"kid": "no-kty"},
		with(good, "key_ops", []string{"verify"}, "alg", "RS256"),
	}
	srv := newJWKSServer(t, set)
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	_, err := verify(t, v, sign(t, "RS256", "rsa-a", k.rsaA, claims(clk)))
	wantErr(t, err, nil)
	if st := v.Stats(); st.Keys != 1 || st.SkippedKeys != len(set)-1 {
		t.Errorf("stats = %+v, want 1 key and %d skipped", st, len(set)-1)
	}
	for _, kid := range []string{"enc", "oaep", "wrap", "private", "even-e"} {
		_, err := verify(t, v, sign(t, "RS256", kid, k.rsaB, claims(clk)))
		wantErr(t, err, ErrUnknownKey)
	}
	_, err = verify(t, v, sign(t, "ES256", "ec-rs", k.ecB, claims(clk)))
	wantErr(t, err, ErrUnknownKey)
	// The symmetric key is never used as an HMAC secret.
	_, err = verify(t, v, sign(t, "HS256", "oct", []byte("secret"), claims(clk)))
	wantErr(t, err, ErrAlgorithm)
}

// TestShortECCoordinate checks that an EC key whose encoder dropped a
// leading zero byte still parses to the same key.
func TestShortECCoordinate(t *testing.T) {
	for range 100_000 {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		jwk := ecJWK("short", &priv.PublicKey)
		x, _ := b64(jwk["x"].(string))
		if x[0] != 0 {
			continue
		}
		raw, _ := json.Marshal(with(jwk, "x", enc(x[1:])))
		k, ok := parseKey(raw)
		if !ok || !k.pub.(*ecdsa.PublicKey).Equal(&priv.PublicKey) {
			t.Fatalf("short coordinate: ok=%v", ok)
		}
		return
	}
	t.Skip("no key with a leading zero byte turned up")
}

func TestCacheControl(t *testing.T) {
	v := newVerifier(t, "https://issuer.test/jwks", newClock())
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", DefaultRefresh},
		{"max-age=60", time.Minute},
		{"public, max-age=3600, must-revalidate", time.Hour},
		{`max-age="120"`, 2 * time.Minute},
		{"max-age=1", DefaultMinRefresh},
		{"max-age=0", DefaultMinRefresh},
		{"max-age=99999999999999999999", MaxRefresh},
		{"max-age=604800", MaxRefresh},
		{"no-cache", DefaultMinRefresh},
		{"max-age=3600, no-store", DefaultMinRefresh},
		{"max-age=soon", DefaultRefresh},
		{"max-age=-5", DefaultRefresh},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Cache-Control", tt.header)
		}
		if got := v.freshness(h); got != tt.want {
			t.Errorf("freshness(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}

	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	srv.mu.Lock()
	srv.cacheControl = "max-age=60"
	srv.mu.Unlock()
	clk := newClock()
	v = newVerifier(t, srv.URL, clk)
	token := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk))
	_, err := verify(t, v, token)
	wantErr(t, err, nil)
	clk.Advance(59 * time.Second)
	_, err = verify(t, v, token)
	wantErr(t, err, nil)
	wantHits(t, srv, 1)
	clk.Advance(time.Second)
	_, err = verify(t, v, token)
	wantErr(t, err, nil)
	eventually(t, "the refresh after max-age", func() bool { return v.Stats().Fetches == 2 && srv.hits.Load() == 2 })
}

func TestRedirects(t *testing.T) {
	k := keys(t)
	keysSrv := newJWKSServer(t, standardSet(t))
	mux := http.NewServeMux()
	mux.Handle("/elsewhere", http.RedirectHandler(keysSrv.URL, http.StatusFound))
	mux.Handle("/moved", http.RedirectHandler("/jwks", http.StatusMovedPermanently))
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": standardSet(t)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	clk := newClock()
	token := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk))

	v := newVerifier(t, srv.URL+"/moved", clk)
	_, err := verify(t, v, token)
	wantErr(t, err, nil)

	v = newVerifier(t, srv.URL+"/elsewhere", clk)
	_, err = verify(t, v, token)
	wantErr(t, err, ErrKeysUnavailable)
	if st := v.Stats(); !strings.Contains(st.LastError, "another host") {
		t.Errorf("last error = %q", st.LastError)
	}
	wantHits(t, keysSrv, 0)
}
