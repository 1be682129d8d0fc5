package message_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/causeway/causeway/message"
)

// fullEventJSON sets every attribute Causeway knows by name, and extension attributes of
// each JSON type CloudEvents allows for them (string, boolean, integer).
const fullEventJSON = `{
	"specversion": "1.0",
	"id": "01HXYZ0000000000000000000A",
	"source": "/erp/orders",
	"type": "com.acme.order.created",
	"subject": "order/42",
	"time": "2024-05-06T07:08:09.123456789+02:00",
	"datacontenttype": "application/json; charset=utf-8",
	"dataschema": "https://schemas.acme.example/order/v1.json",
	"kind": "retry",
	"retrycount": 3,
	"correlationid": "corr-7",
	"causationid": "cause-6",
	"target": "sap",
	"operation": "createOrder",
	"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	"tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
	"region": "eu-west-1",
	"urgent": true,
	"archived": false,
	"priority": 5,
	"delta": -12,
	"data": {"orderId":42,"lines":[{"sku":"A-1","qty":2}]}
}`

// fullEvent is what fullEventJSON decodes to.
func fullEvent() *message.Event {
	return &message.Event{
		ID:              "01HXYZ0000000000000000000A",
		Source:          "/erp/orders",
		SpecVersion:     "1.0",
		Type:            "com.acme.order.created",
		Subject:         "order/42",
		Time:            mustTime("2024-05-06T05:08:09.123456789Z"),
		DataContentType: "application/json; charset=utf-8",
		DataSchema:      "https://schemas.acme.example/order/v1.json",
		Kind:            message.KindRetry,
		RetryCount:      3,
		CorrelationID:   "corr-7",
		CausationID:     "cause-6",
		Target:          "sap",
		Operation:       "createOrder",
		TraceParent:     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState:      "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		Extensions: map[string]string{
			"region":   "eu-west-1",
			"urgent":   "true",
			"archived": "false",
			"priority": "5",
			"delta":    "-12",
		},
		Data: json.RawMessage(`{"orderId":42,"lines":[{"sku":"A-1","qty":2}]}`),
	}
}

