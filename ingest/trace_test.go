package ingest

import (
	"testing"

	"github.com/causeway/causeway/message"
)

func TestInheritTrace(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	own := &message.Event{TraceParent: "00-11111111111111111111111111111111-2222222222222222-00"}
	bare := &message.Event{}
	inheritTrace([]*message.Event{own, bare}, tp, "vendor=1")
	if bare.TraceParent != tp || bare.TraceState != "vendor=1" {
		t.Errorf("event without trace context did not inherit the request's: %+v", bare)
	}
	if own.TraceParent != "00-11111111111111111111111111111111-2222222222222222-00" {
		t.Errorf("event's own trace context was replaced: %q", own.TraceParent)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
		ev := &message.Event{}
		inheritTrace([]*message.Event{ev}, bad, "")
		if ev.TraceParent != "" {
			t.Errorf("invalid traceparent %q was taken", bad)
		}
	}
}
