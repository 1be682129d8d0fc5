package message_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/message"
)

// mustTime parses an RFC 3339 timestamp for a test table; a typo in a table is a bug in the
// test, so it panics rather than letting the case pass vacuously.
func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// normalized returns a copy of ev that reflect.DeepEqual can compare field by field. Two
// events are the same when every field is equal, except that times are compared as instants
// (a parsed "+00:00" and "Z" name different locations for the same instant) and a nil and an
// empty extension map both mean "no extensions". Comparing the whole struct, rather than a
// list of fields, makes a field added to Event later take part in every comparison.
func normalized(ev *message.Event) message.Event {
	c := *ev
	c.Time = c.Time.UTC()
	if len(c.Extensions) == 0 {
		c.Extensions = nil
	}
	return c
}

// eventDiff describes how got differs from want, one line per field, or returns "" when the
// events are the same.
func eventDiff(got, want *message.Event) string {
	if got == nil || want == nil {
		if got == want {
			return ""
		}
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	g, w := normalized(got), normalized(want)
	if reflect.DeepEqual(g, w) {
		return ""
	}
	var b strings.Builder
	gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
	for i := range gv.NumField() {
		gf, wf := gv.Field(i).Interface(), wv.Field(i).Interface()
		if reflect.DeepEqual(gf, wf) {
			continue
		}
		name := gv.Type().Field(i).Name
		if name == "Data" {
			// Data is JSON text: printing it as a string is what a reader can compare.
			fmt.Fprintf(&b, "\n  %s: got %q, want %q", name, string(g.Data), string(w.Data))
			continue
		}
		fmt.Fprintf(&b, "\n  %s: got %#v, want %#v", name, gf, wf)
	}
	return b.String()
}

func assertEvent(t *testing.T, got, want *message.Event) {
	t.Helper()
	if d := eventDiff(got, want); d != "" {
		t.Errorf("event differs:%s", d)
	}
}

// wantProblem is one expected field error: its exact pointer, and a fragment its detail must
// contain so that a problem reported for the wrong reason does not pass.
type wantProblem struct {
	pointer string
	detail  string
}

// assertFieldErrors checks that err is a FieldErrors holding exactly the expected problems,
// in the expected order.
func assertFieldErrors(t *testing.T, err error, want []wantProblem) {
	t.Helper()
	var fe message.FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("error = %#v (%v), want FieldErrors", err, err)
	}
	var got, exp []string
	for _, p := range fe {
		got = append(got, p.Pointer)
	}
	for _, p := range want {
		exp = append(exp, p.pointer)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("pointers = %q, want %q (errors: %v)", got, exp, fe)
	}
	for i, p := range want {
		if !strings.Contains(fe[i].Detail, p.detail) {
			t.Errorf("problem %s: detail %q does not mention %q", fe[i].Pointer, fe[i].Detail, p.detail)
		}
	}
}

// anyOffset marks a syntax error whose exact offset encoding/json chooses is not part of the
// contract: only that the error is a SyntaxError and what it says.
const anyOffset = -2

// assertSyntaxError checks that err is a *SyntaxError at the given offset whose message
// mentions msg.
func assertSyntaxError(t *testing.T, err error, offset int64, msg string) {
	t.Helper()
	var se *message.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error = %#v (%v), want *SyntaxError", err, err)
	}
	if offset != anyOffset && se.Offset != offset {
		t.Errorf("offset = %d, want %d (%v)", se.Offset, offset, se)
	}
	if !strings.Contains(se.Error(), msg) {
		t.Errorf("error %q does not mention %q", se.Error(), msg)
	}
	var fe message.FieldErrors
	if errors.As(err, &fe) {
		t.Errorf("a syntax error must not also be FieldErrors: ingestion would answer 422 instead of 400")
	}
}
