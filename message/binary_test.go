package message_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/causeway/causeway/message"
)

// header builds an http.Header the way net/http does for a request, with canonical keys.
func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestIsHTTPBinary(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want bool
	}{
		{name: "ce-specversion", h: header("ce-specversion", "1.0"), want: true},
		{name: "any specversion value", h: header("Ce-Specversion", "0.3"), want: true},
		{name: "structured request", h: header("Content-Type", "application/cloudevents+json"), want: false},
		{name: "other ce headers only", h: header("ce-id", "a", "ce-type", "t"), want: false},
		{name: "empty specversion", h: header("ce-specversion", ""), want: false},
		{name: "no headers", h: http.Header{}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := message.IsHTTPBinary(tt.h); got != tt.want {
				t.Errorf("IsHTTPBinary = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeHTTPBinary(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		body string
		want *message.Event
	}{
		{
			name: "all attributes",
			h: header(
				"ce-specversion", "1.0",
				"ce-id", "ord-1",
				"ce-source", "/erp/orders",
				"ce-type", "com.acme.order.created",
				"ce-subject", "order/42",
				"ce-time", "2024-05-06T07:08:09.5+02:00",
				"ce-dataschema", "https://schemas.acme.example/order/v1.json",
				"ce-kind", "retry",
				"ce-retrycount", "2",
				"ce-correlationid", "corr-7",
				"ce-causationid", "cause-6",
				"ce-target", "sap",
				"ce-operation", "createOrder",
				"ce-traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				"ce-tracestate", "rojo=00f067aa0ba902b7",
				"ce-myext", "hello",
				"Content-Type", "application/json",
				// Headers outside the ce- namespace are transport details, not attributes.
				"Authorization", "Bearer secret",
				"X-Request-Id", "r-1",
			),
			body: `{"orderId":42}`,
			want: &message.Event{
				ID: "ord-1", Source: "/erp/orders", SpecVersion: "1.0", Type: "com.acme.order.created",
				Subject: "order/42", Time: mustTime("2024-05-06T05:08:09.5Z"), DataContentType: "application/json",
				DataSchema: "https://schemas.acme.example/order/v1.json", Kind: "retry", RetryCount: 2,
				CorrelationID: "corr-7", CausationID: "cause-6", Target: "sap", Operation: "createOrder",
				TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "rojo=00f067aa0ba902b7",
				Extensions: map[string]string{"myext": "hello"},
				Data:       json.RawMessage(`{"orderId":42}`),
			},
		},
		{
			// The HTTP binding percent-encodes space, double quote, percent and everything
			// outside printable ASCII; decoders must accept lower-case hex and needless
			// encoding, and must not turn "+" into a space as form decoding would.
			name: "percent-encoded values",
			h: header(
				"ce-specversion", "1.0",
				"ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80",
				"ce-source", "%2Forders%2f42",
				"ce-myext", "caf%c3%a9 %22quoted%22 100%25",
				"ce-time", "2024-05-06T07%3A08%3A09%2B02%3A00",
				"ce-plus", "a+b",
			),
			want: &message.Event{
				SpecVersion: "1.0", Subject: "Euro € 😀", Source: "/orders/42", Time: mustTime("2024-05-06T05:08:09Z"),
				Extensions: map[string]string{"myext": `café "quoted" 100%`, "plus": "a+b"},
			},
		},
		{
			// A stray percent sign is not valid percent-encoding; older senders did not
			// encode it, so the value is kept as sent rather than refused.
			name: "invalid percent-encoding kept as sent",
			h:    header("ce-specversion", "1.0", "ce-myext", "100%", "ce-other", "%zz"),
			want: &message.Event{SpecVersion: "1.0", Extensions: map[string]string{"myext": "100%", "other": "%zz"}},
		},
		{
			// Header names are case-insensitive, and maps built by hand need not be canonical.
			name: "non-canonical header keys",
			h:    http.Header{"ce-specversion": {"1.0"}, "CE-ID": {"a"}, "Ce-MyExt": {"v"}},
			want: &message.Event{SpecVersion: "1.0", ID: "a", Extensions: map[string]string{"myext": "v"}},
		},
		{
			name: "only the first of repeated headers",
			h:    header("ce-specversion", "1.0", "ce-id", "first", "ce-id", "second"),
			want: &message.Event{SpecVersion: "1.0", ID: "first"},
		},
		{
			name: "JSON content type with parameters",
			h:    header("ce-specversion", "1.0", "Content-Type", "application/vnd.acme+json; charset=utf-8"),
			body: `[1,2]`,
			want: &message.Event{SpecVersion: "1.0", DataContentType: "application/vnd.acme+json; charset=utf-8", Data: json.RawMessage(`[1,2]`)},
		},
		{
			// FillDefaults will name it application/json.
			name: "JSON body without a content type",
			h:    header("ce-specversion", "1.0"),
			body: `"text"`,
			want: &message.Event{SpecVersion: "1.0", Data: json.RawMessage(`"text"`)},
		},
		{
			// Data is the JSON value itself, as in the structured mode: the newline that
			// json.Encoder and most tools append must not make the same event differ by
			// the mode it arrived in.
			name: "surrounding whitespace not kept",
			h:    header("ce-specversion", "1.0", "Content-Type", "application/json"),
			body: "\r\n {\"a\":1}\n",
			want: &message.Event{SpecVersion: "1.0", DataContentType: "application/json", Data: json.RawMessage(`{"a":1}`)},
		},
		{
			// A JSON null body is no data, as data null is in the structured mode.
			name: "null body is no data",
			h:    header("ce-specversion", "1.0", "Content-Type", "application/json"),
			body: " null\n",
			want: &message.Event{SpecVersion: "1.0", DataContentType: "application/json"},
		},
		{
			name: "empty body is no data",
			h:    header("ce-specversion", "1.0", "Content-Type", "application/json"),
			want: &message.Event{SpecVersion: "1.0", DataContentType: "application/json"},
		},
		{
			name: "blank body is no data",
			h:    header("ce-specversion", "1.0", "Content-Type", "application/json"),
			body: " \r\n\t",
			want: &message.Event{SpecVersion: "1.0", DataContentType: "application/json"},
		},
		{
			// Without data there is nothing to check the content type against here; Check
			// refuses it later.
			name: "non-JSON content type without a body",
			h:    header("ce-specversion", "1.0", "Content-Type", "text/plain"),
			want: &message.Event{SpecVersion: "1.0", DataContentType: "text/plain"},
		},
		{name: "empty extension is absent", h: header("ce-specversion", "1.0", "ce-myext", ""), want: &message.Event{SpecVersion: "1.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := message.DecodeHTTPBinary(tt.h, []byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeHTTPBinary: %v", err)
			}
			assertEvent(t, got, tt.want)
		})
	}
}

