package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSON is an arbitrary value of a definition (a mapping, a list or a single value) kept as
// JSON, for fields whose content another component interprets, such as an inline JSON Schema.
// It remembers where each part of the value was written, so that component can still report
// a problem at the right line.
type JSON struct {
	// Raw is the value encoded as JSON, object keys in the order they were written.
	Raw json.RawMessage
	// Pos is where the value starts.
	Pos Position

	// positions maps RFC 6901 JSON pointers into the value to where they were written.
	positions map[string]Position
}

// IsZero reports whether the field was left out (or written empty).
func (j JSON) IsZero() bool { return len(j.Raw) == 0 }

// Unmarshal decodes the value into v with encoding/json.
func (j JSON) Unmarshal(v any) error {
	if j.IsZero() {
		return errors.New("no value")
	}
	return json.Unmarshal(j.Raw, v)
}

// MarshalJSON returns the value itself, or null when it is empty, so a spec holding a JSON
// field encodes as the document it was written as.
func (j JSON) MarshalJSON() ([]byte, error) {
	if j.IsZero() {
		return []byte("null"), nil
	}
	return j.Raw, nil
}

// PosOf returns where the part of the value at an RFC 6901 JSON pointer ("/properties/total")
// was written. For a pointer that was not recorded it returns the position of the nearest
// enclosing part, ending at Pos.
func (j JSON) PosOf(pointer string) Position {
	for {
		if p, ok := j.positions[pointer]; ok {
			return p
		}
		i := strings.LastIndexByte(pointer, '/')
		if i < 0 {
			return j.Pos
		}
		pointer = pointer[:i]
	}
}

// escapePointer escapes one reference token of a JSON pointer.
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// json encodes a node as JSON, recording the position of every part of it.
func (d *decoder) json(n *node, path string) (JSON, bool) {
	j := JSON{Pos: n.pos, positions: map[string]Position{}}
	var b bytes.Buffer
	if !d.writeJSON(&b, n, "", path, j.positions) {
		return JSON{}, false
	}
	j.Raw = b.Bytes()
	return j, true
}

// writeJSON writes n at the JSON pointer ptr; path is the same place as a field path, for
// messages.
func (d *decoder) writeJSON(b *bytes.Buffer, n *node, ptr, path string, positions map[string]Position) bool {
	if !d.spend(n) {
		return false
	}
	positions[ptr] = n.pos
	if n.bad {
		return false
	}
	if n.secret {
		d.fail(n.pos, path, "${secret:...} can only be used in a secret field; this value would hold it as plain text")
		return false
	}
	switch n.kind {
	case nullNode:
		b.WriteString("null")
	case mappingNode:
		b.WriteByte('{')
		ok := true
		for i, e := range n.entries {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, e.key)
			b.WriteByte(':')
			ok = d.writeJSON(b, e.value, ptr+"/"+escapePointer(e.key), mapPath(path, e.key), positions) && ok
		}
		b.WriteByte('}')
		return ok
	case sequenceNode:
		b.WriteByte('[')
		ok := true
		for i, item := range n.items {
			if i > 0 {
				b.WriteByte(',')
			}
			ok = d.writeJSON(b, item, ptr+"/"+strconv.Itoa(i), fmt.Sprintf("%s[%d]", path, i), positions) && ok
		}
		b.WriteByte(']')
		return ok
	default:
		switch v := n.val.(type) {
		case string:
			writeJSONString(b, v)
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case uint64:
			b.WriteString(strconv.FormatUint(v, 10))
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				d.fail(n.pos, path, "%s cannot be represented in JSON", n.text)
				return false
			}
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		default:
			d.fail(n.pos, path, "internal error: unexpected value %T", v)
			return false
		}
	}
	return true
}

// writeJSONString writes s as a JSON string without the HTML escaping json.Marshal does, so
// a pattern such as "<[a-z]+>" stays readable in the encoded value.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	b.Truncate(b.Len() - 1)
}

// LoadJSONFile reads a JSON or YAML file (by its extension: .json, .yaml or .yml) holding
// one value, such as a JSON Schema a definition refers to. Problems are returned as an
// ErrorList with positions in that file. No ${...} substitution applies: the file is data,
// not a definition.
func LoadJSONFile(path string) (JSON, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return JSON{}, ErrorList{errorf(Position{File: path}, "cannot read file: %v", unwrapPathError(err))}
	}
	if len(data) > maxFileSize {
		return JSON{}, ErrorList{errorf(Position{File: path}, "file is too large (%d bytes); the limit is %d bytes", len(data), maxFileSize)}
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return parseJSON(path, data)
	case ".yaml", ".yml":
		var errs ErrorList
		docs := parseYAML(path, data, nil, &errs)
		if len(errs) > 0 {
			return JSON{}, errs
		}
		if len(docs) != 1 {
			return JSON{}, ErrorList{errorf(Position{File: path}, "expected one YAML document, found %d", len(docs))}
		}
		d := &decoder{errs: &errs, budget: maxValues}
		j, _ := d.json(docs[0], "")
		if len(errs) > 0 {
			return JSON{}, errs
		}
		return j, nil
	}
	return JSON{}, ErrorList{errorf(Position{File: path}, "unsupported file type %q: use .json, .yaml or .yml", filepath.Ext(path))}
}

