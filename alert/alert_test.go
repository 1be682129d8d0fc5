package alert

import (
	"encoding/json"
	"flag"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil/deftest"
	"github.com/causeway/causeway/system"
)

var update = flag.Bool("update", false, "rewrite the # want: lines of testdata/*.bad.yaml")

// TestTestdata loads every testdata/*.good.yaml, which must load without problems, and every
// testdata/*.bad.yaml, which must report exactly the problems its "# want:" lines list.
func TestTestdata(t *testing.T) {
	deftest.Run(t, registry(t), *update, nil)
}

// registry has the kinds alert definitions refer to; the full set lives in package kinds,
// which imports this one.
func registry(t *testing.T) *config.Registry {
	t.Helper()
	r := config.NewRegistry()
	for _, register := range []func(*config.Registry) error{system.Register, Register} {
		if err := register(r); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestWebhookFormats(t *testing.T) {
	n := &Notification{ID: "x", Alert: "erp-on-call", State: "firing", Suppressed: 3, Event: Event{Kind: KindDeadLettered, Severity: "high",
		System: "erp", Flow: "ship", Summary: "flow ship: a delivery went to the errors queue", Detail: "HTTP 503"}}
	for format, want := range map[string][]string{
		"json":  {`"alert":"erp-on-call"`, `"severity":"high"`, `"suppressed":3`, `"kind":"dead-lettered"`},
		"slack": {`"text":"[HIGH] flow ship: a delivery went to the errors queue (+3 more since the last notice)\nHTTP 503"`},
		"teams": {`"@type":"MessageCard"`, `"themeColor":"D70000"`, `"name":"System","value":"erp"`, `"title":"[HIGH]`},
	} {
		body, err := webhookBody(format, n)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(body) {
			t.Errorf("%s: not JSON: %s", format, body)
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: %s lacks %s", format, body, w)
			}
		}
	}
	n.State = "resolved"
	if body, _ := webhookBody("teams", n); !strings.Contains(string(body), `"themeColor":"2EB886"`) || !strings.Contains(string(body), "[RESOLVED]") {
		t.Errorf("resolved card: %s", body)
	}
}

func TestRedactURL(t *testing.T) {
	u := "https://hooks.slack.com/services/T0/B0/SECRET"
	if got := redactURL(`Post "`+u+`": dial tcp: connection refused`, u); strings.Contains(got, "SECRET") {
		t.Errorf("the webhook URL is in the error: %s", got)
	}
}
