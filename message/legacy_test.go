package message

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The structured and batch decoders once used encoding/json: json.Unmarshal into a map of raw
// messages per event. They now walk the body once with internal/jsonscan, and must still
// accept, refuse and report exactly as before. FuzzDecodeMatchesLegacy holds them to that by
// comparing them with the former implementation, kept below unchanged but for its names.

func FuzzDecodeMatchesLegacy(f *testing.F) {
	// The other targets' seeds, and cases where walking members once differs most from a
	// map: repeated names, escaped names that repeat plain ones, invalid UTF-8, and syntax
	// errors after items with problems.
	for _, dir := range []string{"FuzzDecodeStructured", "FuzzDecodeBatch"} {
		for _, seed := range readSeeds(f, filepath.Join("testdata", "fuzz", dir)) {
			f.Add(seed)
		}
	}
	for _, seed := range []string{
		`{"id":"a","id":"b"}`, `{"kind":"bad","kind":"retry"}`, `{"kind":"retry","kind":"bad"}`,
		`{"x":"a","x":""}`, `{"x":"","x":"a"}`, `{"x":[1],"x":"a"}`, `{"x":"a","x":[1]}`,
		`{"Bad":1,"Bad":2}`, `{"\u0069d":"a","id":"b","i\u0064":"c"}`, `{"data":1,"data":null}`,
		`{"data":null,"data":1,"data_base64":"MQ=="}`, `{"data_base64":"MQ==","data_base64":null,"data":2}`,
		`{"time":"x","time":"2024-01-02T03:04:05Z"}`, `{"retrycount":3,"retrycount":"0"}`,
		"{\"\xff\":1,\"\xfe\":2}", "{\"a\xffb\":\"x\",\"a\xfeb\":\"\"}", "{\"s\":\"\xff\"}",
		`{"data_base64":"IHsiYSI6MX0K"}`, `{"data_base64":"\u0049G51bGwg"}`, `{"data_base64":true}`,
		`{"a/b~c":1,"a/b~c":"x"}`, `[{"kind":"x"},1,{"id":}]`, `[{"kind":"x"},{}] x`, `[{}]]`,
		`[null,"x",{"Foo":1},{"id":"a"}]`, `  [ ]  `, `[]`, `null`, ` "x" `, ` 12 `, `{} x`,
		`{"big":9223372036854775808}`, `{"neg":-0}`, `{"n":1.0}`, `{"s":"\ud83d"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeStructured(body, "/5")
		wantEv, wantErr := legacyDecodeStructured(body, "/5")
		if d := resultDiff([]*Event{ev}, err, []*Event{wantEv}, wantErr); d != "" {
			t.Fatalf("DecodeStructured(%q) differs from the encoding/json decoder: %s", body, d)
		}
		events, err := DecodeBatch(body)
		wantEvents, wantErr := legacyDecodeBatch(body)
		if d := resultDiff(events, err, wantEvents, wantErr); d != "" {
			t.Fatalf("DecodeBatch(%q) differs from the encoding/json decoder: %s", body, d)
		}
	})
}

// readSeeds reads the []byte seeds of another fuzz target's corpus.
func readSeeds(f *testing.F, dir string) [][]byte {
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		_, rest, _ := strings.Cut(string(b), "\n")
		lit, ok := strings.CutPrefix(strings.TrimSpace(rest), "[]byte(")
		if !ok {
			f.Fatalf("%s/%s is not a []byte seed", dir, e.Name())
		}
		s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
		if err != nil {
			f.Fatalf("%s/%s: %v", dir, e.Name(), err)
		}
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// resultDiff describes how a decoder's result differs from the expected one, or returns "".
// Errors must be of the same type with the same content; events must be equal field by
// field, with times equal as instants in the same zone offset.
func resultDiff(got []*Event, err error, want []*Event, wantErr error) string {
	if (err == nil) != (wantErr == nil) {
		return fmt.Sprintf("error %v, want %v", err, wantErr)
	}
	if err != nil {
		if reflect.TypeOf(err) != reflect.TypeOf(wantErr) || !reflect.DeepEqual(err, wantErr) {
			return fmt.Sprintf("error %#v, want %#v", err, wantErr)
		}
		return ""
	}
	if (got == nil) != (want == nil) || len(got) != len(want) {
		return fmt.Sprintf("%d events (nil %v), want %d (nil %v)", len(got), got == nil, len(want), want == nil)
	}
	for i := range got {
		g, w := *got[i], *want[i]
		_, gOff := g.Time.Zone()
		_, wOff := w.Time.Zone()
		if !g.Time.Equal(w.Time) || gOff != wOff || g.Time.IsZero() != w.Time.IsZero() {
			return fmt.Sprintf("event %d: time %v, want %v", i, g.Time, w.Time)
		}
		g.Time = w.Time
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("event %d:\n%#v\nwant\n%#v", i, g, w)
		}
	}
	return ""
}

// What follows is the encoding/json implementation as it was, renamed.

func legacyDecodeStructured(body []byte, prefix string) (*Event, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, legacySyntaxError(err, body)
	}
	if raw == nil {
		return nil, &SyntaxError{Offset: -1, Msg: "expected a JSON object, got null"}
	}
	return legacyFromAttributes(raw, prefix)
}

func legacyDecodeBatch(body []byte) ([]*Event, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, legacySyntaxError(err, body)
	}
	if items == nil {
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
		ev, err := legacyFromAttributes(raw, prefix)
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

func legacySyntaxError(err error, body []byte) error {
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

func legacyFromAttributes(raw map[string]json.RawMessage, prefix string) (*Event, error) {
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
		s, ok := legacyScalarString(value)
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
		} else if data, err := legacyDecodeBase64JSON(dataBase64); err != nil {
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

func legacyDecodeBase64JSON(value json.RawMessage) (json.RawMessage, error) {
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
	return bytes.TrimSpace(b), nil
}

func legacyScalarString(v json.RawMessage) (string, bool) {
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

// BenchmarkDecodeBatch decodes a batch of 100 typical events, as ingestion receives them,
// with the decoder and with the former encoding/json one for comparison.
func BenchmarkDecodeBatch(b *testing.B) {
	const event = `{"specversion":"1.0","id":"01HXZ3K8J6Q9V2M4N7P0R5S8T1","source":"/erp/acme-prod/orders",` +
		`"type":"com.acme.order.created","subject":"order/2024-000042","time":"2024-05-06T07:08:09.123Z",` +
		`"datacontenttype":"application/json","correlationid":"01HXZ3K8J6Q9V2M4N7P0R5S8T0",` +
		`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tenant":"acme",` +
		`"data":{"orderId":"2024-000042","lines":[{"sku":"A-100","qty":2,"price":"19.90"}],"total":"288.80"}}`
	body := []byte("[" + strings.TrimSuffix(strings.Repeat(event+",", 100), ",") + "]")
	for _, dec := range []struct {
		name string
		fn   func([]byte) ([]*Event, error)
	}{{"jsonscan", DecodeBatch}, {"legacy", legacyDecodeBatch}} {
		b.Run(dec.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if events, err := dec.fn(body); err != nil || len(events) != 100 {
					b.Fatal(len(events), err)
				}
			}
		})
	}
}
