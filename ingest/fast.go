package ingest

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Path is where the endpoint takes messages.
const Path = "/v1/messages"

// ServeFast serves, on the lean listener (fasthttp), the ingestion requests that need
// nothing of net/http's request, before one is built for them: POST /v1/messages with no
// query, a CloudEvents structured or batch Content-Type without parameters, no
// Content-Encoding, and messages that are all accepted. It reports whether it served the
// request. Anything else, a refusal included, returns false before anything is published,
// and the general path (ServeHTTP) handles the request from the start, with the same
// answer it always gives. Building the net/http request (its URL, a copy of every header,
// the answer's header map) was about a tenth of a node's CPU per single message
// (docs/performance.md).
func (h *Handler) ServeFast(c *fasthttp.RequestCtx) bool {
	if !c.IsPost() || string(c.RequestURI()) != Path {
		return false
	}
	hdr := &c.Request.Header
	if len(hdr.Peek("Content-Encoding")) > 0 {
		return false
	}
	var md mode
	switch string(hdr.ContentType()) {
	case ContentTypeStructured:
		md = modeStructured
	case ContentTypeBatch:
		md = modeBatch
	default:
		return false
	}
	start := time.Now()
	raw := c.Request.Body()
	if limit, _ := h.limit(md); int64(len(raw)) > limit || hdr.ContentLength() < 0 {
		return false
	}
	// The request's buffer is the server's, reused for the next request, while a publish
	// that is given up may still hold its messages: decoding copies every attribute and the
	// data out of the body (TestDecodedEventsOwnTheirBytes, package message), so nothing
	// of the messages points into it.
	body := raw
	var traceparent, tracestate string
	if tp := hdr.Peek("Traceparent"); len(tp) > 0 {
		traceparent, tracestate = string(tp), string(hdr.Peek("Tracestate"))
	}
	events, rej := h.parse(md, body, nil, traceparent, tracestate)
	if rej != nil {
		return false
	}
	h.metrics.fast.Inc()
	ids, p := h.send(context.Background(), events)
	if p != nil {
		status, problemBody := p.Encode(Path)
		c.SetStatusCode(status)
		c.Response.Header.SetContentType("application/problem+json")
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

// contentLength is the Content-Length header's value for a body of n bytes.
func contentLength(n int) []string { return []string{strconv.Itoa(n)} }
