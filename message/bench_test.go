package message_test

import (
	"testing"

	"github.com/causeway/causeway/message"
)

// orderEvent is a realistic ~600-byte structured event as an ERP sends it to ingestion:
// every attribute a producer typically sets, trace context, and a small order as data.
const orderEvent = `{"specversion":"1.0","id":"01HXZ3K8J6Q9V2M4N7P0R5S8T1","source":"/erp/acme-prod/orders",` +
	`"type":"com.acme.order.created","subject":"order/2024-000042","time":"2024-05-06T07:08:09.123Z",` +
	`"datacontenttype":"application/json",` +
	`"correlationid":"01HXZ3K8J6Q9V2M4N7P0R5S8T0","target":"sap-s4","operation":"createSalesOrder",` +
	`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tenant":"acme",` +
	`"data":{"orderId":"2024-000042","customer":{"id":"C-1007","name":"Globex GmbH"},` +
	`"lines":[{"sku":"A-100","qty":2,"price":"19.90"},{"sku":"B-220","qty":1,"price":"249.00"}],` +
	`"currency":"EUR","total":"288.80"}}`

func BenchmarkDecodeStructured(b *testing.B) {
	body := []byte(orderEvent)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := message.DecodeStructured(body, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchmarkInput keeps the benchmark honest: its input must stay a valid event of about
// the size it claims, or the numbers stop meaning what they say.
func TestBenchmarkInput(t *testing.T) {
	if n := len(orderEvent); n < 550 || n > 650 {
		t.Errorf("orderEvent is %d bytes, want about 600", n)
	}
	ev, err := message.DecodeStructured([]byte(orderEvent), "")
	if err != nil {
		t.Fatal(err)
	}
	if problems := ev.Check(""); problems != nil {
		t.Errorf("orderEvent is not a valid message: %v", problems)
	}
}