func TestDecodeStructured(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		prefix string
		want   *message.Event
	}{
		{name: "full event", body: fullEventJSON, want: fullEvent()},
		{
			// The prefix only locates problems; it must not change a good event.
			name: "full event in a batch position", body: fullEventJSON, prefix: "/7", want: fullEvent(),
		},
		{name: "empty object", body: `{}`, want: &message.Event{}},
		{name: "surrounding whitespace", body: "\r\n\t {\"id\":\"a\"} \n", want: &message.Event{ID: "a"}},
		{name: "data array", body: `{"data":[1,"two",null]}`, want: &message.Event{Data: json.RawMessage(`[1,"two",null]`)}},
		{name: "data string", body: `{"data":"hello"}`, want: &message.Event{Data: json.RawMessage(`"hello"`)}},
		{name: "data number", body: `{"data":-12.5e3}`, want: &message.Event{Data: json.RawMessage(`-12.5e3`)}},
		{name: "data boolean", body: `{"data":false}`, want: &message.Event{Data: json.RawMessage(`false`)}},
		{name: "data empty object", body: `{"data":{}}`, want: &message.Event{Data: json.RawMessage(`{}`)}},
		{
			// JSON null is "no data", not the data null: FillDefaults must then not invent a
			// content type, and MarshalJSON must not write a data member.
			name: "data null is no data", body: `{"id":"a","data":null}`, want: &message.Event{ID: "a"},
		},
		{
			name: "data_base64 holding JSON",
			body: `{"data_base64":"eyJvcmRlcklkIjo0Mn0="}`,
			want: &message.Event{Data: json.RawMessage(`{"orderId":42}`)},
		},
		{
			name: "data_base64 holding a JSON string",
			body: `{"data_base64":"ImhpIg=="}`,
			want: &message.Event{Data: json.RawMessage(`"hi"`)},
		},
		{
			// A producer that writes every member, with the unused one null, sends one payload.
			name: "data null beside data_base64", body: `{"data":null,"data_base64":"WzFd"}`,
			want: &message.Event{Data: json.RawMessage(`[1]`)},
		},
		{name: "data_base64 null is no data", body: `{"data_base64":null}`, want: &message.Event{}},
		{
			// Base64 of "null" is no data, as data null is: the structured format written
			// back would otherwise say "data":null and decode to an event without data.
			name: "data_base64 holding null", body: `{"data_base64":"bnVsbA=="}`, want: &message.Event{},
		},
		{name: "data_base64 holding padded null", body: `{"data_base64":"IG51bGwg"}`, want: &message.Event{}},
		{
			// Data is the JSON value itself, as when it arrives in the data member.
			name: "data_base64 with whitespace around JSON", body: `{"data_base64":"IHsiYSI6MX0K"}`,
			want: &message.Event{Data: json.RawMessage(`{"a":1}`)},
		},
		{name: "data beside data_base64 null", body: `{"data":1,"data_base64":null}`, want: &message.Event{Data: json.RawMessage(`1`)}},
		{name: "retrycount as a string", body: `{"kind":"retry","retrycount":"2"}`, want: &message.Event{Kind: "retry", RetryCount: 2}},
		{name: "retrycount zero", body: `{"kind":"original","retrycount":0}`, want: &message.Event{Kind: "original"}},
		{name: "time in UTC", body: `{"time":"2024-01-02T03:04:05Z"}`, want: &message.Event{Time: mustTime("2024-01-02T03:04:05Z")}},
		{name: "time with offset", body: `{"time":"2024-01-02T03:04:05-05:30"}`, want: &message.Event{Time: mustTime("2024-01-02T08:34:05Z")}},
		{name: "time with fraction", body: `{"time":"2024-01-02T03:04:05.5Z"}`, want: &message.Event{Time: mustTime("2024-01-02T03:04:05.5Z")}},
		{
			name: "escaped strings",
			body: `{"subject":"a\"b\\c\u00e9 ","myext":"\ud83d\ude00"}`,
			want: &message.Event{Subject: "a\"b\\cé ", Extensions: map[string]string{"myext": "😀"}},
		},
		{name: "extension made of digits", body: `{"x1":"a","9":"b"}`, want: &message.Event{Extensions: map[string]string{"x1": "a", "9": "b"}}},
		{
			// An empty extension value cannot be told apart from an absent one by MarshalJSON
			// or ToNATS, which skip empty attributes; the decoder treats it as absent, as it
			// does for every other attribute, so that codecs agree.
			name: "empty extension is absent", body: `{"myext":"","subject":""}`, want: &message.Event{},
		},
		{name: "largest integer extension", body: `{"big":9223372036854775807}`, want: &message.Event{Extensions: map[string]string{"big": "9223372036854775807"}}},
		{name: "duplicate member, last wins", body: `{"id":"a","id":"b"}`, want: &message.Event{ID: "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := message.DecodeStructured([]byte(tt.body), tt.prefix)
			if err != nil {
				t.Fatalf("DecodeStructured: %v", err)
			}
			assertEvent(t, got, tt.want)
		})
	}
}

func TestDecodeStructuredFieldErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		prefix string
		want   []wantProblem
	}{
		{name: "upper-case name", body: `{"Source":"/x"}`, want: []wantProblem{{"/Source", `invalid attribute name "Source"`}}},
		{name: "dash in name", body: `{"my-ext":"x"}`, want: []wantProblem{{"/my-ext", `invalid attribute name "my-ext"`}}},
		{name: "underscore in name", body: `{"my_ext":"x"}`, want: []wantProblem{{"/my_ext", "invalid attribute name"}}},
		{name: "non-ASCII name", body: `{"café":"x"}`, want: []wantProblem{{"/café", "invalid attribute name"}}},
		{name: "empty name", body: `{"":"x"}`, want: []wantProblem{{"/", "invalid attribute name"}}},
		{name: "name too long", body: `{"` + strings.Repeat("a", 65) + `":"x"}`, want: []wantProblem{{"/" + strings.Repeat("a", 65), "invalid attribute name"}}},
		{
			// RFC 6901 escapes "~" as "~0" and "/" as "~1", so a client can find the member.
			name: "pointer escaping", body: `{"a/b~c":"x"}`, want: []wantProblem{{"/a~1b~0c", "invalid attribute name"}},
		},
		{name: "object-valued attribute", body: `{"source":{"uri":"/x"}}`, want: []wantProblem{{"/source", "must be a string, a boolean or an integer"}}},
		{name: "array-valued extension", body: `{"tags":["a","b"]}`, want: []wantProblem{{"/tags", "must be a string, a boolean or an integer"}}},
		{name: "null-valued attribute", body: `{"subject":null}`, want: []wantProblem{{"/subject", "must be a string, a boolean or an integer"}}},
		{name: "fractional number", body: `{"priority":1.5}`, want: []wantProblem{{"/priority", "must be a string, a boolean or an integer"}}},
		{name: "exponent number", body: `{"priority":1e3}`, want: []wantProblem{{"/priority", "must be a string, a boolean or an integer"}}},
		{name: "integer beyond 64 bits", body: `{"priority":99999999999999999999}`, want: []wantProblem{{"/priority", "must be a string, a boolean or an integer"}}},
		{name: "time not a timestamp", body: `{"time":"yesterday"}`, want: []wantProblem{{"/time", "RFC 3339"}}},
		{name: "time with a space", body: `{"time":"2024-01-02 03:04:05Z"}`, want: []wantProblem{{"/time", "RFC 3339"}}},
		{name: "time without zone", body: `{"time":"2024-01-02T03:04:05"}`, want: []wantProblem{{"/time", "RFC 3339"}}},
		{name: "time month 13", body: `{"time":"2024-13-02T03:04:05Z"}`, want: []wantProblem{{"/time", "RFC 3339"}}},
		{name: "time as a number", body: `{"time":1714979289}`, want: []wantProblem{{"/time", "RFC 3339"}}},
		{name: "specversion 0.3", body: `{"specversion":"0.3"}`, want: []wantProblem{{"/specversion", `specversion "0.3" is not supported`}}},
		{name: "specversion as a number", body: `{"specversion":1}`, want: []wantProblem{{"/specversion", "not supported"}}},
		{name: "specversion empty", body: `{"specversion":""}`, want: []wantProblem{{"/specversion", "not supported"}}},
		{name: "kind unknown", body: `{"kind":"replay"}`, want: []wantProblem{{"/kind", `got "replay"`}}},
		{name: "kind upper case", body: `{"kind":"Retry"}`, want: []wantProblem{{"/kind", `got "Retry"`}}},
		{name: "kind empty", body: `{"kind":""}`, want: []wantProblem{{"/kind", `got ""`}}},
		{name: "retrycount negative", body: `{"retrycount":-1}`, want: []wantProblem{{"/retrycount", "non-negative integer"}}},
		{name: "retrycount non-numeric", body: `{"retrycount":"three"}`, want: []wantProblem{{"/retrycount", "non-negative integer"}}},
		{name: "retrycount boolean", body: `{"retrycount":true}`, want: []wantProblem{{"/retrycount", "non-negative integer"}}},
		{name: "retrycount fractional string", body: `{"retrycount":"1.0"}`, want: []wantProblem{{"/retrycount", "non-negative integer"}}},
		{name: "data and data_base64", body: `{"data":{},"data_base64":"e30="}`, want: []wantProblem{{"/data_base64", "not both"}}},
		{name: "data_base64 not base64", body: `{"data_base64":"not base64!"}`, want: []wantProblem{{"/data_base64", "not valid base64"}}},
		{name: "data_base64 not a string", body: `{"data_base64":123}`, want: []wantProblem{{"/data_base64", "must be a base64 string"}}},
		{name: "data_base64 not JSON", body: `{"data_base64":"aGVsbG8gd29ybGQ="}`, want: []wantProblem{{"/data_base64", "must hold JSON"}}},
		{
			name: "prefixed pointer", body: `{"kind":"x"}`, prefix: "/3",
			want: []wantProblem{{"/3/kind", "kind must be"}},
		},
		{
			// Every problem is reported at once, ordered by pointer, so that a producer can
			// fix a message in one round trip and reports are stable.
			name: "several problems at once",
			body: `{"time":"soon","retrycount":-4,"kind":"again","My-Ext":1,"data":1,"data_base64":"MQ==","source":[],"id":"ok"}`,
			want: []wantProblem{
				{"/My-Ext", "invalid attribute name"},
				{"/data_base64", "not both"},
				{"/kind", "kind must be"},
				{"/retrycount", "non-negative"},
				{"/source", "must be a string"},
				{"/time", "RFC 3339"},
			},
		},
		{
			name:   "several problems in a batch position",
			body:   `{"time":"soon","kind":"again"}`,
			prefix: "/12",
			want:   []wantProblem{{"/12/kind", "kind must be"}, {"/12/time", "RFC 3339"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := message.DecodeStructured([]byte(tt.body), tt.prefix)
			if ev != nil {
				t.Errorf("event = %+v, want nil with an error", ev)
			}
			assertFieldErrors(t, err, tt.want)
		})
	}
}

func TestDecodeStructuredSyntaxErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		offset int64
		msg    string
	}{
		{name: "array", body: `[{"id":"a"}]`, offset: anyOffset, msg: "expected a JSON object, got array"},
		{name: "string", body: `"event"`, offset: anyOffset, msg: "expected a JSON object, got string"},
		{name: "number", body: `42`, offset: anyOffset, msg: "expected a JSON object, got number"},
		{name: "boolean", body: `true`, offset: anyOffset, msg: "expected a JSON object, got bool"},
		{name: "null", body: `null`, offset: -1, msg: "expected a JSON object, got null"},
		{name: "empty body", body: ``, offset: 0, msg: "unexpected end of JSON input"},
		{name: "blank body", body: " \n\t", offset: 3, msg: "unexpected end of JSON input"},
		{name: "trailing comma", body: `{"id":"a",}`, offset: 11, msg: "invalid character '}'"},
		{name: "truncated", body: `{"id":"a"`, offset: 9, msg: "unexpected end of JSON input"},
		{name: "single quotes", body: `{'id':'a'}`, offset: 2, msg: "invalid character '\\''"},
		{name: "trailing garbage", body: `{"id":"a"} x`, offset: 12, msg: "after top-level value"},
		{name: "two objects", body: `{}{}`, offset: 3, msg: "after top-level value"},
		{name: "unquoted value", body: `{"id":abc}`, offset: 7, msg: "invalid character 'a'"},
		{name: "bad escape", body: `{"id":"\q"}`, offset: 9, msg: "invalid character 'q' in string escape code"},
		{name: "control character in string", body: "{\"id\":\"a\x01\"}", offset: 9, msg: "invalid character"},
		{name: "malformed data", body: `{"id":"a","data":{"x":}}`, offset: 23, msg: "invalid character '}'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := message.DecodeStructured([]byte(tt.body), "")
			if ev != nil {
				t.Errorf("event = %+v, want nil with an error", ev)
			}
			assertSyntaxError(t, err, tt.offset, tt.msg)
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []*message.Event
	}{
		{name: "empty array", body: `[]`, want: nil},
		{name: "empty array with whitespace", body: " [ \n ] ", want: nil},
		{name: "one event", body: `[` + fullEventJSON + `]`, want: []*message.Event{fullEvent()}},
		{
			name: "several events in order",
			body: `[{"id":"a","source":"/s","type":"t","data":{"n":1}},{"id":"b","kind":"retry","retrycount":1},{}]`,
			want: []*message.Event{
				{ID: "a", Source: "/s", Type: "t", Data: json.RawMessage(`{"n":1}`)},
				{ID: "b", Kind: "retry", RetryCount: 1},
				{},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := message.DecodeBatch([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if d := eventDiff(got[i], tt.want[i]); d != "" {
					t.Errorf("event %d differs:%s", i, d)
				}
			}
		})
	}
}

func TestDecodeBatchFieldErrors(t *testing.T) {
	good := `{"id":"a","source":"/s","type":"t"}`
	tests := []struct {
		name string
		body string
		want []wantProblem
	}{
		{
			name: "problems in several items",
			body: `[` + good + `,{"kind":"x"},` + good + `,{"time":"bad","Foo":1}]`,
			want: []wantProblem{
				{"/1/kind", "kind must be"},
				{"/3/Foo", "invalid attribute name"},
				{"/3/time", "RFC 3339"},
			},
		},
		{
			name: "items that are not objects",
			body: `[1,` + good + `,"event",null,[],true]`,
			want: []wantProblem{
				{"/0", "expected a JSON object"},
				{"/2", "expected a JSON object"},
				{"/3", "expected a JSON object"},
				{"/4", "expected a JSON object"},
				{"/5", "expected a JSON object"},
			},
		},
		{
			// Problems come in item order, so item 11 follows item 2 although "/11" sorts
			// before "/2" as a string.
			name: "item order beyond ten items",
			body: `[{},{},{"kind":"x"},{},{},{},{},{},{},{},{},{"retrycount":-1}]`,
			want: []wantProblem{{"/2/kind", "kind must be"}, {"/11/retrycount", "non-negative"}},
		},
		{
			name: "mixed shapes and attributes",
			body: `[{"data":1,"data_base64":"MQ=="},"x",{"specversion":"0.3"}]`,
			want: []wantProblem{
				{"/0/data_base64", "not both"},
				{"/1", "expected a JSON object"},
				{"/2/specversion", "not supported"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := message.DecodeBatch([]byte(tt.body))
			if events != nil {
				t.Errorf("events = %v, want nil with an error", events)
			}
			assertFieldErrors(t, err, tt.want)
		})
	}
}

func TestDecodeBatchSyntaxErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		offset int64
		msg    string
	}{
		{name: "object", body: `{"id":"a"}`, offset: anyOffset, msg: "expected a JSON array, got object"},
		{name: "string", body: `"batch"`, offset: anyOffset, msg: "expected a JSON array, got string"},
		{name: "number", body: `7`, offset: anyOffset, msg: "expected a JSON array, got number"},
		{name: "null", body: `null`, offset: anyOffset, msg: "expected a JSON array, got null"},
		{name: "empty body", body: ``, offset: 0, msg: "unexpected end of JSON input"},
		{name: "truncated", body: `[{"id":"a"}`, offset: 11, msg: "unexpected end of JSON input"},
		{name: "malformed item", body: `[{"id":"a"},{"id":}]`, offset: 19, msg: "invalid character '}'"},
		{name: "trailing comma", body: `[{},]`, offset: 5, msg: "invalid character ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := message.DecodeBatch([]byte(tt.body))
			if events != nil {
				t.Errorf("events = %v, want nil with an error", events)
			}
			assertSyntaxError(t, err, tt.offset, tt.msg)
		})
	}
}

