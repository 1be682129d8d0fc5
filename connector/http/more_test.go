package httpconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

// loadSystem loads one System from YAML written into dir, as the platform does, so that
// its TLS files are read and its response mappings compiled.
func loadSystem(t *testing.T, dir, spec string) *system.Spec {
	t.Helper()
	doc := "apiVersion: causeway/v1\nkind: System\nmetadata: {name: erp}\nspec:\n" + spec
	if err := os.WriteFile(filepath.Join(dir, "erp.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := config.NewRegistry()
	if err := system.Register(r); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir, config.Options{Registry: r})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := cfg.Get(system.Kind, "erp")
	return res.Spec.(*system.Spec)
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newCA makes a certificate authority and a client certificate it signed.
func newCA(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clientTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "causeway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	clientDER, err := x509.CreateCertificate(rand.Reader, clientTmpl, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(clientKey)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", clientDER)
	writePEM(t, filepath.Join(dir, "client-key.pem"), "EC PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func TestTLSAndMutualTLS(t *testing.T) {
	dir := t.TempDir()
	clients := newCA(t, dir)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.StartTLS()
	defer srv.Close()
	writePEM(t, filepath.Join(dir, "server-ca.pem"), "CERTIFICATE", srv.Certificate().Raw)

	ops := `
  operations:
    hello: {http: {method: GET, path: /}}
`
	sys := loadSystem(t, dir, `  http:
    baseURL: "`+srv.URL+`"
    tls: {caFile: server-ca.pem, certFile: client.pem, keyFile: client-key.pem, minVersion: "1.3"}`+ops)
	res, err := New(nil).Do(context.Background(), "erp", sys, "hello", Call{})
	if err != nil || res.Body != "hello causeway" {
		t.Fatalf("mutual TLS: %v %v", res, err)
	}
	// Without the server's CA the certificate is not trusted: a permanent failure, a
	// setting to fix rather than a blip to retry.
	plain := loadSystem(t, t.TempDir(), `  http:
    baseURL: "`+srv.URL+`"`+ops)
	_, err = New(nil).Do(context.Background(), "erp", plain, "hello", Call{})
	var ce *Error
	if !errors.As(err, &ce) || ce.Transient {
		t.Errorf("untrusted certificate: %v, want a permanent error", err)
	}
}

func TestQueryKeyOAuth2SuccessCodesAndMapping(t *testing.T) {
	var tokens atomic.Int32
	valid := atomic.Value{}
	valid.Store("")
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		_ = r.ParseForm()
		if id != "causeway" || secret != "s3cret" || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("scope") != "orders.read orders.write" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		n := tokens.Add(1)
		tok := "tok-" + string(rune('0'+n))
		valid.Store(tok)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"`+tok+`","token_type":"Bearer","expires_in":3600}`)
	}))
	defer auth.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/keyed":
			if r.URL.Query().Get("api_key") != "k3y" {
				http.Error(w, "key", http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case "/orders/missing":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"not found"}`)
		default:
			if r.Header.Get("Authorization") != "Bearer "+valid.Load().(string) {
				http.Error(w, "token", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Version", "7")
			_, _ = io.WriteString(w, `{"orderId":"A-1","lines":[1,2,3]}`)
		}
	}))
	defer api.Close()
	t.Setenv("CAUSEWAY_SECRET_CLIENT_SECRET", "s3cret")
	t.Setenv("CAUSEWAY_SECRET_API_KEY", "k3y")
	sys := loadSystem(t, t.TempDir(), `  http:
    baseURL: "`+api.URL+`"
    auth:
      oauth2: {tokenURL: "`+auth.URL+`", clientID: causeway, clientSecret: "${secret:CLIENT_SECRET}", scopes: [orders.read, orders.write]}
  operations:
    get:
      http:
        method: GET
        path: /orders/{id}
        success: [200, 404]
        response: '{found: (.status == 200), lines: (.body.lines // [] | length), version: .headers["x-version"]}'
`)
	c := New(nil)
	ctx := context.Background()
	for range 3 {
		res, err := c.Do(ctx, "erp", sys, "get", Call{Params: map[string]any{"id": "A-1"}})
		if err != nil {
			t.Fatal(err)
		}
		m := res.Body.(map[string]any)
		if m["found"] != true || m["lines"] != 3 || m["version"] != "7" {
			t.Errorf("mapped answer %v", m)
		}
	}
	if tokens.Load() != 1 {
		t.Errorf("%d tokens fetched for three calls, want one (cached)", tokens.Load())
	}
	// A revoked token is replaced once, and the call goes through.
	valid.Store("revoked")
	if _, err := c.Do(ctx, "erp", sys, "get", Call{Params: map[string]any{"id": "A-1"}}); err != nil || tokens.Load() != 2 {
		t.Errorf("after revocation: %v, %d tokens", err, tokens.Load())
	}
	// 404 is declared a success, and the mapping sees it.
	res, err := c.Do(ctx, "erp", sys, "get", Call{Params: map[string]any{"id": "missing"}})
	if err != nil || res.Body.(map[string]any)["found"] != false {
		t.Errorf("declared 404: %v %v", res, err)
	}

	keyed := loadSystem(t, t.TempDir(), `  http:
    baseURL: "`+api.URL+`"
    auth: {query: {name: api_key, value: "${secret:API_KEY}"}}
  operations:
    ping: {http: {method: GET, path: /keyed}}
`)
	if res, err := New(nil).Do(ctx, "erp", keyed, "ping", Call{}); err != nil || res.Status != 204 {
		t.Errorf("API key in the query: %v %v", res, err)
	}
}

func TestRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a redirect to another host was followed")
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/old":
			http.Redirect(w, r, "/new", http.StatusFound)
		case "/away":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	ops := "\n  operations:\n    old: {http: {method: GET, path: /old}}\n    away: {http: {method: GET, path: /away}}\n"
	follow := loadSystem(t, t.TempDir(), "  http: {baseURL: \""+srv.URL+"\", followRedirects: true}"+ops)
	if res, err := New(nil).Do(context.Background(), "erp", follow, "old", Call{}); err != nil || res.Status != 204 {
		t.Errorf("same-host redirect: %v %v", res, err)
	}
	if _, err := New(nil).Do(context.Background(), "erp", follow, "away", Call{}); err == nil || !strings.Contains(err.Error(), "HTTP 302") {
		t.Errorf("cross-host redirect: %v", err)
	}
	stay := loadSystem(t, t.TempDir(), "  http: {baseURL: \""+srv.URL+"\"}"+ops)
	if _, err := New(nil).Do(context.Background(), "erp", stay, "old", Call{}); err == nil || !strings.Contains(err.Error(), "HTTP 302") {
		t.Errorf("redirects off: %v", err)
	}
}
