package message

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/internal/jsonscan"
)

// DecodeStructured decodes one event in the CloudEvents structured JSON format. It checks
// each attribute's type and syntax but not which attributes are present: Check does that
// after defaults are filled. The pointers in field errors are prefixed by prefix (a batch
// passes "/3").
func DecodeStructured(body []byte, prefix string) (*Event, error) {
	s := jsonscan.NewScanner(body)
	k, err := s.Peek()
	if err != nil {
		return nil, syntaxError(err, body)
	}
	if k != jsonscan.Object {
		return nil, shapeError(&s, k, body, "a JSON object")
	}
	ev, problems, err := decodeEvent(&s)
	if err == nil {
		err = s.End()
	}
	if err != nil {
		return nil, syntaxError(err, body)
	}
	if len(problems) > 0 {
		return nil, prefixed(problems, prefix)
	}
	return ev, nil
}

// DecodeBatch decodes a batch in the CloudEvents JSON batch format: a JSON array of
// structured events. Every item is decoded, so that all problems are reported at once.
func DecodeBatch(body []byte) ([]*Event, error) {
	s := jsonscan.NewScanner(body)
	k, err := s.Peek()
	if err != nil {
		return nil, syntaxError(err, body)
	}
	if k != jsonscan.Array {
		return nil, shapeError(&s, k, body, "a JSON array")
	}
	if err := s.EnterArray(); err != nil {
		return nil, syntaxError(err, body)
	}
	// Not nil even for an empty batch, which is an empty slice rather than no answer.
	events := []*Event{}
	var problems FieldErrors
	for i := 0; ; i++ {
		more, err := s.NextElement()
		if err != nil {
			return nil, syntaxError(err, body)
		}
		if !more {
			break
		}
		k, err := s.Peek()
		if err != nil {
			return nil, syntaxError(err, body)
		}
		if k != jsonscan.Object {
			if _, err := s.Skip(); err != nil {
				return nil, syntaxError(err, body)
			}
			problems = append(problems, FieldError{Pointer: itemPointer(i), Detail: "expected a JSON object (a structured CloudEvent)"})
			continue
		}
		ev, fe, err := decodeEvent(&s)
		if err != nil {
			return nil, syntaxError(err, body)
		}
		if len(fe) > 0 {
			problems = append(problems, prefixed(fe, itemPointer(i))...)
			continue
		}
		if problems == nil {
			// Once an item has a problem the batch is refused, so later events are not
			// collected.
			events = append(events, ev)
		}
	}
	// Like encoding/json, which checked the whole body before decoding any of it, report a
	// syntax error anywhere in the body rather than the problems of the items before it.
	if err := s.End(); err != nil {
		return nil, syntaxError(err, body)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return events, nil
}

func itemPointer(i int) string { return "/" + strconv.Itoa(i) }

// prefixed puts prefix before the pointer of every problem. Problems are collected without
// it, so that a valid event in a batch does not cost building its prefix.
func prefixed(problems FieldErrors, prefix string) FieldErrors {
	if prefix != "" {
		for i := range problems {
			problems[i].Pointer = prefix + problems[i].Pointer
		}
	}
	return problems
}

// syntaxError turns an error from decoding JSON into a *SyntaxError. The structured and
// batch decoders use jsonscan; the binary mode still checks its body with encoding/json.
// Both report the same texts and offsets, so clients see the same errors either way.
func syntaxError(err error, body []byte) error {
	var js *jsonscan.SyntaxError
	if errors.As(err, &js) {
		return &SyntaxError{Offset: js.Offset, Msg: js.Msg}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &SyntaxError{Offset: se.Offset, Msg: se.Error()}
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return &SyntaxError{Offset: ute.Offset, Msg: "expected " + expectedShape(ute.Type.String()) + ", got " + ute.Value}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &SyntaxError{Offset: 0, Msg: "empty body"}
	}
	return &SyntaxError{Offset: -1, Msg: err.Error()}
}

func expectedShape(goType string) string {
	switch {
	case strings.HasPrefix(goType, "map"):
		return "a JSON object"
	case strings.HasPrefix(goType, "[]"):
		return "a JSON array"
	}
	return goType
}

// shapeError reports a body whose top-level value, of kind k, at the scanner, is not the
// expected shape. The whole body is checked first, because a syntax error anywhere takes
// precedence. The offset is where encoding/json reported such a mismatch: just inside an
// object or array, or just after a scalar. A null body has no offset, as encoding/json
// accepted it and it was refused only afterwards.
func shapeError(s *jsonscan.Scanner, k jsonscan.Kind, body []byte, want string) error {
	start := s.Offset()
	raw, err := s.Skip()
	if err == nil {
		err = s.End()
	}
	if err != nil {
		return syntaxError(err, body)
	}
	if k == jsonscan.Null {
		return &SyntaxError{Offset: -1, Msg: "expected " + want + ", got null"}
	}
	offset := start + len(raw)
	if k == jsonscan.Object || k == jsonscan.Array {
		offset = start + 1
	}
	return &SyntaxError{Offset: int64(offset), Msg: "expected " + want + ", got " + k.String()}
}

// decodeEvent reads the structured event at the scanner, an object, visiting its members
// once. It returns the event, or the attribute problems with pointers relative to the event
// ("/time"), or an error when the JSON itself is malformed.
//
// A member that repeats a name replaces the earlier one, as in the map encoding/json built
// (the last value wins): the earlier one's problem is dropped, an empty extension removes
// the value set before, and data and data_base64 are judged by their last value.
func decodeEvent(s *jsonscan.Scanner) (*Event, FieldErrors, error) {
	if err := s.EnterObject(); err != nil {
		return nil, nil, err
	}
	ev := &Event{}
	var problems FieldErrors
	bad := func(name, format string, args ...any) {
		problems = append(problems, FieldError{Pointer: "/" + escapePointer(name), Detail: fmt.Sprintf(format, args...)})
	}
	var data, dataBase64 []byte
	for {
		key, more, err := s.NextMember()
		if err != nil {
			return nil, nil, err
		}
		if !more {
			break
		}
		value, err := s.Skip()
		if err != nil {
			return nil, nil, err
		}
		name := memberName(key)
		if len(problems) > 0 {
			problems = dropProblem(problems, "/"+escapePointer(name))
		}
		switch name {
		case "data":
			data = value
			continue
		case "data_base64":
			dataBase64 = value
			continue
		}
		if !validAttrName(name) {
			bad(name, "invalid attribute name %q: CloudEvents attribute names are lower-case letters and digits only", name)
			continue
		}
		str, ok := scalarString(value)
		if !ok {
			bad(name, "attribute %q must be a string, a boolean or an integer", name)
			continue
		}
		if str == "" && ev.Extensions != nil {
			// setAttr ignores an empty extension; here it must also undo an earlier
			// member of the same name.
			delete(ev.Extensions, name)
		}
		if err := ev.setAttr(name, str); err != nil {
			bad(name, "%v", err)
		}
	}
	if len(ev.Extensions) == 0 {
		// Extensions is nil when there are none, even if a repeated member emptied it.
		ev.Extensions = nil
	}
	if data != nil && !isJSONNull(data) {
		// A copy, so that the event does not keep the whole body alive or change with it.
		ev.Data = append(json.RawMessage(nil), data...)
	}
	if dataBase64 != nil && !isJSONNull(dataBase64) {
		if ev.Data != nil {
			bad("data_base64", "an event carries data or data_base64, not both")
		} else if decoded, err := decodeBase64JSON(dataBase64); err != nil {
			bad("data_base64", "%v", err)
		} else if !isJSONNull(decoded) {
			ev.Data = decoded
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, problems, nil
	}
	return ev, nil, nil
}

// dropProblem removes the problem at pointer, which a later member of the same name
// replaces.
func dropProblem(problems FieldErrors, pointer string) FieldErrors {
	return slices.DeleteFunc(problems, func(p FieldError) bool { return p.Pointer == pointer })
}

// memberName returns a member's name. The names of the attributes Causeway knows come from
// constants, so that only extension names cost an allocation.
func memberName(key jsonscan.Key) string {
	if !key.Plain {
		return key.String()
	}
	switch string(key.Raw) {
	case "id":
		return "id"
	case "source":
		return "source"
	case "specversion":
		return "specversion"
	case "type":
		return "type"
	case "subject":
		return "subject"
	case "time":
		return "time"
	case "datacontenttype":
		return "datacontenttype"
	case "dataschema":
		return "dataschema"
	case "data":
		return "data"
	case "data_base64":
		return "data_base64"
	case "kind":
		return "kind"
	case "retrycount":
		return "retrycount"
	case "correlationid":
		return "correlationid"
	case "causationid":
		return "causationid"
	case "target":
		return "target"
	case "operation":
		return "operation"
	case "traceparent":
		return "traceparent"
	case "tracestate":
		return "tracestate"
	}
	return string(key.Raw)
}

// decodeBase64JSON decodes a data_base64 member, a JSON value other than null, into the
// JSON data it carries.
func decodeBase64JSON(value []byte) (json.RawMessage, error) {
	if value[0] != '"' {
		return nil, errors.New("data_base64 must be a base64 string")
	}
	b, err := base64.StdEncoding.DecodeString(jsonscan.Unquote(value[1 : len(value)-1]))
	if err != nil {
		return nil, fmt.Errorf("data_base64 is not valid base64: %v", err)
	}
	if !jsonscan.Valid(b) {
		return nil, errors.New("data_base64 must hold JSON: Causeway messages carry JSON data checked against their MessageType")
	}
	// Data is the JSON value itself, without the whitespace around it, as in the data member.
	return bytes.TrimSpace(b), nil
}

// setAttr assigns one attribute given in its string form, checking its syntax.
func (e *Event) setAttr(name, value string) error {
	if i := controlChar(value); i >= 0 {
		// CloudEvents 1.0 disallows control characters in String attributes, and a line
		// break could not survive a header on the bus anyway.
		return fmt.Errorf("attribute %q holds a control character at position %d, which CloudEvents does not allow", name, i)
	}
	switch name {
	case "data":
		// Data is the payload in every format; as an attribute it would collide with the
		// data member of the structured format.
		return errors.New(`"data" is the event's data, not an attribute`)
	case "id":
		e.ID = value
	case "source":
		e.Source = value
	case "specversion":
		if value != SpecVersion {
			return fmt.Errorf("specversion %q is not supported (only %q)", value, SpecVersion)
		}
		e.SpecVersion = value
	case "type":
		e.Type = value
	case "subject":
		e.Subject = value
	case "time":
		t, err := time.Parse(time.RFC3339Nano, value)
		if err != nil {
			return fmt.Errorf("time %q is not an RFC 3339 timestamp", value)
		}
		e.Time = t
	case "datacontenttype":
		e.DataContentType = value
	case "dataschema":
		e.DataSchema = value
	case "kind":
		if value != KindOriginal && value != KindRetry {
			return fmt.Errorf("kind must be %q or %q, got %q", KindOriginal, KindRetry, value)
		}
		e.Kind = value
	case "retrycount":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return fmt.Errorf("retrycount must be a non-negative integer, got %q", value)
		}
		e.RetryCount = n
	case "correlationid":
		e.CorrelationID = value
	case "causationid":
		e.CausationID = value
	case "target":
		e.Target = value
	case "operation":
		e.Operation = value
	case "traceparent":
		e.TraceParent = value
	case "tracestate":
		e.TraceState = value
	default:
		if value == "" {
			// An empty extension is treated as absent, like every other attribute: the
			// encoders skip empty values, so keeping it would make codecs disagree.
			return nil
		}
		if e.Extensions == nil {
			e.Extensions = make(map[string]string)
		}
		e.Extensions[name] = value
	}
	return nil
}

// Check reports the attributes a message must have once defaults are filled, and the JSON
// content type its data must have. prefix is as for DecodeStructured.
func (e *Event) Check(prefix string) FieldErrors {
	var problems FieldErrors
	if e.Source == "" {
		problems = append(problems, FieldError{Pointer: prefix + "/source", Detail: "required attribute \"source\" is missing or empty"})
	}
	if e.Type == "" {
		problems = append(problems, FieldError{Pointer: prefix + "/type", Detail: "required attribute \"type\" is missing or empty"})
	}
	if e.ID == "" {
		problems = append(problems, FieldError{Pointer: prefix + "/id", Detail: "attribute \"id\" must not be empty"})
	}
	if e.DataContentType != "" && !IsJSONContentType(e.DataContentType) {
		problems = append(problems, FieldError{Pointer: prefix + "/datacontenttype", Detail: fmt.Sprintf("datacontenttype %q is not JSON: Causeway messages carry JSON data checked against their MessageType", e.DataContentType)})
	}
	if e.Kind == KindOriginal && e.RetryCount != 0 {
		problems = append(problems, FieldError{Pointer: prefix + "/retrycount", Detail: "an original message has retrycount 0"})
	}
	return problems
}

// IsJSONContentType reports whether a media type names JSON (application/json or a +json
// suffix), ignoring parameters such as charset.
func IsJSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// MarshalJSON encodes the event in the CloudEvents structured JSON format.
func (e *Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	str := func(name, value string) {
		if value == "" {
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.Quote(name))
		b.WriteByte(':')
		writeJSONString(&b, value)
	}
	rawMember := func(name string, value []byte) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.Quote(name))
		b.WriteByte(':')
		b.Write(value)
	}
	e.eachAttr(func(name, value string) { str(name, value) })
	if e.RetryCount > 0 || e.Kind != "" {
		rawMember("retrycount", strconv.AppendInt(nil, int64(e.RetryCount), 10))
	}
	if e.Data != nil {
		rawMember("data", e.Data)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// eachAttr calls fn for every attribute in its string form except retrycount and data, in a
// stable order: the context attributes first, then Causeway's extensions, then the others
// sorted by name.
func (e *Event) eachAttr(fn func(name, value string)) {
	fn("specversion", e.SpecVersion)
	fn("id", e.ID)
	fn("source", e.Source)
	fn("type", e.Type)
	fn("subject", e.Subject)
	if !e.Time.IsZero() {
		fn("time", e.Time.Format(time.RFC3339Nano))
	}
	fn("datacontenttype", e.DataContentType)
	fn("dataschema", e.DataSchema)
	fn("kind", e.Kind)
	fn("correlationid", e.CorrelationID)
	fn("causationid", e.CausationID)
	fn("target", e.Target)
	fn("operation", e.Operation)
	fn("traceparent", e.TraceParent)
	fn("tracestate", e.TraceState)
	for _, name := range sortedKeys(e.Extensions) {
		fn(name, e.Extensions[name])
	}
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s) // a string always marshals
	b.Write(enc)
}

// scalarString returns the string form of a JSON string, boolean or integer, given the
// value's bytes as the scanner returned them (valid JSON without surrounding whitespace).
func scalarString(v []byte) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		return jsonscan.Unquote(v[1 : len(v)-1]), true
	case 't':
		// A value the scanner accepted that starts with t is true; the constant saves
		// allocating a copy of it.
		return "true", true
	case 'f':
		return "false", true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
			return "", false
		}
		return string(v), true
	}
	return "", false
}

func isJSONNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

func validAttrName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// escapePointer escapes a member name for use in a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// controlChar returns the byte index of the first control character (U+0000–U+001F,
// U+007F–U+009F) in s, or -1.
func controlChar(s string) int {
	for i, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return i
		}
	}
	return -1
}
