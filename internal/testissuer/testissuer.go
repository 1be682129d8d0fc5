// Package testissuer is a bearer token issuer for tests: it serves the JSON Web Key Set of
// an ES256 key on loopback, as an identity provider publishes its keys, and signs tokens
// with that key (or another one, to forge them).
package testissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"

	jwtlib "github.com/golang-jwt/jwt/v5"
)

// KeyID is the kid of the issuer's key, which every token Sign makes names.
const KeyID = "k1"

// Issuer is a running issuer.
type Issuer struct {
	// URL serves the key set.
	URL string
	// Key signs the issuer's tokens.
	Key *ecdsa.PrivateKey
}

// Start serves a new key's set until the test ends.
func Start(t testing.TB) *Issuer {
	t.Helper()
	key := NewKey(t)
	pad := func(n *big.Int) string { return base64.RawURLEncoding.EncodeToString(n.FillBytes(make([]byte, 32))) }
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":%q,"use":"sig","alg":"ES256","x":%q,"y":%q}]}`,
		KeyID, pad(key.PublicKey.X), pad(key.PublicKey.Y))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, jwks)
	}))
	t.Cleanup(srv.Close)
	return &Issuer{URL: srv.URL, Key: key}
}

// NewKey makes a P-256 key: the issuer's, or one to forge tokens with.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Sign makes an ES256 token of claims naming the issuer's key id, signed with key.
func Sign(t testing.TB, key *ecdsa.PrivateKey, claims jwtlib.MapClaims) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodES256, claims)
	tok.Header["kid"] = KeyID
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
