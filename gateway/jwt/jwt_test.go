package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "api://orders"
	otherAud     = "api://billing"
)

// sentinels lists every sentinel, to check that an error matches exactly one.
var sentinels = []error{
	ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrSignature, ErrExpired,
	ErrNotYetValid, ErrIssuer, ErrAudience, ErrKeysUnavailable,
}

// testKeySet holds the keys the tests sign with.
type testKeySet struct {
	once            sync.Once
	rsaA, rsaB      *rsa.PrivateKey
	ecA, ecB, ec384 *ecdsa.PrivateKey
	edA             ed25519.PrivateKey
}

// testKeys are generated once per test binary, because RSA key generation
// is slow.
var testKeys testKeySet

func keys(t testing.TB) *testKeySet {
	t.Helper()
	testKeys.once.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		testKeys.rsaA, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		testKeys.rsaB, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		testKeys.ecA, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		testKeys.ecB, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		testKeys.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		_, testKeys.edA, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
	return &testKeys
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig",
		"n": enc(pub.N.Bytes()), "e": enc(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	point, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	size := (len(point) - 1) / 2
	return map[string]any{"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name,
		"x": enc(point[1 : 1+size]), "y": enc(point[1+size:])}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(pub)}
}

// with returns a copy of a JWK with extra members.
func with(jwk map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(jwk)+len(kv)/2)
	for k, v := range jwk {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// standardSet is the key set most tests serve.
func standardSet(t testing.TB) []map[string]any {
	k := keys(t)
	return []map[string]any{
		rsaJWK("rsa-a", &k.rsaA.PublicKey),
		ecJWK("ec-a", &k.ecA.PublicKey),
		ecJWK("ec-384", &k.ec384.PublicKey),
		edJWK("ed-a", k.edA.Public().(ed25519.PublicKey)),
	}
}

// jwksServer serves a key set on loopback and counts its hits.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu           sync.Mutex
	body         []byte
	status       int
	cacheControl string
	gate         chan struct{} // when set, requests wait for it to close
}