func TestDecodeHTTPBinaryFieldErrors(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		body string
		want []wantProblem
	}{
		{
			name: "text/plain body",
			h:    header("ce-specversion", "1.0", "Content-Type", "text/plain"),
			body: "hello",
			want: []wantProblem{{"/datacontenttype", `Content-Type "text/plain" is not JSON`}},
		},
		{
			// The content type is what is refused, even when the body happens to parse.
			name: "XML content type with a JSON-looking body",
			h:    header("ce-specversion", "1.0", "Content-Type", "application/xml"),
			body: `{"a":1}`,
			want: []wantProblem{{"/datacontenttype", "is not JSON"}},
		},
		{name: "bad specversion", h: header("ce-specversion", "0.3"), want: []wantProblem{{"/specversion", "not supported"}}},
		{name: "bad time", h: header("ce-specversion", "1.0", "ce-time", "now"), want: []wantProblem{{"/time", "header Ce-Time"}}},
		{
			name: "several problems, sorted",
			h: header(
				"ce-specversion", "1.0",
				"ce-time", "tomorrow",
				"ce-retrycount", "-1",
				"ce-kind", "replay",
				"ce-my_ext", "x",
				"Content-Type", "text/csv",
			),
			body: "a,b\n1,2\n",
			want: []wantProblem{
				{"/datacontenttype", "is not JSON"},
				{"/kind", "Ce-Kind"},
				{"/my_ext", "invalid attribute name"},
				{"/retrycount", "non-negative integer"},
				{"/time", "RFC 3339"},
			},
		},
		{name: "empty attribute name", h: header("ce-specversion", "1.0", "ce-", "x"), want: []wantProblem{{"/", "invalid attribute name"}}},
		{
			// The HTTP binding requires percent-decoded bytes that are not UTF-8 to be
			// refused; "%C0%A0" is the spec's own example, an overlong space.
			name: "overlong UTF-8",
			h:    header("ce-specversion", "1.0", "ce-subject", "%C0%A0"),
			want: []wantProblem{{"/subject", "UTF-8"}},
		},
		{name: "invalid UTF-8 in an extension", h: header("ce-specversion", "1.0", "ce-myext", "%FF"), want: []wantProblem{{"/myext", "UTF-8"}}},
		{name: "raw invalid UTF-8", h: header("ce-specversion", "1.0", "ce-myext", "caf\xe9"), want: []wantProblem{{"/myext", "UTF-8"}}},
		{
			name: "invalid UTF-8 in Content-Type",
			h:    header("ce-specversion", "1.0", "Content-Type", "application/json; x=\xff"),
			body: `{}`,
			want: []wantProblem{{"/datacontenttype", "UTF-8"}},
		},
		{
			// "data" is the event's payload in every format, never an attribute: as an
			// extension it would collide with the data member of the structured format.
			name: "ce-data header",
			h:    header("ce-specversion", "1.0", "ce-data", "x"),
			want: []wantProblem{{"/data", "data"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := message.DecodeHTTPBinary(tt.h, []byte(tt.body))
			if ev != nil {
				t.Errorf("event = %+v, want nil with an error", ev)
			}
			assertFieldErrors(t, err, tt.want)
		})
	}
}

