package message

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DecodeStructured decodes one event in the CloudEvents structured JSON format. It checks
// each attribute's type and syntax but not which attributes are present: Check does that
// after defaults are filled. The pointers in field errors are prefixed by prefix (a batch
// passes "/3").
func DecodeStructured(body []byte, prefix string) (*Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, syntaxError(err, body)
	}
	if raw == nil {
		return nil, &SyntaxError{Offset: -1, Msg: "expected a JSON object, got null"}
	}
	return fromAttributes(raw, prefix)
}

// DecodeBatch decodes a batch in the CloudEvents JSON batch format: a JSON array of
// structured events. Every item is decoded, so that all problems are reported at once.
func DecodeBatch(body []byte) ([]*Event, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, syntaxError(err, body)
	}
	if items == nil {
		// encoding/json accepts null for a slice; a batch must still be an array.
		return nil, &SyntaxError{Offset: -1, Msg: "expected a JSON array, got null"}
	}
	events := make([]*Event, 0, len(items))
	var problems FieldErrors
	for i, item := range items {
		prefix := "/" + strconv.Itoa(i)
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(item, &raw); err != nil || raw == nil {
			problems = append(problems, FieldError{Pointer: prefix, Detail: "expected a JSON object (a structured CloudEvent)"})
			continue
		}
		ev, err := fromAttributes(raw, prefix)
		var fe FieldErrors
		switch {
		case errors.As(err, &fe):
			problems = append(problems, fe...)
		case err != nil:
			return nil, err
		default:
			events = append(events, ev)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return events, nil
}

func syntaxError(err error, body []byte) error {
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

// fromAttributes turns the members of a structured event into an Event, collecting every
// attribute problem rather than stopping at the first.
func fromAttributes(raw map[string]json.RawMessage, prefix string) (*Event, error) {
	ev := &Event{}
	var problems FieldErrors
	bad := func(name, format string, args ...any) {
		problems = append(problems, FieldError{Pointer: prefix + "/" + escapePointer(name), Detail: fmt.Sprintf(format, args...)})
	}
	var dataBase64 json.RawMessage
	for name, value := range raw {
		switch name {
		case "data":
			if !isJSONNull(value) {
				ev.Data = value
			}
			continue
		case "data_base64":
			dataBase64 = value
			continue
		}
		if !validAttrName(name) {
			bad(name, "invalid attribute name %q: CloudEvents attribute names are lower-case letters and digits only", name)
			continue
		}
		s, ok := scalarString(value)
		if !ok {
			bad(name, "attribute %q must be a string, a boolean or an integer", name)
			continue
		}
		if err := ev.setAttr(name, s); err != nil {
			bad(name, "%v", err)
		}
	}
	if dataBase64 != nil && !isJSONNull(dataBase64) {
		if ev.Data != nil {
			bad("data_base64", "an event carries data or data_base64, not both")
		} else if data, err := decodeBase64JSON(dataBase64); err != nil {
			bad("data_base64", "%v", err)
		} else if !isJSONNull(data) {
			ev.Data = data
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, problems
	}
	return ev, nil
}

func decodeBase64JSON(value json.RawMessage) (json.RawMessage, error) {
	var s string
	if err := json.Unmarshal(value, &s); err != nil {
		return nil, errors.New("data_base64 must be a base64 string")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("data_base64 is not valid base64: %v", err)
	}
	if !json.Valid(b) {
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

// scalarString returns the string form of a JSON string, boolean or integer.
func scalarString(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false
		}
		return s, true
	case 't', 'f':
		return string(v), string(v) == "true" || string(v) == "false"
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
