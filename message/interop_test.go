package message_test

import (
	"encoding/json"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/causeway/causeway/message"
)

// These tests hold Causeway's codecs to the official CloudEvents Go SDK, which producers and
// consumers outside the platform are likely to use: what the SDK writes must decode, and what
// Causeway writes must be a valid CloudEvent to the SDK.

func TestDecodeStructuredReadsSDKEvents(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123000000, time.UTC)
	tests := []struct {
		name  string
		build func(t *testing.T) cloudevents.Event
		want  *message.Event
	}{
		{
			name: "all attributes and extensions",
			build: func(t *testing.T) cloudevents.Event {
				e := cloudevents.New()
				e.SetID("ord-1")
				e.SetSource("/erp/orders")
				e.SetType("com.acme.order.created")
				e.SetSubject("order/42")
				e.SetTime(at)
				e.SetDataSchema("https://schemas.acme.example/order/v1.json")
				e.SetExtension("kind", "retry")
				e.SetExtension("retrycount", 2)
				e.SetExtension("correlationid", "corr-7")
				e.SetExtension("causationid", "cause-6")
				e.SetExtension("target", "sap")
				e.SetExtension("operation", "createOrder")
				e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				e.SetExtension("tracestate", "rojo=00f067aa0ba902b7")
				e.SetExtension("region", "eu-west-1")
				e.SetExtension("urgent", true)
				e.SetExtension("priority", 5)
				if err := e.SetData("application/json", map[string]any{"orderId": 42}); err != nil {
					t.Fatal(err)
				}
				return e
			},
			want: &message.Event{
				ID: "ord-1", Source: "/erp/orders", SpecVersion: "1.0", Type: "com.acme.order.created",
				Subject: "order/42", Time: at, DataContentType: "application/json",
				DataSchema: "https://schemas.acme.example/order/v1.json", Kind: "retry", RetryCount: 2,
				CorrelationID: "corr-7", CausationID: "cause-6", Target: "sap", Operation: "createOrder",
				TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "rojo=00f067aa0ba902b7",
				Extensions: map[string]string{"region": "eu-west-1", "urgent": "true", "priority": "5"},
				Data:       json.RawMessage(`{"orderId":42}`),
			},
		},
		{
			name: "required attributes only",
			build: func(*testing.T) cloudevents.Event {
				e := cloudevents.New()
				e.SetID("a")
				e.SetSource("/s")
				e.SetType("t")
				return e
			},
			want: &message.Event{ID: "a", Source: "/s", SpecVersion: "1.0", Type: "t"},
		},
		{
			// The SDK writes data_base64 when asked to; the bytes are JSON, which is what
			// Causeway accepts.
			name: "base64 data",
			build: func(t *testing.T) cloudevents.Event {
				e := cloudevents.New()
				e.SetID("a")
				e.SetSource("/s")
				e.SetType("t")
				e.DataBase64 = true
				if err := e.SetData("application/json", []byte(`{"orderId":42}`)); err != nil {
					t.Fatal(err)
				}
				return e
			},
			want: &message.Event{
				ID: "a", Source: "/s", SpecVersion: "1.0", Type: "t",
				DataContentType: "application/json", Data: json.RawMessage(`{"orderId":42}`),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.build(t)
			if err := e.Validate(); err != nil {
				t.Fatalf("the SDK event is not valid: %v", err)
			}
			body, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("json.Marshal: %v", err)
			}
			got, err := message.DecodeStructured(body, "")
			if err != nil {
				t.Fatalf("DecodeStructured(%s): %v", body, err)
			}
			assertEvent(t, got, tt.want)
		})
	}
}

func TestSDKReadsMarshalJSON(t *testing.T) {
	accepted := &message.Event{Source: "/erp/orders", Type: "com.acme.order.created", Data: json.RawMessage(`{"orderId":42}`)}
	accepted.FillDefaults(time.Now())

	tests := []struct {
		name string
		ev   *message.Event
	}{
		{name: "full event", ev: fullEvent()},
		{name: "accepted event after defaults", ev: accepted},
		{name: "no data", ev: &message.Event{ID: "a", Source: "/s", SpecVersion: "1.0", Type: "t", Kind: "original", CorrelationID: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := tt.ev.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			var e cloudevents.Event
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("the SDK cannot read %s: %v", body, err)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("the SDK finds %s invalid: %v", body, err)
			}
			ev := tt.ev
			checks := []struct{ attr, got, want string }{
				{"specversion", e.SpecVersion(), ev.SpecVersion},
				{"id", e.ID(), ev.ID},
				{"source", e.Source(), ev.Source},
				{"type", e.Type(), ev.Type},
				{"subject", e.Subject(), ev.Subject},
				{"datacontenttype", e.DataContentType(), ev.DataContentType},
				{"dataschema", e.DataSchema(), ev.DataSchema},
				{"data", string(e.Data()), string(ev.Data)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.attr, c.got, c.want)
				}
			}
			if !e.Time().Equal(ev.Time) {
				t.Errorf("time = %v, want %v", e.Time(), ev.Time)
			}

			// Every extension Causeway wrote must reach the SDK, with its value; the SDK
			// reads JSON numbers and booleans into Go types, compared here in string form.
			wantExt := map[string]string{}
			for name, value := range ev.Extensions {
				wantExt[name] = value
			}
			for name, value := range map[string]string{
				"kind": ev.Kind, "correlationid": ev.CorrelationID, "causationid": ev.CausationID,
				"target": ev.Target, "operation": ev.Operation, "traceparent": ev.TraceParent, "tracestate": ev.TraceState,
			} {
				if value != "" {
					wantExt[name] = value
				}
			}
			if ev.Kind != "" || ev.RetryCount > 0 {
				wantExt["retrycount"] = jsonScalar(t, ev.RetryCount)
			}
			gotExt := map[string]string{}
			for name, value := range e.Extensions() {
				gotExt[name] = jsonScalar(t, value)
			}
			for name, want := range wantExt {
				if got, ok := gotExt[name]; !ok || got != want {
					t.Errorf("extension %s = %q (present %v), want %q", name, got, ok, want)
				}
			}
			for name := range gotExt {
				if _, ok := wantExt[name]; !ok {
					t.Errorf("unexpected extension %s = %q", name, gotExt[name])
				}
			}
		})
	}
}

// jsonScalar gives the string form of an extension value as the SDK holds it: strings as
// themselves, numbers and booleans as their JSON text.
func jsonScalar(t *testing.T, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return string(b)
}
