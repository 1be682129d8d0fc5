package ingest

import (
	"context"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/causeway/causeway/problem"
	"github.com/valyala/fasthttp"
)

// Path is where the endpoint takes messages.
const Path = "/v1/messages"

// ServeFast serves, on the lean listener (fasthttp), the ingestion requests that need
// nothing of net/http's request, before one is built for them: POST /v1/messages with no
// query, a Content-Type of application/cloudevents+json, application/cloudevents-batch+json
// or application/json (structured, or the binary mode with ce-* headers), with or without
// parameters such as a charset, no Content-Encoding, and messages that are all accepted.
// It reports whether it served the request. Anything else, a refusal included, returns
// false before anything is published, and the general path (ServeHTTP) handles the
// request from the start, with the same answer it always gives. Building the net/http
// request (its URL, a copy of every header, the answer's header map) was about a tenth of
// a node's CPU per single message (docs/performance.md).
func (h *Handler) ServeFast(c *fasthttp.RequestCtx) bool {
	if !c.IsPost() || string(c.RequestURI()) != Path {
		return false
	}
	hdr := &c.Request.Header
	if len(hdr.Peek("Content-Encoding")) > 0 {
		return false
	}
	// The modes as mode picks them. A media type with parameters (the charset many clients
	// add) is parsed by the general path's parser; one it cannot parse goes back to the
	// general path, which answers 415.
	var md mode
	mt := string(hdr.ContentType())
	if strings.IndexByte(mt, ';') >= 0 {
		parsed, _, err := mime.ParseMediaType(mt)
		if err != nil {
			return false
		}
		mt = parsed
	}
	switch mt {
	case ContentTypeStructured:
		md = modeStructured
	case ContentTypeBatch:
		md = modeBatch
	case ContentTypeJSON:
		md = modeStructured
		if len(hdr.Peek("Ce-Specversion")) > 0 {
			md = modeBinary
		}
	default:
		return false
	}
	start := time.Now()
	body := c.Request.Body()
	if limit, _ := h.limit(md); int64(len(body)) > limit || hdr.ContentLength() < 0 {
		return false
	}
	// The request's buffer is the server's, reused for the next request, while a publish
	// that is given up may still hold its messages: decoding copies every attribute and the
	// data out of the body, in every mode (TestDecodedEventsOwnTheirBytes, package
	// message), so nothing of the messages points into it.
	var binary http.Header
	if md == modeBinary {
		binary = binaryHeader(hdr)
	}
	var traceparent, tracestate string
	if tp := hdr.Peek("Traceparent"); len(tp) > 0 {
		traceparent, tracestate = string(tp), string(hdr.Peek("Tracestate"))
	}
	events, rej := h.parse(md, body, binary, traceparent, tracestate)
	if rej != nil {
		return false
	}
	h.metrics.fast.Inc()
	ids, p := h.send(context.Background(), events)
	if p != nil {
		status, problemBody := p.Encode(Path)
		c.SetStatusCode(status)
		c.Response.Header.SetContentType(problem.ContentType)
		c.Response.Header.Set("X-Content-Type-Options", "nosniff")
		c.Response.Header.Set("Retry-After", "1")
		c.Response.SetBodyRaw(problemBody)
		return true
	}
	for _, ev := range events {
		h.metrics.accepted(ev.Type)
	}
	answer, ok := acceptedBody(ids)
	if !ok {
		// An id JSON escapes: encoding/json writes the answer, as on the general path.
		answer = jsonBody(accepted{IDs: ids})
	}
	c.SetStatusCode(http.StatusAccepted)
	c.Response.Header.SetContentType("application/json")
	c.Response.Header.SetContentLength(len(answer))
	c.Response.SetBodyRaw(answer)
	h.metrics.modeDuration[md].Observe(time.Since(start).Seconds())
	return true
}

// binaryHeader is what the binary mode's decoding reads of a request's headers: its ce-*
// headers and Content-Type, named as the lean listener's general path names them.
func binaryHeader(hdr *fasthttp.RequestHeader) http.Header {
	h := make(http.Header, 8)
	for k, v := range hdr.All() {
		if len(k) > 3 && (k[0] == 'c' || k[0] == 'C') && (k[1] == 'e' || k[1] == 'E') && k[2] == '-' {
			key := string(k)
			h[key] = append(h[key], string(v))
		}
	}
	h["Content-Type"] = []string{string(hdr.ContentType())}
	return h
}

// acceptedBody is the 202 answer {"ids":[...]}, written without reflection, as
// encoding/json writes it; ok is false when an id holds a character JSON escapes (a
// producer's own id may hold anything).
func acceptedBody(ids []string) (_ []byte, ok bool) {
	size := len(`{"ids":[]}`)
	for _, id := range ids {
		size += len(id) + 3
	}
	body := make([]byte, 0, size)
	body = append(body, `{"ids":[`...)
	for i, id := range ids {
		if !plainJSON(id) {
			return nil, false
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, '"')
		body = append(body, id...)
		body = append(body, '"')
	}
	return append(body, "]}"...), true
}

// plainJSON reports whether s is written in JSON as it is, between quotes, by
// encoding/json: printable ASCII but for the quote, the backslash and <, > and & (which
// it escapes for HTML).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
