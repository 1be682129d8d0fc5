package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
		m.Header[headerPrefix+name] = []string{value}
	})
	m.Header[headerPrefix+"retrycount"] = []string{strconv.Itoa(e.RetryCount)}
	if e.DataContentType != "" {
		m.Header["content-type"] = []string{e.DataContentType}
	}
	m.Header[HeaderMsgID] = []string{e.ID}
	return m
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
		if err := ev.setAttr(attr, values[0]); err != nil {
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
		if err := ev.setAttr(attr, value); err != nil {
			problems = append(problems, FieldError{Pointer: "/" + attr, Detail: fmt.Sprintf("header %s: %v", name, err)})
		}
	}
	ev.DataContentType = h.Get("Content-Type")
	if len(bytes.TrimSpace(body)) > 0 {
		if ev.DataContentType != "" && !IsJSONContentType(ev.DataContentType) {
			problems = append(problems, FieldError{Pointer: "/datacontenttype", Detail: fmt.Sprintf("Content-Type %q is not JSON: Causeway messages carry JSON data checked against their MessageType", ev.DataContentType)})
		} else if !json.Valid(body) {
			return nil, syntaxError(json.Unmarshal(body, new(any)), body)
		} else {
			ev.Data = json.RawMessage(body)
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, problems
	}
	return ev, nil
}