func TestFillDefaults(t *testing.T) {
	// now is deliberately not in UTC: stored times must be, whatever the node's zone.
	now := time.Date(2024, 5, 6, 9, 10, 11, 12, time.FixedZone("CEST", 2*60*60))
	given := mustTime("2023-01-01T00:00:00Z")
	tests := []struct {
		name string
		in   message.Event
		// want builds the expected event from the filled one, because a generated id can
		// only be known afterwards.
		want func(ev *message.Event) message.Event
	}{
		{
			name: "empty event",
			in:   message.Event{},
			want: func(ev *message.Event) message.Event {
				return message.Event{ID: ev.ID, Time: now, SpecVersion: "1.0", Kind: "original", CorrelationID: ev.ID}
			},
		},
		{
			// A producer continuing a transaction keeps its correlation id, and nothing it
			// set is overwritten.
			name: "given attributes kept",
			in: message.Event{
				ID: "given-id", Time: given, SpecVersion: "1.0", Kind: "retry", RetryCount: 2,
				CorrelationID: "corr-1", DataContentType: "application/cloudevents+json", Data: json.RawMessage(`{}`),
			},
			want: func(*message.Event) message.Event {
				return message.Event{
					ID: "given-id", Time: given, SpecVersion: "1.0", Kind: "retry", RetryCount: 2,
					CorrelationID: "corr-1", DataContentType: "application/cloudevents+json", Data: json.RawMessage(`{}`),
				}
			},
		},
		{
			name: "correlation id defaults to a given id",
			in:   message.Event{ID: "given-id"},
			want: func(*message.Event) message.Event {
				return message.Event{ID: "given-id", Time: now, SpecVersion: "1.0", Kind: "original", CorrelationID: "given-id"}
			},
		},
		{
			name: "data without a content type is JSON",
			in:   message.Event{Data: json.RawMessage(`[1]`)},
			want: func(ev *message.Event) message.Event {
				return message.Event{
					ID: ev.ID, Time: now, SpecVersion: "1.0", Kind: "original", CorrelationID: ev.ID,
					DataContentType: "application/json", Data: json.RawMessage(`[1]`),
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.in
			ev.FillDefaults(now)
			if ev.ID == "" {
				t.Fatal("FillDefaults left the id empty")
			}
			want := tt.want(&ev)
			assertEvent(t, &ev, &want)
			if ev.Time.Location() != time.UTC {
				t.Errorf("time location = %v, want UTC", ev.Time.Location())
			}
			// Only source and type, which no default can supply, may still be missing.
			assertFieldErrors(t, ev.Check(""), []wantProblem{{"/source", "missing"}, {"/type", "missing"}})
		})
	}
}

// TestFillDefaultsIDs checks that generated ids are ULIDs that increase, so that ids sort in
// the order the platform accepted the messages even within one millisecond.
func TestFillDefaultsIDs(t *testing.T) {
	now := time.Now()
	prev := ""
	for i := range 2000 {
		var ev message.Event
		ev.FillDefaults(now)
		if len(ev.ID) != 26 {
			t.Fatalf("id %q has %d characters, want 26", ev.ID, len(ev.ID))
		}
		if _, err := ulid.ParseStrict(ev.ID); err != nil {
			t.Fatalf("id %q is not a ULID: %v", ev.ID, err)
		}
		if ev.ID <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, ev.ID, prev)
		}
		if ev.CorrelationID != ev.ID {
			t.Fatalf("correlationid = %q, want the id %q", ev.CorrelationID, ev.ID)
		}
		prev = ev.ID
	}
}