func TestDecodeHTTPBinarySyntaxErrors(t *testing.T) {
	tests := []struct {
		name   string
		h      http.Header
		body   string
		offset int64
		msg    string
	}{
		{name: "malformed JSON", h: header("ce-specversion", "1.0", "Content-Type", "application/json"), body: `{"a":}`, offset: 6, msg: "invalid character '}'"},
		{name: "truncated JSON", h: header("ce-specversion", "1.0", "Content-Type", "application/json"), body: `{"a":1`, offset: 6, msg: "unexpected end of JSON input"},
		{name: "text without a content type", h: header("ce-specversion", "1.0"), body: `hello`, offset: 1, msg: "invalid character 'h'"},
		{
			// Offsets count from the start of the body as sent, leading whitespace included.
			name: "offset after leading whitespace", h: header("ce-specversion", "1.0", "Content-Type", "application/json"),
			body: "\n  {\"a\":}", offset: 9, msg: "invalid character '}'",
		},
		{name: "two values", h: header("ce-specversion", "1.0", "Content-Type", "application/json"), body: `{} {}`, offset: 4, msg: "after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := message.DecodeHTTPBinary(tt.h, []byte(tt.body))
			if ev != nil {
				t.Errorf("event = %+v, want nil with an error", ev)
			}
			assertSyntaxError(t, err, tt.offset, tt.msg)
		})
	}
}

func TestNATSRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		ev      *message.Event
	}{
		{name: "full event", subject: "causeway.in.orders", ev: fullEvent()},
		{
			name: "accepted original", subject: "causeway.in.x",
			ev: func() *message.Event {
				ev := &message.Event{Source: "/s", Type: "t", Data: json.RawMessage(`{"a":1}`)}
				ev.FillDefaults(time.Now())
				return ev
			}(),
		},
		{name: "no data", subject: "s", ev: &message.Event{ID: "a", Source: "/s", Type: "t", Kind: "original"}},
		{name: "retry", subject: "causeway.retry.3", ev: &message.Event{ID: "b", Kind: "retry", RetryCount: 3, CausationID: "a"}},
		{name: "non-UTC time", subject: "s", ev: &message.Event{ID: "c", Time: time.Date(2024, 12, 31, 23, 0, 0, 1, time.FixedZone("", -3*3600))}},
		{name: "unicode values", subject: "s", ev: &message.Event{ID: "d", Subject: "Straße 😀", Extensions: map[string]string{"note": "a b%20c"}}},
		{name: "content type without data", subject: "s", ev: &message.Event{ID: "e", DataContentType: "application/json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.ev.ToNATS(tt.subject)
			if m.Subject != tt.subject {
				t.Errorf("subject = %q, want %q", m.Subject, tt.subject)
			}
			// JetStream de-duplicates on this header, so it must be the message id.
			if got := m.Header.Get(message.HeaderMsgID); got != tt.ev.ID {
				t.Errorf("%s = %q, want the id %q", message.HeaderMsgID, got, tt.ev.ID)
			}
			if got := m.Header.Get("ce-retrycount"); got != strconv.Itoa(tt.ev.RetryCount) {
				t.Errorf("ce-retrycount = %q, want %d", got, tt.ev.RetryCount)
			}
			// The binding carries datacontenttype as content-type, never as a ce- header.
			if _, ok := m.Header["ce-datacontenttype"]; ok {
				t.Errorf("ce-datacontenttype header set: %v", m.Header)
			}
			if got := m.Header.Get("content-type"); got != tt.ev.DataContentType {
				t.Errorf("content-type = %q, want %q", got, tt.ev.DataContentType)
			}
			for name, values := range m.Header {
				if len(values) != 1 || values[0] == "" {
					t.Errorf("header %s = %q, want one non-empty value", name, values)
				}
			}
			got, err := message.FromNATS(m.Header, m.Data)
			if err != nil {
				t.Fatalf("FromNATS: %v", err)
			}
			assertEvent(t, got, tt.ev)
			if !got.Time.Equal(tt.ev.Time) {
				t.Errorf("time = %v, want %v", got.Time, tt.ev.Time)
			}
		})
	}
}

