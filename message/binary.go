package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/causeway/causeway/internal/jsonscan"
	"github.com/nats-io/nats.go"
)

// Header names used on the bus besides the CloudEvents attributes.
const (
	// HeaderMsgID is JetStream's de-duplication header; Causeway sets it to the message id so
	// that a message re-sent within the window is stored once.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderNode names the node that accepted the message.
	HeaderNode = "Causeway-Node"
	// headerPrefix starts every CloudEvents attribute header in the binary content mode.
	headerPrefix = "ce-"
)

// ToNATS encodes the event in the CloudEvents binary mode for NATS: attributes as ce-*
// headers, data as the payload.
func (e *Event) ToNATS(subject string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Header: make(nats.Header, 12), Data: e.Data}
	e.eachAttr(func(name, value string) {
		if value == "" || name == "datacontenttype" {
			return
		}
		m.Header[headerPrefix+name] = []string{encodeHeaderValue(value)}
	})
	m.Header[headerPrefix+"retrycount"] = []string{strconv.Itoa(e.RetryCount)}
	if e.DataContentType != "" {
		m.Header["content-type"] = []string{e.DataContentType}
	}
	m.Header[HeaderMsgID] = []string{e.ID}
	return m
}

// AppendNATSHeader appends to b the NATS header block of the event as ToNATS encodes it
// (the same headers and values, as nats.go would write them), plus the node that accepted
// it when node is not empty. It is for connections that take header blocks as bytes: no
// map is built, and the block is written once.
func (e *Event) AppendNATSHeader(b []byte, node string) []byte {
	b = append(b, "NATS/1.0\r\n"...)
	e.eachAttr(func(name, value string) {
		if value == "" || name == "datacontenttype" {
			return
		}
		b = appendHeaderLine(b, headerPrefix+name, encodeHeaderValue(value))
	})
	b = append(b, headerPrefix+"retrycount: "...)
	b = strconv.AppendInt(b, int64(e.RetryCount), 10)
	b = append(b, "\r\n"...)
	if e.DataContentType != "" {
		b = appendHeaderLine(b, "content-type", e.DataContentType)
	}
	b = appendHeaderLine(b, HeaderMsgID, e.ID)
	if node != "" {
		b = appendHeaderLine(b, HeaderNode, node)
	}
	return append(b, "\r\n"...)
}

// appendHeaderLine appends "name: value\r\n" with the value cleaned as nats.go cleans
// header values: surrounding white space trimmed, line breaks turned into spaces.
func appendHeaderLine(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	value = textproto.TrimString(value)
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' {
			b = append(b, ' ')
		} else {
			b = append(b, c)
		}
	}
	return append(b, "\r\n"...)
}

// EachNATSHeader calls fn with the name and value of each header in a NATS header block,
// in order, without building a map: for readers that want a few headers of many messages.
// The value is trimmed of the spaces after the colon, as nats.go reads it; the status
// line is skipped.
func EachNATSHeader(block []byte, fn func(name, value []byte)) {
	// The first line is "NATS/1.0", perhaps with a status.
	_, rest, ok := bytes.Cut(block, []byte("\r\n"))
	for ok {
		var line []byte
		line, rest, ok = bytes.Cut(rest, []byte("\r\n"))
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || len(name) == 0 {
			continue
		}
		for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
			value = value[1:]
		}
		fn(name, value)
	}
}

// AttributeValue decodes the value of a ce-* header as read by EachNATSHeader.
func AttributeValue(value []byte) string {
	v, err := decodeHeaderValue(string(value))
	if err != nil {
		return string(value)
	}
	return v
}

// AttributeHeader returns the attribute a header name carries ("ce-type" → "type"), or
// false for a header that is not a CloudEvents attribute.
func AttributeHeader(name []byte) ([]byte, bool) {
	return bytes.CutPrefix(name, []byte(headerPrefix))
}

// FromNATS decodes an event stored on the bus in the binary mode.
func FromNATS(h nats.Header, data []byte) (*Event, error) {
	ev := &Event{}
	for name, values := range h {
		if len(values) == 0 {
			continue
		}
		lower := strings.ToLower(name)
		if lower == "content-type" {
			ev.DataContentType = values[0]
			continue
		}
		attr, ok := strings.CutPrefix(lower, headerPrefix)
		if !ok {
			continue
		}
		value, err := decodeHeaderValue(values[0])
		if err != nil {
			return nil, fmt.Errorf("message on the bus: header %s: %w", name, err)
		}
		if err := ev.setAttr(attr, value); err != nil {
			return nil, fmt.Errorf("message on the bus: header %s: %w", name, err)
		}
	}
	if len(data) > 0 {
		ev.Data = json.RawMessage(data)
	}
	return ev, nil
}

