package system

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/expr"
)

var _ config.Provisioner = (*Spec)(nil)

// Provision reads what the definitions point at (TLS files) and compiles the operations'
// response mappings, so that a bad file or expression is a validate error at its line.
func (s *Spec) Provision(ctx *config.Context) error {
	s.provisionFiles(ctx)
	if h := s.HTTP; h != nil && h.TLS != nil {
		h.tlsConfig = buildTLS(ctx, h.TLS)
	}
	for _, name := range sortedOps(s) {
		op := s.Operations[name]
		if op.HTTP == nil || op.HTTP.Response == "" {
			continue
		}
		p, err := expr.Compile(op.HTTP.Response)
		if err != nil {
			ctx.Errorf(config.MapPath("operations", name)+".http.response", "%v", err)
			continue
		}
		op.HTTP.response = p
	}
	return ctx.Err()
}

// buildTLS loads the TLS files, relative to the definition file.
func buildTLS(ctx *config.Context, t *TLS) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.MinVersion == "1.3" {
		cfg.MinVersion = tls.VersionTLS13
	}
	path := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(ctx.Dir(), p)
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(path(t.CAFile))
		if err != nil {
			ctx.Errorf("http.tls.caFile", "cannot read %s: %v", t.CAFile, unwrapPath(err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				ctx.Errorf("http.tls.caFile", "%s holds no PEM certificate", t.CAFile)
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(path(t.CertFile), path(t.KeyFile))
		if err != nil {
			ctx.Errorf("http.tls.certFile", "client certificate: %v", unwrapPath(err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	case t.CertFile != "" || t.KeyFile != "":
		ctx.Errorf("http.tls", "give certFile and keyFile together")
	}
	return cfg
}

// unwrapPath drops the path from an os error: the message names the field already.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