func TestFromNATS(t *testing.T) {
	tests := []struct {
		name    string
		h       nats.Header
		data    string
		want    *message.Event
		wantErr string
	}{
		{
			// Headers may be re-cased by tools that republish messages.
			name: "header names in any case",
			h:    nats.Header{"Ce-Id": {"a"}, "CE-SOURCE": {"/s"}, "Content-Type": {"application/json"}, "Nats-Msg-Id": {"a"}, "Causeway-Node": {"n1"}},
			data: `{"x":1}`,
			want: &message.Event{ID: "a", Source: "/s", DataContentType: "application/json", Data: json.RawMessage(`{"x":1}`)},
		},
		{name: "empty payload is no data", h: nats.Header{"ce-id": {"a"}}, want: &message.Event{ID: "a"}},
		{name: "header without values ignored", h: nats.Header{"ce-id": {"a"}, "ce-subject": {}}, want: &message.Event{ID: "a"}},
		{name: "bad kind", h: nats.Header{"ce-kind": {"bogus"}}, wantErr: "header ce-kind"},
		{name: "bad retrycount", h: nats.Header{"ce-retrycount": {"x"}}, wantErr: "header ce-retrycount"},
		{name: "bad time", h: nats.Header{"ce-time": {"x"}}, wantErr: "header ce-time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := message.FromNATS(tt.h, []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromNATS: %v", err)
			}
			assertEvent(t, got, tt.want)
		})
	}
}

// TestAppendNATSHeader checks that the header block written without a map carries what
// ToNATS's map carries, as nats.go would have written it (values trimmed, line breaks
// turned into spaces), that nats.go reads it back to the same event, and that
// EachNATSHeader reads the same headers.
func TestAppendNATSHeader(t *testing.T) {
	sanitize := func(v string) string {
		return strings.NewReplacer("\r", " ", "\n", " ").Replace(strings.Trim(v, " \t\r\n"))
	}
	for _, ev := range []*message.Event{
		fullEvent(),
		{ID: "a", Source: "/s", Type: "t", Kind: "original"},
		{ID: "b", Kind: "retry", RetryCount: 3, CausationID: "a"},
		{ID: "d", Subject: "Straße 😀", Extensions: map[string]string{"note": "a b%20c"}},
		{ID: "e", Subject: "\t padded \t", Source: " lead", Extensions: map[string]string{"lines": "one\r\ntwo\nthree"}},
		{ID: "f", DataContentType: "application/json"},
	} {
		t.Run(ev.ID, func(t *testing.T) {
			want := ev.ToNATS("s").Header
			want.Set(message.HeaderNode, "node-1")
			block := ev.AppendNATSHeader([]byte("prefix"), "node-1")
			if !strings.HasPrefix(string(block), "prefixNATS/1.0\r\n") || !strings.HasSuffix(string(block), "\r\n\r\n") {
				t.Fatalf("block %q: want it appended, from NATS/1.0 to a blank line", block)
			}
			got, err := nats.DecodeHeadersMsg(block[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Errorf("%d headers, want %d: %q", len(got), len(want), block)
			}
			for name, values := range want {
				if g := got.Get(name); g != sanitize(values[0]) {
					t.Errorf("%s = %q, want %q", name, g, sanitize(values[0]))
				}
			}
			seen := 0
			message.EachNATSHeader(block[len("prefix"):], func(name, value []byte) {
				seen++
				if g := got.Get(string(name)); g != string(value) {
					t.Errorf("EachNATSHeader: %s = %q, nats.go reads %q", name, value, g)
				}
			})
			if seen != len(got) {
				t.Errorf("EachNATSHeader saw %d headers, want %d", seen, len(got))
			}
			back, err := message.FromNATS(got, ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			// Spaces around a value survive (they are percent-encoded); tabs and line
			// breaks do not, with either writer.
			if back.ID != ev.ID || back.Source != ev.Source || back.Extensions["note"] != ev.Extensions["note"] {
				t.Errorf("read back %+v, want %+v", back, ev)
			}
		})
	}
}
