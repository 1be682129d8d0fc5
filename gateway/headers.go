package gateway

import (
	"net"
	"net/http"
	"strings"

	"github.com/causeway/causeway/message"
)

// credentials are the client headers that prove who the client is. The backend trusts the
// gateway, not the client, so they stay behind unless the policy says otherwise.
var credentials = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// forwardHeaders are the headers a backend call carries from its client: X-Forwarded-For,
// -Proto and -Host always, and the ones the route's policy names. Hop-by-hop headers and
// credentials never pass, unless forwardCredentials says credentials may.
func forwardHeaders(r *http.Request, pol *Policies) http.Header {
	h := make(http.Header, 4)
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 {
		h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + peer}
	} else {
		h["X-Forwarded-For"] = []string{peer}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h["X-Forwarded-Proto"] = []string{proto}
	h["X-Forwarded-Host"] = []string{r.Host}
	if pol == nil || pol.Headers == nil {
		return h
	}
	skip := map[string]bool{}
	for _, name := range hopByHop {
		skip[name] = true
	}
	// A Connection header names more hop-by-hop headers of its own.
	for _, v := range r.Header.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			skip[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	if !pol.Headers.ForwardCredentials {
		for _, name := range credentials {
			skip[name] = true
		}
		if pol.Auth != nil && pol.Auth.APIKey != nil && pol.Auth.APIKey.Header != "" {
			skip[http.CanonicalHeaderKey(pol.Auth.APIKey.Header)] = true
		}
	}
	for _, name := range pol.Headers.Forward {
		name = http.CanonicalHeaderKey(name)
		if vs := r.Header.Values(name); len(vs) > 0 && !skip[name] {
			h[name] = vs
		}
	}
	if pol.Headers.ForwardCredentials {
		for _, name := range credentials {
			if vs := r.Header.Values(name); len(vs) > 0 && !skip[name] {
				h[name] = vs
			}
		}
	}
	return h
}

// traceparent continues the client's trace, or starts one.
func traceparent(r *http.Request) string {
	if tp := r.Header.Get("Traceparent"); message.ValidTraceparent(tp) {
		return tp
	}
	return message.NewTraceparent()
}
