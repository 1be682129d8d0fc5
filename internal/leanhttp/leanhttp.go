// Package leanhttp holds what the lean HTTP server's two writers share: the platform's
// adaptor for net/http handlers and the gateway's fast lane both put net/http answer
// headers onto fasthttp's response, and must do it alike (ADR 0010, ADR 0013).
package leanhttp

import (
	"net/http"

	"github.com/valyala/fasthttp"
)

// CopyHeader sets an answer's headers on ctx's response as net/http would send them. The
// server frames the answer itself, so Content-Length, Transfer-Encoding and Connection are
// not copied (Connection: close closes the connection after the answer). typed reports
// that the answer has a Content-Type.
func CopyHeader(ctx *fasthttp.RequestCtx, header http.Header) (typed bool) {
	h := &ctx.Response.Header
	for k, vs := range header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			if k == "Connection" && len(vs) > 0 && vs[0] == "close" {
				ctx.SetConnectionClose()
			}
			continue
		case "Content-Type":
			if len(vs) > 0 {
				h.SetContentType(vs[0])
				typed = true
			}
			continue
		}
		for i, v := range vs {
			if i == 0 {
				h.Set(k, v)
			} else {
				h.Add(k, v)
			}
		}
	}
	return typed
}
