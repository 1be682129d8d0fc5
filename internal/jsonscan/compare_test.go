package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/causeway/causeway/internal/jsonscan"
)

// The helpers here compare jsonscan with encoding/json on one input. The table tests and the
// fuzz targets share them, so that every hand-written case is checked as thoroughly as a
// fuzzed one.

// compareValidate checks that Validate accepts exactly what json.Valid accepts and, for
// invalid input, reports the error json.Unmarshal reports: the same text and offset.
func compareValidate(t *testing.T, data []byte) {
	t.Helper()
	err := jsonscan.Validate(data)
	if got, want := err == nil, json.Valid(data); got != want {
		t.Fatalf("Validate(%q) = %v, but json.Valid = %v", data, err, want)
	}
	if got := jsonscan.Valid(data); got != (err == nil) {
		t.Fatalf("Valid(%q) = %v, but Validate = %v", data, got, err)
	}
	if err == nil {
		return
	}
	var v any
	var want *json.SyntaxError
	if !errors.As(json.Unmarshal(data, &v), &want) {
		t.Fatalf("json.Unmarshal(%q) did not fail with a *json.SyntaxError", data)
	}
	var se *jsonscan.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Validate(%q) = %#v, want a *SyntaxError", data, err)
	}
	if se.Msg != want.Error() || se.Offset != want.Offset || se.Error() != se.Msg {
		t.Fatalf("Validate(%q) = %q at %d, json.Unmarshal says %q at %d", data, se.Msg, se.Offset, want.Error(), want.Offset)
	}
}

// compareDecode checks that Decode gives, for valid input, the value encoding/json decodes
// with UseNumber, and for invalid input the error Validate gives.
func compareDecode(t *testing.T, data []byte) {
	t.Helper()
	got, err := jsonscan.Decode(data)
	if verr := jsonscan.Validate(data); !sameError(err, verr) {
		t.Fatalf("Decode(%q) error %v, Validate error %v", data, err, verr)
	}
	if err != nil {
		if got != nil {
			t.Fatalf("Decode(%q) returned %#v with error %v", data, got, err)
		}
		return
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var want any
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("encoding/json refused %q that Decode accepted: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) =\n%#v\nencoding/json gives\n%#v", data, got, want)
	}
}

// compareStream checks what a caller replacing a json.Decoder that reads one value from a
// stream relies on: Scanner.Decode fails exactly when the stream decoder does, with
// Truncated set exactly when it fails with io.EOF (only whitespace) or io.ErrUnexpectedEOF,
// and otherwise with the same text; and after a value, End fails exactly when the stream
// holds more than whitespace.
func compareStream(t *testing.T, data []byte) {
	t.Helper()
	s := jsonscan.NewScanner(data)
	got, err := s.Decode()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var want any
	werr := dec.Decode(&want)
	if (err == nil) != (werr == nil) {
		t.Fatalf("Scanner.Decode(%q) error %v, json.Decoder error %v", data, err, werr)
	}
	if err != nil {
		var se *jsonscan.SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("Scanner.Decode(%q) = %#v, want a *SyntaxError", data, err)
		}
		eof := werr == io.EOF || werr == io.ErrUnexpectedEOF
		if se.Truncated != eof || (!eof && se.Msg != werr.Error()) {
			t.Fatalf("Scanner.Decode(%q) = %q (truncated %v), json.Decoder says %v", data, se.Msg, se.Truncated, werr)
		}
		if werr == io.EOF && len(bytes.Trim(data, " \t\r\n")) != 0 {
			t.Fatalf("json.Decoder says EOF for %q, which is not all whitespace", data)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Scanner.Decode(%q) =\n%#v\njson.Decoder gives\n%#v", data, got, want)
	}
	_, terr := dec.Token()
	if endErr := s.End(); (endErr == nil) != (terr == io.EOF) {
		t.Fatalf("End on %q = %v, but json.Decoder.Token = %v", data, endErr, terr)
	}
}

// compareWalk walks an object or an array with the iteration methods and checks what they
// yield against encoding/json: the members' decoded keys and raw values, with the last of
// duplicate keys winning, or the elements' raw values; and the decoded text of every string
// value.
func compareWalk(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return
	}
	s := jsonscan.NewScanner(data)
	k, err := s.Peek()
	if err != nil {
		t.Fatalf("Peek(%q): %v", data, err)
	}
	switch k {
	case jsonscan.Object:
		var want map[string]json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		got := map[string]json.RawMessage{}
		if err := s.EnterObject(); err != nil {
			t.Fatal(err)
		}
		for {
			key, more, err := s.NextMember()
			if err != nil {
				t.Fatalf("NextMember in %q: %v", data, err)
			}
			if !more {
				break
			}
			if key.Plain && !bytes.Equal(key.Raw, []byte(key.String())) {
				t.Fatalf("plain key %q decodes to %q", key.Raw, key.String())
			}
			if key.String() != jsonscan.Unquote(key.Raw) {
				t.Fatalf("key %q: String %q, Unquote %q", key.Raw, key.String(), jsonscan.Unquote(key.Raw))
			}
			v, err := s.Skip()
			if err != nil {
				t.Fatalf("Skip in %q: %v", data, err)
			}
			compareStringValue(t, v)
			got[key.String()] = v
		}
		if !reflect.DeepEqual(normalizeRaw(got), normalizeRaw(want)) {
			t.Fatalf("walking %q gave members %q, encoding/json %q", data, got, want)
		}
	case jsonscan.Array:
		var want []json.RawMessage
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		var got []json.RawMessage
		if err := s.EnterArray(); err != nil {
			t.Fatal(err)
		}
		for {
			more, err := s.NextElement()
			if err != nil {
				t.Fatalf("NextElement in %q: %v", data, err)
			}
			if !more {
				break
			}
			v, err := s.Skip()
			if err != nil {
				t.Fatalf("Skip in %q: %v", data, err)
			}
			compareStringValue(t, v)
			got = append(got, v)
		}
		if len(got) != len(want) {
			t.Fatalf("walking %q gave %d elements, encoding/json %d", data, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("walking %q gave element %d %q, encoding/json %q", data, i, got[i], want[i])
			}
		}
	default:
		if _, err := s.Skip(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.End(); err != nil {
		t.Fatalf("End after walking %q: %v", data, err)
	}
}

// compareStringValue checks Unquote on a raw value that is a string.
func compareStringValue(t *testing.T, v []byte) {
	t.Helper()
	if len(v) == 0 || v[0] != '"' {
		return
	}
	var want string
	if err := json.Unmarshal(v, &want); err != nil {
		t.Fatal(err)
	}
	if got := jsonscan.Unquote(v[1 : len(v)-1]); got != want {
		t.Fatalf("Unquote(%q) = %q, encoding/json %q", v, got, want)
	}
	if got := string(jsonscan.AppendUnquoted([]byte("x"), v[1:len(v)-1])); got != "x"+want {
		t.Fatalf("AppendUnquoted(%q) = %q, want %q", v, got, "x"+want)
	}
}

// normalizeRaw maps a nil map to an empty one: only the members matter.
func normalizeRaw(m map[string]json.RawMessage) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	var sa, sb *jsonscan.SyntaxError
	return errors.As(a, &sa) && errors.As(b, &sb) && *sa == *sb
}