func newJWKSServer(t testing.TB, set []map[string]any) *jwksServer {
	s := &jwksServer{}
	s.setKeys(set...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		s.mu.Lock()
		body, status, cc := s.body, s.status, s.cacheControl
		s.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(set ...map[string]any) {
	body, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		panic(err)
	}
	s.setBody(http.StatusOK, body)
}

func (s *jwksServer) setBody(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// hold makes requests wait until the returned function is called; the
// cleanup releases them too, so that a failing test cannot hang Close.
func (s *jwksServer) hold(t testing.TB) func() {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	var once sync.Once
	release := func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(gate)
		})
	}
	t.Cleanup(release)
	return release
}

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Unix(1_800_000_000, 0).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newVerifier(t testing.TB, url string, clk *clock, mods ...func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Issuer: testIssuer, Audiences: []string{testAudience, otherAud}, JWKSURL: url, Now: clk.Now}
	for _, m := range mods {
		m(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// claims returns valid claims for the clock's present, with changes: a nil
// value deletes the claim.
func claims(clk *clock, kv ...any) gojwt.MapClaims {
	now := clk.Now().Unix()
	c := gojwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "user-42",
		"iat": now, "exp": now + 3600}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func sign(t testing.TB, alg, kid string, priv any, c gojwt.MapClaims) string {
	t.Helper()
	tok := gojwt.NewWithClaims(gojwt.GetSigningMethod(alg), c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// signHeader signs an RS256 token with extra header members.
func signHeader(t testing.TB, priv *rsa.PrivateKey, c gojwt.MapClaims, kv ...any) string {
	t.Helper()
	tok := gojwt.NewWithClaims(gojwt.SigningMethodRS256, c)
	for i := 0; i < len(kv); i += 2 {
		tok.Header[kv[i].(string)] = kv[i+1]
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// rawToken assembles a token from JSON header and claims and a signature,
// for the tokens the library would refuse to produce.
func rawToken(header, payload string, sig []byte) string {
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

// verify runs Verify and checks that any error is safe to show: it must not
// contain the token, any longer piece of it, any string from its header or
// claims (other than the configured issuer and audiences it may name), or
// any key material.
func verify(t *testing.T, v *Verifier, token string) (*Claims, error) {
	t.Helper()
	c, err := v.Verify(context.Background(), token)
	if err != nil {
		assertSafe(t, err.Error(), token)
	}
	return c, err
}

func assertSafe(t testing.TB, msg, token string) {
	t.Helper()
	var secrets []string
	if len(token) >= 8 {
		secrets = append(secrets, token)
	}
	for _, seg := range strings.Split(token, ".") {
		if len(seg) >= 8 {
			secrets = append(secrets, seg)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(seg); err == nil {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				secrets = append(secrets, stringsIn(m)...)
			}
		}
	}
	k := keys(t)
	for _, jwk := range []map[string]any{rsaJWK("", &k.rsaA.PublicKey), rsaJWK("", &k.rsaB.PublicKey),
		ecJWK("", &k.ecA.PublicKey), edJWK("", k.edA.Public().(ed25519.PublicKey))} {
		for _, m := range []string{"n", "x", "y"} {
			if s, ok := jwk[m].(string); ok {
				secrets = append(secrets, s[:16])
			}
		}
	}
	for _, s := range secrets {
		if s == testIssuer || s == testAudience || s == otherAud || len(s) < 5 {
			continue
		}
		if strings.Contains(msg, s) {
			t.Fatalf("error message %q reveals %q", msg, s)
		}
	}
}

func stringsIn(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, stringsIn(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, stringsIn(e)...)
		}
		return out
	}
	return nil
}

// wantErr checks that err matches want and no other sentinel.
func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("error %v matches %v as well as %v", err, s, want)
		}
	}
}

func TestVerifyAccepts(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	exp := clk.Now().Add(time.Hour).Unix()
	tests := []struct {
		name, alg, kid string
		priv           any
		extra          []any
		scopes         []string
		aud            []string
	}{
		{"RS256", "RS256", "rsa-a", k.rsaA, []any{"scope", "orders:read orders:write"}, []string{"orders:read", "orders:write"}, []string{testAudience}},
		{"PS256", "PS256", "rsa-a", k.rsaA, nil, nil, []string{testAudience}},
		{"RS512 with scp array", "RS512", "rsa-a", k.rsaA, []any{"scp", []any{"admin", "audit"}}, []string{"admin", "audit"}, []string{testAudience}},
		{"ES256", "ES256", "ec-a", k.ecA, []any{"scp", "orders:read"}, []string{"orders:read"}, []string{testAudience}},
		{"ES384", "ES384", "ec-384", k.ec384, nil, nil, []string{testAudience}},
		{"EdDSA", "EdDSA", "ed-a", k.edA, []any{"scope", "a", "scp", []any{"b"}}, []string{"a", "b"}, []string{testAudience}},
		{"audience array", "ES256", "ec-a", k.ecA, []any{"aud", []any{"api://other", otherAud}}, nil, []string{"api://other", otherAud}},
		{"second audience", "ES256", "ec-a", k.ecA, []any{"aud", otherAud}, nil, []string{otherAud}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := append([]any{"tenant", "acme"}, tt.extra...)
			c, err := verify(t, v, sign(t, tt.alg, tt.kid, tt.priv, claims(clk, kv...)))
			wantErr(t, err, nil)
			if c.Subject != "user-42" || c.Issuer != testIssuer || c.ExpiresAt.Unix() != exp {
				t.Errorf("claims = %+v", c)
			}
			if strings.Join(c.Audience, " ") != strings.Join(tt.aud, " ") {
				t.Errorf("audience = %q, want %q", c.Audience, tt.aud)
			}
			if strings.Join(c.Scopes, " ") != strings.Join(tt.scopes, " ") {
				t.Errorf("scopes = %q, want %q", c.Scopes, tt.scopes)
			}
			if c.Raw["tenant"] != "acme" {
				t.Errorf("raw tenant = %v", c.Raw["tenant"])
			}
		})
	}
	if n := srv.hits.Load(); n != 1 {
		t.Errorf("key set fetched %d times, want 1", n)
	}
}

func TestVerifyClaims(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	now := clk.Now().Unix()
	tests := []struct {
		name string
		kv   []any
		want error
	}{
		{"expired within skew", []any{"exp", now - 20}, nil},
		{"expired beyond skew", []any{"exp", now - 31}, ErrExpired},
		{"no exp", []any{"exp", nil}, ErrExpired},
		{"exp zero", []any{"exp", 0}, ErrExpired},
		{"exp not a number", []any{"exp", "tomorrow"}, ErrMalformed},
		{"nbf within skew", []any{"nbf", now + 20}, nil},
		{"nbf beyond skew", []any{"nbf", now + 31}, ErrNotYetValid},
		{"iat within skew", []any{"iat", now + 20}, nil},
		{"iat beyond skew", []any{"iat", now + 120}, ErrNotYetValid},
		{"wrong issuer", []any{"iss", "https://evil.test"}, ErrIssuer},
		{"issuer with other case", []any{"iss", "https://ISSUER.test"}, ErrIssuer},
		{"no issuer", []any{"iss", nil}, ErrIssuer},
		{"empty issuer", []any{"iss", ""}, ErrIssuer},
		{"issuer not a string", []any{"iss", 7}, ErrMalformed},
		{"wrong audience", []any{"aud", "api://evil"}, ErrAudience},
		{"audience array without ours", []any{"aud", []any{"api://x", "api://y"}}, ErrAudience},
		{"no audience", []any{"aud", nil}, ErrAudience},
		{"empty audience array", []any{"aud", []any{}}, ErrAudience},
		{"audience array with a number", []any{"aud", []any{testAudience, 3}}, ErrMalformed},
		{"subject not a string", []any{"sub", 42}, ErrMalformed},
		{"wrong issuer and expired", []any{"iss", "https://evil.test", "exp", now - 3600}, ErrIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(t, v, sign(t, "RS256", "rsa-a", k.rsaA, claims(clk, tt.kv...)))
			wantErr(t, err, tt.want)
		})
	}
	t.Run("messages name the expected values", func(t *testing.T) {
		_, err := verify(t, v, sign(t, "RS256", "rsa-a", k.rsaA, claims(clk, "iss", "https://evil.test")))
		if !strings.Contains(err.Error(), testIssuer) {
			t.Errorf("issuer error %q does not name the expected issuer", err)
		}
		_, err = verify(t, v, sign(t, "RS256", "rsa-a", k.rsaA, claims(clk, "aud", "api://evil")))
		if !strings.Contains(err.Error(), testAudience) {
			t.Errorf("audience error %q does not name the expected audiences", err)
		}
	})
	t.Run("tiny skew", func(t *testing.T) {
		strict := newVerifier(t, srv.URL, clk, func(c *Config) { c.ClockSkew = time.Nanosecond })
		_, err := verify(t, strict, sign(t, "RS256", "rsa-a", k.rsaA, claims(clk, "exp", now-1)))
		wantErr(t, err, ErrExpired)
	})
}

