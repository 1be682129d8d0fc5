package message_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/causeway/causeway/message"
)

// The fuzz targets hold the decoders to the contract the rest of the platform relies on: no
// input panics; an input is either refused with one of the two error types ingestion maps to
// 400 and 422, or accepted as an event that every encoder can carry without loss. Their seed
// corpora live in testdata/fuzz and also run as ordinary tests.

// checkAccepted checks that an accepted event survives MarshalJSON and DecodeStructured, and
// ToNATS and FromNATS, unchanged, and that MarshalJSON writes the same bytes every time.
func checkAccepted(t *testing.T, ev *message.Event) {
	t.Helper()
	out, err := ev.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if !json.Valid(out) {
		t.Fatalf("MarshalJSON wrote invalid JSON: %q", out)
	}
	again, err := message.DecodeStructured(out, "")
	if err != nil {
		t.Fatalf("DecodeStructured of MarshalJSON output %q: %v", out, err)
	}
	if d := eventDiff(again, ev); d != "" {
		t.Fatalf("MarshalJSON round trip changed the event (%q):%s", out, d)
	}
	if out2, _ := again.MarshalJSON(); !bytes.Equal(out, out2) {
		t.Fatalf("MarshalJSON is not stable:\n%q\n%q", out, out2)
	}
	m := ev.ToNATS("causeway.fuzz")
	back, err := message.FromNATS(m.Header, m.Data)
	if err != nil {
		t.Fatalf("FromNATS of ToNATS output %v: %v", m.Header, err)
	}
	if d := eventDiff(back, ev); d != "" {
		t.Fatalf("NATS round trip changed the event:%s", d)
	}
}

// checkRefused checks that a refusal is a *SyntaxError or a non-empty FieldErrors whose
// pointers all match the given pattern, since anything else would reach clients as a 500.
func checkRefused(t *testing.T, err error, pointer *regexp.Regexp) message.FieldErrors {
	t.Helper()
	var se *message.SyntaxError
	if errors.As(err, &se) {
		return nil
	}
	var fe message.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error %#v (%v) is neither *SyntaxError nor FieldErrors", err, err)
	}
	if len(fe) == 0 {
		t.Fatal("empty FieldErrors returned as an error")
	}
	for _, p := range fe {
		if !pointer.MatchString(p.Pointer) {
			t.Fatalf("pointer %q does not match %s", p.Pointer, pointer)
		}
		if p.Detail == "" {
			t.Fatalf("problem at %q has no detail", p.Pointer)
		}
	}
	return fe
}

func FuzzDecodeStructured(f *testing.F) {
	inPrefix := regexp.MustCompile(`^/5/`)
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := message.DecodeStructured(body, "/5")
		if err != nil {
			if ev != nil {
				t.Fatalf("event %+v returned with error %v", ev, err)
			}
			checkRefused(t, err, inPrefix)
			return
		}
		checkAccepted(t, ev)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	itemPointer := regexp.MustCompile(`^/(0|[1-9][0-9]*)(/|$)`)
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := message.DecodeBatch(body)
		var items []json.RawMessage
		isArray := json.Unmarshal(body, &items) == nil && items != nil
		if err != nil {
			if events != nil {
				t.Fatalf("events %v returned with error %v", events, err)
			}
			fe := checkRefused(t, err, itemPointer)
			if fe == nil && isArray {
				t.Fatalf("syntax error %v for a JSON array: item problems must be FieldErrors", err)
			}
			// Problems name real items, in item order.
			last := -1
			for _, p := range fe {
				i, _ := strconv.Atoi(strings.SplitN(p.Pointer, "/", 3)[1])
				if i >= len(items) || i < last {
					t.Fatalf("pointer %q out of range or order (%d items, previous item %d)", p.Pointer, len(items), last)
				}
				last = i
			}
			return
		}
		if !isArray {
			t.Fatalf("accepted a body that is not a JSON array: %q", body)
		}
		if len(events) != len(items) {
			t.Fatalf("got %d events for %d items", len(events), len(items))
		}
		// A batch item must decode exactly as the same event sent alone.
		for i, ev := range events {
			alone, err := message.DecodeStructured(items[i], "/"+strconv.Itoa(i))
			if err != nil {
				t.Fatalf("item %d accepted in a batch but refused alone: %v", i, err)
			}
			if d := eventDiff(ev, alone); d != "" {
				t.Fatalf("item %d differs from the event sent alone:%s", i, d)
			}
			checkAccepted(t, ev)
		}
	})
}

func FuzzDecodeHTTPBinary(f *testing.F) {
	anyPointer := regexp.MustCompile(`^/`)
	f.Fuzz(func(t *testing.T, name, value string, body []byte) {
		// A realistic request, plus one fuzzed header that may add an attribute or replace
		// any of these. The key is used as given, not canonicalised, since the decoder
		// must not depend on how the map was built.
		h := http.Header{
			"Ce-Specversion": {"1.0"},
			"Ce-Id":          {"fuzz-1"},
			"Ce-Source":      {"/fuzz"},
			"Ce-Type":        {"com.acme.fuzz"},
			"Content-Type":   {"application/json"},
		}
		h[name] = []string{value}
		_ = message.IsHTTPBinary(h)
		ev, err := message.DecodeHTTPBinary(h, body)
		if err != nil {
			if ev != nil {
				t.Fatalf("event %+v returned with error %v", ev, err)
			}
			checkRefused(t, err, anyPointer)
			return
		}
		checkAccepted(t, ev)
	})
}