// unwrapPathError drops the path from an *os.PathError, which the position already shows.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseJSON checks a JSON document and records the position of each of its values, walking
// the token stream so that a problem found later (by a schema compiler, say) can be reported
// at its line and column.
func parseJSON(file string, data []byte) (JSON, error) {
	lines := newLineIndex(file, data)
	type frame struct {
		ptr       string
		object    bool
		expectKey bool
		key       string
		index     int
	}
	var stack []*frame
	positions := map[string]Position{}
	done := false
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// complete records that the innermost container received a value.
	complete := func() {
		if len(stack) == 0 {
			done = true
			return
		}
		top := stack[len(stack)-1]
		if top.object {
			top.expectKey = true
		} else {
			top.index++
		}
	}
	for {
		off := skipJSONSpace(data, int(dec.InputOffset()))
		tok, err := dec.Token()
		if err == io.EOF {
			switch {
			case len(stack) > 0:
				return JSON{}, ErrorList{errorf(lines.pos(len(data)), "invalid JSON: unexpected end of file")}
			case !done:
				return JSON{}, ErrorList{errorf(lines.pos(off), "empty JSON document")}
			}
			break
		}
		if err != nil {
			// The decoder's offsets are relative to its buffer; decoding the whole document
			// in one go gives the error's offset in the file.
			var se *json.SyntaxError
			if jerr := json.Unmarshal(data, new(any)); errors.As(jerr, &se) {
				return JSON{}, ErrorList{errorf(lines.pos(int(se.Offset)-1), "invalid JSON: %s", se.Error())}
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return JSON{}, ErrorList{errorf(lines.pos(len(data)), "invalid JSON: unexpected end of file")}
			}
			return JSON{}, ErrorList{errorf(lines.pos(off), "invalid JSON: %v", err)}
		}
		if done {
			return JSON{}, ErrorList{errorf(lines.pos(off), "invalid JSON: unexpected data after the value")}
		}
		if delim, ok := tok.(json.Delim); ok && (delim == '}' || delim == ']') {
			stack = stack[:len(stack)-1]
			complete()
			continue
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			top.key, _ = tok.(string)
			top.expectKey = false
			continue
		}
		ptr := ""
		switch {
		case top == nil:
		case top.object:
			ptr = top.ptr + "/" + escapePointer(top.key)
		default:
			ptr = top.ptr + "/" + strconv.Itoa(top.index)
		}
		positions[ptr] = lines.pos(off)
		if delim, ok := tok.(json.Delim); ok {
			if len(stack) >= maxDepth {
				return JSON{}, ErrorList{errorf(lines.pos(off), "values nested deeper than %d levels", maxDepth)}
			}
			stack = append(stack, &frame{ptr: ptr, object: delim == '{', expectKey: delim == '{'})
			continue
		}
		complete()
	}
	return JSON{Raw: bytes.TrimSpace(data), Pos: positions[""], positions: positions}, nil
}

// skipJSONSpace returns the offset of the next token at or after off: the decoder's offset
// points just past the previous token, before any whitespace, comma or colon.
func skipJSONSpace(data []byte, off int) int {
	for off < len(data) {
		switch data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
		default:
			return off
		}
	}
	return off
}

// lineIndex turns byte offsets into line and column positions.
type lineIndex struct {
	file   string
	data   []byte
	starts []int
}

func newLineIndex(file string, data []byte) *lineIndex {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return &lineIndex{file: file, data: data, starts: starts}
}

// pos returns the position of a byte offset; the column counts characters, not bytes, as an
// editor does.
func (l *lineIndex) pos(off int) Position {
	off = max(0, min(off, len(l.data)))
	// The line is the last one starting at or before off.
	line := sort.SearchInts(l.starts, off+1) - 1
	return Position{File: l.file, Line: line + 1, Col: utf8.RuneCount(l.data[l.starts[line]:off]) + 1}
}

// String describes the value for debugging; it is the JSON text itself.
func (j JSON) String() string {
	if j.IsZero() {
		return "null"
	}
	return string(j.Raw)
}

// compile-time check that JSON encodes as its value.
var _ json.Marshaler = JSON{}