func TestForgedTokens(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	good := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk))
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + enc([]byte(`{"iss":"`+testIssuer+`","aud":"`+testAudience+`","sub":"admin","exp":9999999999}`)) + "." + parts[2]
	tests := []struct {
		name, token string
	}{
		{"RSA key with the same kid", sign(t, "RS256", "rsa-a", k.rsaB, claims(clk))},
		{"EC key with the same kid", sign(t, "ES256", "ec-a", k.ecB, claims(clk))},
		{"tampered claims", tampered},
		{"signature cut short", good[:len(good)-10]},
		{"no signature", parts[0] + "." + parts[1] + "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(t, v, tt.token)
			wantErr(t, err, ErrSignature)
		})
	}
}

func TestAlgorithmRefused(t *testing.T) {
	k := keys(t)
	clk := newClock()
	body := claims(clk)
	payload, _ := json.Marshal(body)
	der, err := x509.MarshalPKIXPublicKey(&k.rsaA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	t.Run("before any fetch", func(t *testing.T) {
		srv := newJWKSServer(t, standardSet(t))
		v := newVerifier(t, srv.URL, clk)
		tests := []struct{ name, token string }{
			{"none", rawToken(`{"alg":"none","kid":"rsa-a"}`, string(payload), nil)},
			{"none with signature", rawToken(`{"alg":"none"}`, string(payload), []byte("sig"))},
			{"NONE", rawToken(`{"alg":"NONE","kid":"rsa-a"}`, string(payload), nil)},
			{"HS256 with the PEM public key", sign(t, "HS256", "rsa-a", pemKey, body)},
			{"HS256 with the DER public key", sign(t, "HS256", "rsa-a", der, body)},
			{"HS512 with the modulus", sign(t, "HS512", "rsa-a", k.rsaA.N.Bytes(), body)},
			{"unknown alg", rawToken(`{"alg":"RS1","kid":"rsa-a"}`, string(payload), []byte("sig"))},
			{"alg not a string", rawToken(`{"alg":256,"kid":"rsa-a"}`, string(payload), []byte("sig"))},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := verify(t, v, tt.token)
				if tt.name == "alg not a string" {
					wantErr(t, err, ErrMalformed)
					return
				}
				wantErr(t, err, ErrAlgorithm)
			})
		}
		if n := srv.hits.Load(); n != 0 {
			t.Errorf("refused algorithms caused %d key set fetches", n)
		}
	})

	t.Run("by the key", func(t *testing.T) {
		srv := newJWKSServer(t, append(standardSet(t), with(rsaJWK("rsa-pinned", &k.rsaB.PublicKey), "alg", "RS256")))
		v := newVerifier(t, srv.URL, clk)
		tests := []struct{ name, token string }{
			{"PS256 with a key pinned to RS256", sign(t, "PS256", "rsa-pinned", k.rsaB, body)},
			{"ES256 naming an RSA key", sign(t, "ES256", "rsa-a", k.ecA, body)},
			{"ES384 naming a P-256 key", sign(t, "ES384", "ec-a", k.ec384, body)},
			{"RS256 naming an Ed25519 key", sign(t, "RS256", "ed-a", k.rsaA, body)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := verify(t, v, tt.token)
				wantErr(t, err, ErrAlgorithm)
			})
		}
		_, err := verify(t, v, sign(t, "RS256", "rsa-pinned", k.rsaB, body))
		wantErr(t, err, nil)
	})

	t.Run("by the configuration", func(t *testing.T) {
		srv := newJWKSServer(t, standardSet(t))
		v := newVerifier(t, srv.URL, clk, func(c *Config) { c.Algorithms = []string{"ES256"} })
		_, err := verify(t, v, sign(t, "RS256", "rsa-a", k.rsaA, body))
		wantErr(t, err, ErrAlgorithm)
		_, err = verify(t, v, sign(t, "ES256", "ec-a", k.ecA, body))
		wantErr(t, err, nil)
	})
}