// IsHTTPBinary reports whether an HTTP request carries an event in the CloudEvents binary
// content mode, which the CloudEvents HTTP binding recognises by its ce-specversion header.
func IsHTTPBinary(h http.Header) bool { return h.Get("Ce-Specversion") != "" }

// DecodeHTTPBinary decodes an event sent in the CloudEvents HTTP binary content mode:
// attributes in ce-* headers (percent-encoded where needed), the data as the body and its
// media type as Content-Type.
func DecodeHTTPBinary(h http.Header, body []byte) (*Event, error) {
	ev := &Event{}
	var problems FieldErrors
	for name, values := range h {
		attr, ok := strings.CutPrefix(strings.ToLower(name), headerPrefix)
		if !ok || len(values) == 0 {
			continue
		}
		if !validAttrName(attr) {
			problems = append(problems, FieldError{Pointer: "/" + escapePointer(attr), Detail: fmt.Sprintf("header %s: invalid attribute name %q", name, attr)})
			continue
		}
		value, err := url.PathUnescape(values[0])
		if err != nil {
			value = values[0]
		}
		if !utf8.ValidString(value) {
			// The HTTP binding requires this; JSON could not carry the bytes either.
			problems = append(problems, FieldError{Pointer: "/" + attr, Detail: fmt.Sprintf("header %s: value is not valid UTF-8 once percent-decoded", name)})
			continue
		}
		if err := ev.setAttr(attr, value); err != nil {
			problems = append(problems, FieldError{Pointer: "/" + attr, Detail: fmt.Sprintf("header %s: %v", name, err)})
		}
	}
	ev.DataContentType = h.Get("Content-Type")
	// Data is the JSON value itself, without the whitespace around it, as in the structured
	// mode; syntax errors still give offsets in the body as sent.
	trimmed := bytes.TrimSpace(body)
	if !utf8.ValidString(ev.DataContentType) {
		problems = append(problems, FieldError{Pointer: "/datacontenttype", Detail: "Content-Type is not valid UTF-8"})
	} else if i := controlChar(ev.DataContentType); i >= 0 {
		problems = append(problems, FieldError{Pointer: "/datacontenttype", Detail: fmt.Sprintf("Content-Type holds a control character at position %d, which CloudEvents does not allow", i)})
	} else if len(trimmed) > 0 {
		if ev.DataContentType != "" && !IsJSONContentType(ev.DataContentType) {
			problems = append(problems, FieldError{Pointer: "/datacontenttype", Detail: fmt.Sprintf("Content-Type %q is not JSON: Causeway messages carry JSON data checked against their MessageType", ev.DataContentType)})
		} else if !jsonscan.Valid(body) {
			return nil, syntaxError(json.Unmarshal(body, new(any)), body)
		} else if !isJSONNull(trimmed) {
			// JSON null is no data, as in the structured mode. A copy, as there: the event
			// must not change with the body, which a server may reuse.
			ev.Data = append(json.RawMessage(nil), trimmed...)
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, problems
	}
	return ev, nil
}

// encodeHeaderValue protects what a NATS header would not carry unchanged: the client trims
// leading and trailing white space. '%' and the spaces at either end are percent-encoded, so
// every value comes back exactly as it was sent; values without them (nearly all) are
// returned as they are.
func encodeHeaderValue(v string) string {
	if v == "" || (!strings.Contains(v, "%") && v[0] != ' ' && v[len(v)-1] != ' ') {
		return v
	}
	v = strings.ReplaceAll(v, "%", "%25")
	lead := len(v) - len(strings.TrimLeft(v, " "))
	trail := len(v) - len(strings.TrimRight(v, " "))
	if lead == len(v) {
		return strings.Repeat("%20", len(v))
	}
	return strings.Repeat("%20", lead) + v[lead:len(v)-trail] + strings.Repeat("%20", trail)
}

// decodeHeaderValue reverses encodeHeaderValue.
func decodeHeaderValue(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	return url.PathUnescape(v)
}

// Attribute returns the decoded value of one CloudEvents attribute from the headers of a
// message on the bus, for readers that need a single attribute without decoding the event.
func Attribute(h nats.Header, name string) string {
	v, err := decodeHeaderValue(h.Get(headerPrefix + name))
	if err != nil {
		return h.Get(headerPrefix + name)
	}
	return v
}