func TestCheck(t *testing.T) {
	valid := func() message.Event {
		return message.Event{
			ID: "a", Source: "/s", Type: "t", SpecVersion: "1.0", Kind: "original",
			DataContentType: "application/json", Data: json.RawMessage(`{}`),
		}
	}
	tests := []struct {
		name   string
		modify func(*message.Event)
		prefix string
		want   []wantProblem
	}{
		{name: "valid", modify: func(*message.Event) {}},
		{name: "retry with retries", modify: func(e *message.Event) { e.Kind, e.RetryCount = "retry", 4 }},
		{name: "no content type", modify: func(e *message.Event) { e.DataContentType = "" }},
		{name: "JSON with charset", modify: func(e *message.Event) { e.DataContentType = "Application/JSON; charset=utf-8" }},
		{name: "text/json", modify: func(e *message.Event) { e.DataContentType = "text/json" }},
		{name: "+json suffix", modify: func(e *message.Event) { e.DataContentType = "application/vnd.acme.order+json;v=1" }},
		{name: "missing source", modify: func(e *message.Event) { e.Source = "" }, want: []wantProblem{{"/source", `"source" is missing`}}},
		{name: "missing type", modify: func(e *message.Event) { e.Type = "" }, want: []wantProblem{{"/type", `"type" is missing`}}},
		{name: "empty id", modify: func(e *message.Event) { e.ID = "" }, want: []wantProblem{{"/id", `"id" must not be empty`}}},
		{name: "text/plain", modify: func(e *message.Event) { e.DataContentType = "text/plain" }, want: []wantProblem{{"/datacontenttype", `"text/plain" is not JSON`}}},
		{name: "XML", modify: func(e *message.Event) { e.DataContentType = "application/xml" }, want: []wantProblem{{"/datacontenttype", "is not JSON"}}},
		{name: "JSON as a parameter only", modify: func(e *message.Event) { e.DataContentType = "text/plain; x=application/json" }, want: []wantProblem{{"/datacontenttype", "is not JSON"}}},
		{name: "original with retries", modify: func(e *message.Event) { e.RetryCount = 1 }, want: []wantProblem{{"/retrycount", "original message has retrycount 0"}}},
		{
			name: "everything missing, in a batch",
			modify: func(e *message.Event) {
				*e = message.Event{Kind: "original", RetryCount: 2, DataContentType: "text/csv"}
			},
			prefix: "/4",
			want: []wantProblem{
				{"/4/source", "missing"},
				{"/4/type", "missing"},
				{"/4/id", "must not be empty"},
				{"/4/datacontenttype", "is not JSON"},
				{"/4/retrycount", "retrycount 0"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := valid()
			tt.modify(&ev)
			problems := ev.Check(tt.prefix)
			if len(tt.want) == 0 {
				if problems != nil {
					t.Fatalf("Check = %v, want no problems", problems)
				}
				return
			}
			assertFieldErrors(t, problems, tt.want)
		})
	}
}

func TestFieldErrorsError(t *testing.T) {
	fe := message.FieldErrors{{Pointer: "/0/kind", Detail: "bad kind"}, {Detail: "no pointer"}, {Pointer: "/1", Detail: "not an object"}}
	if got, want := fe.Error(), "/0/kind: bad kind; no pointer; /1: not an object"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSyntaxErrorError(t *testing.T) {
	tests := []struct {
		err  message.SyntaxError
		want string
	}{
		{message.SyntaxError{Offset: 7, Msg: "boom"}, "malformed JSON at byte 7: boom"},
		{message.SyntaxError{Offset: 0, Msg: "empty body"}, "malformed JSON at byte 0: empty body"},
		{message.SyntaxError{Offset: -1, Msg: "boom"}, "malformed JSON: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// marshalCases are events that MarshalJSON must write as structured JSON that decodes back to
// the same event.
func marshalCases() []struct {
	name string
	ev   *message.Event
} {
	return []struct {
		name string
		ev   *message.Event
	}{
		{"no attributes", &message.Event{}},
		{"full event", fullEvent()},
		{"original", &message.Event{ID: "a", Source: "/s", Type: "t", SpecVersion: "1.0", Kind: "original", CorrelationID: "a"}},
		{"retry count without kind", &message.Event{ID: "a", RetryCount: 5}},
		{"time with offset", &message.Event{Time: time.Date(2024, 2, 29, 23, 59, 59, 999, time.FixedZone("", -7*3600))}},
		{"time in a named zone", &message.Event{Time: time.Date(2024, 2, 29, 23, 59, 59, 0, time.FixedZone("CET", 3600))}},
		{"time with monotonic reading", &message.Event{Time: time.Now()}},
		{"data only", &message.Event{Data: json.RawMessage(`[true,{"a":null}]`)}},
		{"string data", &message.Event{Data: json.RawMessage(`"text"`)}},
		{
			// Values need JSON escaping: quotes, backslashes, control characters, and the
			// characters HTML escaping would touch.
			name: "values needing escapes",
			ev: &message.Event{
				Subject:    " quote \" backslash \\ percent %41 trailing space ",
				Source:     "</script><b>&amp;",
				Extensions: map[string]string{"emoji": "😀 € é", "sep": "\u2028\u2029", "num": "42", "flag": "true"},
			},
		},
		{"many extensions", &message.Event{Extensions: map[string]string{"z": "1", "a": "2", "m9": "3", "m10": "4"}}},
	}
}

func TestMarshalJSONRoundTrip(t *testing.T) {
	for _, tt := range marshalCases() {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.ev.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("MarshalJSON wrote invalid JSON: %s", out)
			}
			got, err := message.DecodeStructured(out, "")
			if err != nil {
				t.Fatalf("DecodeStructured(%s): %v", out, err)
			}
			assertEvent(t, got, tt.ev)
			// encoding/json must call the method too, and write the same bytes: services
			// embed events in larger documents.
			viaPkg, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			again, _ := tt.ev.MarshalJSON()
			if string(viaPkg) != string(out) || string(again) != string(out) {
				t.Errorf("output is not stable:\n%s\n%s\n%s", out, again, viaPkg)
			}
		})
	}
}

func TestMarshalJSONOutput(t *testing.T) {
	tests := []struct {
		name string
		ev   *message.Event
		want string
	}{
		{name: "no attributes", ev: &message.Event{}, want: `{}`},
		{name: "kind alone carries retrycount", ev: &message.Event{Kind: "original"}, want: `{"kind":"original","retrycount":0}`},
		{
			// The order is fixed (context attributes, Causeway's extensions, the others by
			// name, then data) so that the same event is always the same bytes.
			name: "attribute order",
			ev: &message.Event{
				ID: "a", Source: "/s", SpecVersion: "1.0", Type: "t", Subject: "sub",
				Time: mustTime("2024-01-02T03:04:05.5+01:00"), DataContentType: "application/json",
				DataSchema: "https://s", Kind: "retry", RetryCount: 1, CorrelationID: "c", CausationID: "d",
				Target: "tg", Operation: "op", TraceParent: "tp", TraceState: "ts",
				Extensions: map[string]string{"zeta": "z", "alpha": "a"},
				Data:       json.RawMessage(`{"k":1}`),
			},
			want: `{"specversion":"1.0","id":"a","source":"/s","type":"t","subject":"sub","time":"2024-01-02T03:04:05.5+01:00",` +
				`"datacontenttype":"application/json","dataschema":"https://s","kind":"retry","correlationid":"c","causationid":"d",` +
				`"target":"tg","operation":"op","traceparent":"tp","tracestate":"ts","alpha":"a","zeta":"z","retrycount":1,"data":{"k":1}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.ev.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			if string(out) != tt.want {
				t.Errorf("MarshalJSON =\n%s\nwant\n%s", out, tt.want)
			}
		})
	}
}

func TestIsJSONContentType(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"APPLICATION/JSON", true},
		{" application/json ; charset=utf-8", true},
		{"text/json", true},
		{"application/cloudevents+json", true},
		{"application/vnd.api+json; v=2", true},
		{"", false},
		{"text/plain", false},
		{"application/jsonl", false},
		{"application/json-seq", false},
		{"application/xml; x=+json", false},
	}
	for _, tt := range tests {
		if got := message.IsJSONContentType(tt.ct); got != tt.want {
			t.Errorf("IsJSONContentType(%q) = %v, want %v", tt.ct, got, tt.want)
		}
	}
}

// TestControlCharactersRefused checks the CloudEvents rule that String attributes hold no
// control characters, in every decoder: a line break could not survive a bus header.
func TestControlCharactersRefused(t *testing.T) {
	for _, body := range []string{`{"subject":"a\nb"}`, `{"source":"x\u0000"}`, `{"myext":"tab\there"}`, `{"id":"\u0085"}`} {
		_, err := message.DecodeStructured([]byte(body), "")
		var fe message.FieldErrors
		if !errors.As(err, &fe) || !strings.Contains(fe.Error(), "control character") {
			t.Errorf("DecodeStructured(%s) = %v, want a control character error", body, err)
		}
	}
}

// TestNATSHeadersKeepEdgeSpacesAndPercent checks the values a NATS header would alter.
func TestNATSHeadersKeepEdgeSpacesAndPercent(t *testing.T) {
	for _, v := range []string{" lead", "trail ", "  ", "100% sure", "%20 literal", "plain"} {
		ev := &message.Event{ID: "x", Source: "s", Type: "t", Subject: v}
		m := ev.ToNATS("cw.msg.t")
		got, err := message.FromNATS(m.Header, m.Data)
		if err != nil || got.Subject != v || message.Attribute(m.Header, "subject") != v {
			t.Errorf("subject %q came back as %q (%v)", v, got.Subject, err)
		}
	}
}

// TestDecodedEventsOwnTheirBytes: decoded events, in every content mode, point into
// nothing of the body they came from, which the ingestion fast path leaves in the HTTP
// server's buffer for the next request to overwrite.
func TestDecodedEventsOwnTheirBytes(t *testing.T) {
	const single = `{"specversion":"1.0","id":"e-1","source":"shop","type":"order.created","subject":"s","time":"2026-11-24T10:00:00Z","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","ext":"x","data":{"orderId":"A-1"}}`
	decode := map[string]func(body []byte) ([]*message.Event, error){
		"structured": func(body []byte) ([]*message.Event, error) {
			ev, err := message.DecodeStructured(body, "")
			return []*message.Event{ev}, err
		},
		"batch": message.DecodeBatch,
		"binary": func(body []byte) ([]*message.Event, error) {
			h := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {"e-1"}, "Ce-Source": {"shop"}, "Ce-Type": {"order.created"}, "Content-Type": {"application/json"}}
			ev, err := message.DecodeHTTPBinary(h, body)
			return []*message.Event{ev}, err
		},
	}
	bodies := map[string]string{"structured": single, "batch": "[" + single + "," + single + "]", "binary": ` {"orderId":"A-1"} `}
	for name, dec := range decode {
		body := []byte(bodies[name])
		evs, err := dec(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		before := fmt.Sprintf("%+v %s", *evs[0], evs[0].Data)
		for i := range body {
			body[i] = 'x'
		}
		if after := fmt.Sprintf("%+v %s", *evs[0], evs[0].Data); after != before {
			t.Errorf("%s: the event changed with its body:\n%s\n%s", name, before, after)
		}
	}
}