func TestMalformed(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, standardSet(t))
	clk := newClock()
	v := newVerifier(t, srv.URL, clk)
	good := sign(t, "RS256", "rsa-a", k.rsaA, claims(clk))
	parts := strings.Split(good, ".")
	payload, _ := json.Marshal(claims(clk))
	tests := []struct{ name, token string }{
		{"empty", ""},
		{"garbage", "garbage"},
		{"two segments", parts[0] + "." + parts[1]},
		{"four segments", good + ".extra"},
		{"bad base64", "!!!!.????.****"},
		{"bad base64 in the signature", parts[0] + "." + parts[1] + ".a*b"},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+/+/"},
		{"header not JSON", enc([]byte("not json")) + "." + parts[1] + "." + parts[2]},
		{"header a JSON array", rawToken(`["RS256"]`, string(payload), []byte("x"))},
		{"claims not JSON", parts[0] + "." + enc([]byte("{oops")) + "." + parts[2]},
		{"claims a JSON string", parts[0] + "." + enc([]byte(`"claims"`)) + "." + parts[2]},
		{"no alg", rawToken(`{"kid":"rsa-a"}`, string(payload), []byte("x"))},
		{"kid not a string", signHeader(t, k.rsaA, claims(clk), "kid", 7)},
		{"critical extension", signHeader(t, k.rsaA, claims(clk), "kid", "rsa-a", "crit", []string{"exp"}, "exp", 1)},
		{"oversized", strings.Repeat("a", maxTokenLen+1)},
		{"whitespace", " " + good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(t, v, tt.token)
			wantErr(t, err, ErrMalformed)
		})
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("malformed tokens caused %d key set fetches", n)
	}
	_, err := verify(t, v, good)
	wantErr(t, err, nil)
}

func TestTokenWithoutKid(t *testing.T) {
	k := keys(t)
	clk := newClock()
	one := newJWKSServer(t, []map[string]any{rsaJWK("rsa-a", &k.rsaA.PublicKey)})
	_, err := verify(t, newVerifier(t, one.URL, clk), sign(t, "RS256", "", k.rsaA, claims(clk)))
	wantErr(t, err, nil)

	several := newJWKSServer(t, standardSet(t))
	_, err = verify(t, newVerifier(t, several.URL, clk), sign(t, "RS256", "", k.rsaA, claims(clk)))
	wantErr(t, err, ErrUnknownKey)
	if n := several.hits.Load(); n != 1 {
		t.Errorf("a token without kid caused %d fetches, want 1: refetching cannot help it", n)
	}
}

