package platform

import (
	"context"
	"net/http"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// TestCloudEventsSDKClient posts with the official CloudEvents Go SDK's HTTP client in both
// content modes: binary is what the SDKs send by default, structured is the JSON envelope.
func TestCloudEventsSDKClient(t *testing.T) {
	p := runPlatform(t)
	client, err := cloudevents.NewClientHTTP(cloudevents.WithTarget("http://" + p.HTTPAddr() + "/v1/messages"))
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]func(context.Context) context.Context{
		"binary":     cloudevents.WithEncodingBinary,
		"structured": cloudevents.WithEncodingStructured,
	}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			ev := cloudevents.NewEvent()
			ev.SetID("sdk-" + name)
			ev.SetSource("webshop")
			ev.SetType("order.created")
			ev.SetSubject("A-7")
			ev.SetExtension("channel", "web")
			if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{"orderId": "A-7", "items": []any{map[string]any{"sku": "S", "qty": 1}}}); err != nil {
				t.Fatal(err)
			}
			res := client.Send(mode(context.Background()), ev)
			var hr *cehttp.Result
			if !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusAccepted {
				t.Fatalf("send: %v", res)
			}
			// A schema violation is refused whichever mode carries it.
			bad := ev.Clone()
			bad.SetID("sdk-bad-" + name)
			_ = bad.SetData(cloudevents.ApplicationJSON, map[string]any{"orderId": 7})
			res = client.Send(mode(context.Background()), bad)
			if !cloudevents.ResultAs(res, &hr) || hr.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("invalid event: %v", res)
			}
			got := waitMessage(t, p, "sdk-"+name)
			m := got["message"].(map[string]any)
			if m["channel"] != "web" || m["subject"] != "A-7" || m["source"] != "webshop" {
				t.Errorf("attributes lost in %s mode: %v", name, m)
			}
		})
	}
}

func waitMessage(t *testing.T, p *Platform, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := do(t, "GET", "http://"+p.AdminAddr()+"/v1/messages/"+id, "", "")
		if a.status == 200 {
			return a.body
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s not found: %d %s", id, a.status, a.raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
