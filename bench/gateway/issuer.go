package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
)

// issuer is the token issuer of the causeway-jwt scenario: it serves the key set of an
// ES256 key from the benchmark's own process (Causeway fetches it once) and signs the
// token every request of the load carries.
type issuer struct {
	jwksURL, token string
	close          func()
}

// Claims of the benchmark's token, which the API's policy asks for.
const (
	tokenIssuer   = "https://login.bench/"
	tokenAudience = "bench"
)

func startIssuer() (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pad := func(b []byte) string {
		return base64.RawURLEncoding.EncodeToString(append(make([]byte, 32-len(b)), b...))
	}
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"bench","use":"sig","alg":"ES256","x":%q,"y":%q}]}`,
		pad(key.PublicKey.X.Bytes()), pad(key.PublicKey.Y.Bytes()))
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodES256, jwtlib.MapClaims{
		"iss": tokenIssuer, "aud": tokenAudience, "sub": "bench-client", "scope": "items:read",
		"iat": time.Now().Unix(), "exp": time.Now().Add(24 * time.Hour).Unix(),
	})
	tok.Header["kid"] = "bench"
	signed, err := tok.SignedString(key)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		fmt.Fprint(w, jwks)
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return &issuer{jwksURL: "http://" + ln.Addr().String() + "/jwks.json", token: signed, close: func() { srv.Close() }}, nil
}