func TestClaimsHelpers(t *testing.T) {
	c := &Claims{
		Scopes: []string{"orders:read", "orders:write"},
		Raw: map[string]any{"tenant": "acme", "groups": []any{"ops", "dev"}, "admin": true,
			"level": float64(3), "ratio": 1.5, "nested": map[string]any{"a": "b"}},
	}
	scopeTests := []struct {
		required []string
		want     bool
	}{
		{nil, true},
		{[]string{"orders:read"}, true},
		{[]string{"orders:read", "orders:write"}, true},
		{[]string{"orders:read", "orders:delete"}, false},
		{[]string{"orders"}, false},
	}
	for _, tt := range scopeTests {
		if got := c.HasScopes(tt.required...); got != tt.want {
			t.Errorf("HasScopes(%q) = %v, want %v", tt.required, got, tt.want)
		}
	}
	matchTests := []struct {
		required map[string]string
		claim    string
		ok       bool
	}{
		{nil, "", true},
		{map[string]string{"tenant": "acme"}, "", true},
		{map[string]string{"tenant": "acme", "groups": "ops", "admin": "true", "level": "3", "ratio": "1.5"}, "", true},
		{map[string]string{"tenant": "other"}, "tenant", false},
		{map[string]string{"groups": "sales"}, "groups", false},
		{map[string]string{"missing": ""}, "missing", false},
		{map[string]string{"nested": "b"}, "nested", false},
		{map[string]string{"tenant": "acme", "b": "x", "a": "y"}, "a", false},
	}
	for _, tt := range matchTests {
		claim, ok := c.Match(tt.required)
		if claim != tt.claim || ok != tt.ok {
			t.Errorf("Match(%v) = %q, %v; want %q, %v", tt.required, claim, ok, tt.claim, tt.ok)
		}
	}
}

func TestNew(t *testing.T) {
	valid := Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURL: "https://issuer.test/jwks"}
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }},
		{"no audience", func(c *Config) { c.Audiences = nil }},
		{"empty audience", func(c *Config) { c.Audiences = []string{testAudience, ""} }},
		{"no URL", func(c *Config) { c.JWKSURL = "" }},
		{"relative URL", func(c *Config) { c.JWKSURL = "/jwks" }},
		{"other scheme", func(c *Config) { c.JWKSURL = "ftp://issuer.test/jwks" }},
		{"unparsable URL", func(c *Config) { c.JWKSURL = "http://%zz" }},
		{"credentials in URL", func(c *Config) { c.JWKSURL = "https://user:pw@issuer.test/jwks" }},
		{"negative skew", func(c *Config) { c.ClockSkew = -time.Second }},
		{"negative refresh", func(c *Config) { c.Refresh = -time.Second }},
		{"HS256", func(c *Config) { c.Algorithms = []string{"RS256", "HS256"} }},
		{"none", func(c *Config) { c.Algorithms = []string{"none"} }},
		{"unknown alg", func(c *Config) { c.Algorithms = []string{"RS1"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mod(&cfg)
			if _, err := New(cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
	v, err := New(valid)
	if err != nil {
		t.Fatal(err)
	}
	if v.cfg.ClockSkew != DefaultClockSkew || v.cfg.Refresh != DefaultRefresh || v.cfg.MinRefresh != DefaultMinRefresh ||
		v.cfg.Client == nil || v.cfg.Client.Timeout != 5*time.Second || len(v.allowed) != 10 {
		t.Errorf("defaults not applied: %+v", v.cfg)
	}
	if st := v.Stats(); st.Fetches != 0 {
		t.Errorf("New fetched the key set")
	}
}

func benchmarkVerify(b *testing.B, alg, kid string, priv any) {
	srv := newJWKSServer(b, standardSet(b))
	clk := newClock()
	// Without the cache: these measure the full check.
	v := newVerifier(b, srv.URL, clk, func(c *Config) { c.CacheSize = -1 })
	token := sign(b, alg, kid, priv, claims(clk, "scope", "orders:read orders:write"))
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchmarkVerify(b, "RS256", "rsa-a", keys(b).rsaA) }

func BenchmarkVerifyES256(b *testing.B) { benchmarkVerify(b, "ES256", "ec-a", keys(b).ecA) }
