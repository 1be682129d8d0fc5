package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/jsonscan"
)

// orderEvent is the ~600-byte structured CloudEvent of message/bench_test.go: the typical
// ingestion input.
const orderEvent = `{"specversion":"1.0","id":"01HXZ3K8J6Q9V2M4N7P0R5S8T1","source":"/erp/acme-prod/orders",` +
	`"type":"com.acme.order.created","subject":"order/2024-000042","time":"2024-05-06T07:08:09.123Z",` +
	`"datacontenttype":"application/json",` +
	`"correlationid":"01HXZ3K8J6Q9V2M4N7P0R5S8T0","target":"sap-s4","operation":"createSalesOrder",` +
	`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tenant":"acme",` +
	`"data":{"orderId":"2024-000042","customer":{"id":"C-1007","name":"Globex GmbH"},` +
	`"lines":[{"sku":"A-100","qty":2,"price":"19.90"},{"sku":"B-220","qty":1,"price":"249.00"}],` +
	`"currency":"EUR","total":"288.80"}}`

// orderData is the data of an order as catalog.Type.Validate decodes it.
const orderData = `{"orderId": "o-1001", "customer": {"email": "ada@example.com"},
 "items": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 1}], "total": 59.90, "status": "new"}`

var batch = []byte("[" + strings.TrimSuffix(strings.Repeat(orderEvent+",", 100), ",") + "]")

func BenchmarkValidate(b *testing.B) {
	for _, in := range []struct {
		name string
		data []byte
	}{{"event", []byte(orderEvent)}, {"batch100", batch}} {
		b.Run(in.name+"/jsonscan", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := jsonscan.Validate(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if !json.Valid(in.data) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkMembers compares visiting an event's members: walking them in place, and what
// message decoding did before, unmarshalling into a map of raw messages.
func BenchmarkMembers(b *testing.B) {
	data := []byte(orderEvent)
	b.Run("jsonscan", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			s := jsonscan.NewScanner(data)
			if err := s.EnterObject(); err != nil {
				b.Fatal(err)
			}
			for {
				_, more, err := s.NextMember()
				if err != nil {
					b.Fatal(err)
				}
				if !more {
					break
				}
				if _, err := s.Skip(); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.End(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDecode compares building the generic value, as schema validation needs it.
func BenchmarkDecode(b *testing.B) {
	for _, in := range []struct {
		name string
		data []byte
	}{{"order", []byte(orderData)}, {"event", []byte(orderEvent)}} {
		b.Run(in.name+"/jsonscan", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jsonscan.Decode(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(in.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				dec := json.NewDecoder(bytes.NewReader(in.data))
				dec.UseNumber()
				var v any
				if err := dec.Decode(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
