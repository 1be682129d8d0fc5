package jsonscan

import (
	"bytes"
	"encoding/json"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode decodes data, which must be one JSON text, into the value encoding/json gives an
// any with Decoder.UseNumber: map[string]any for objects, []any for arrays, json.Number for
// numbers, string, bool, or nil for null. Duplicate keys keep the last value, as in
// encoding/json. Errors are *SyntaxError, with json.Unmarshal's text and offset.
func Decode(data []byte) (any, error) {
	s := NewScanner(data)
	v, err := s.Decode()
	if err != nil {
		return nil, err
	}
	if err := s.End(); err != nil {
		return nil, err
	}
	return v, nil
}

// Decode reads the next value and decodes it as the function Decode does.
//
// It first checks the whole value, so that invalid input costs no allocation, and then
// builds the result. Strings that need no unescaping and numbers are taken from one string
// copy of the value's bytes, which saves an allocation each, so holding on to any of them
// holds that copy.
func (s *Scanner) Decode() (any, error) {
	raw, err := s.Skip()
	if err != nil {
		return nil, err
	}
	d := decoder{s: NewScanner(raw)}
	if p, ok := stackPool.Get().(*[]entry); ok {
		d.stack = *p
		defer func() {
			// Entries are cleared as containers are finished; clearing what an error left
			// keeps the pooled buffer from holding values. A buffer grown by an unusually
			// large document is left to the collector rather than kept for good.
			clear(d.stack)
			if cap(d.stack) <= maxPooledStack {
				*p = d.stack[:0]
				stackPool.Put(p)
			}
		}()
	}
	return d.value()
}

// stackPool recycles decoder stacks. The entries of a stack end up in the maps and slices
// the decoder returns, so escape analysis cannot keep a stack on the goroutine's stack;
// pooling saves allocating and growing one for every value decoded.
var stackPool = sync.Pool{New: func() any {
	s := make([]entry, 0, 32)
	return &s
}}

// maxPooledStack bounds the buffers stackPool keeps.
const maxPooledStack = 4096

// decoder builds the generic value of input the scanner has already accepted.
type decoder struct {
	s Scanner
	// str is the input as a string, made when the first substring is wanted.
	str string
	// stack holds the members and elements read so far of every container being built,
	// innermost last, so that each map and slice is allocated once at its final size.
	stack []entry
}

// entry is a pending object member, or an array element with an empty key.
type entry struct {
	key string
	val any
}

func (d *decoder) substr(i, j int) string {
	if d.str == "" {
		d.str = string(d.s.data)
	}
	return d.str[i:j]
}

func (d *decoder) value() (any, error) {
	k, err := d.s.Peek()
	if err != nil {
		return nil, err
	}
	start := d.s.pos
	switch k {
	case Object:
		return d.object()
	case Array:
		return d.array()
	case String:
		plain, err := d.s.scanString()
		if err != nil {
			return nil, err
		}
		return d.text(start+1, d.s.pos-1, plain), nil
	case Number:
		if err := d.s.scanNumber(); err != nil {
			return nil, err
		}
		return json.Number(d.substr(start, d.s.pos)), nil
	}
	if err := d.s.scanLiteral(); err != nil {
		return nil, err
	}
	switch d.s.data[start] {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return nil, nil
}

// text returns the string whose bytes between the quotes are data[i:j].
func (d *decoder) text(i, j int, plain bool) string {
	if plain {
		return d.substr(i, j)
	}
	return unquote(d.s.data[i:j])
}

func (d *decoder) object() (any, error) {
	if err := d.s.EnterObject(); err != nil {
		return nil, err
	}
	base := len(d.stack)
	for {
		i, j, plain, more, err := d.s.nextMember()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		key := d.text(i, j, plain)
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.stack = append(d.stack, entry{key, v})
	}
	m := make(map[string]any, len(d.stack)-base)
	for _, e := range d.stack[base:] {
		// In input order, so that the last of duplicate keys wins.
		m[e.key] = e.val
	}
	d.pop(base)
	return m, nil
}

func (d *decoder) array() (any, error) {
	if err := d.s.EnterArray(); err != nil {
		return nil, err
	}
	base := len(d.stack)
	for {
		more, err := d.s.NextElement()
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.stack = append(d.stack, entry{val: v})
	}
	// Never nil, even when empty: encoding/json decodes [] as an empty slice, not as nil.
	a := make([]any, len(d.stack)-base)
	for i, e := range d.stack[base:] {
		a[i] = e.val
	}
	d.pop(base)
	return a, nil
}

// pop drops the entries from base on, clearing them so that the stack does not keep values
// the caller may want collected.
func (d *decoder) pop(base int) {
	clear(d.stack[base:])
	d.stack = d.stack[:base]
}

// Unquote returns the string a JSON string literal stands for, given raw, the bytes between
// its quotes, which a Scanner has accepted (such as Key.Raw, or a string value from Skip
// without its first and last byte). Like encoding/json, it replaces invalid UTF-8 and
// unpaired surrogate escapes with U+FFFD. It allocates only the result.
func Unquote(raw []byte) string {
	if isPlain(raw) {
		return string(raw)
	}
	return unquote(raw)
}

func unquote(raw []byte) string {
	// Most escaped strings are short: decoding them on the stack leaves one allocation,
	// the string itself.
	var buf [64]byte
	return string(AppendUnquoted(buf[:0], raw))
}

// AppendUnquoted appends to dst the string raw stands for, as Unquote returns it.
func AppendUnquoted(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := 0
		for i < len(raw) && raw[i] != '\\' && raw[i] < utf8.RuneSelf {
			i++
		}
		dst = append(dst, raw[:i]...)
		raw = raw[i:]
		if len(raw) == 0 {
			break
		}
		if c := raw[0]; c != '\\' {
			// Valid UTF-8 is copied as it is and each byte of invalid UTF-8 becomes
			// U+FFFD, which is what utf8.AppendRune of a RuneError does.
			r, size := utf8.DecodeRune(raw)
			dst = utf8.AppendRune(dst, r)
			raw = raw[size:]
			continue
		}
		if len(raw) < 2 {
			// Not from a scanner, which never accepts a lone trailing backslash: keep it.
			return append(dst, raw...)
		}
		switch c := raw[1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := getu4(raw)
			if r < 0 {
				// Not from a scanner: keep the malformed escape as it is.
				dst = append(dst, raw[:2]...)
				raw = raw[2:]
				continue
			}
			raw = raw[6:]
			if utf16.IsSurrogate(r) {
				// A surrogate counts only as the first half of a pair that follows at
				// once; anything else makes it U+FFFD and the next escape stands alone.
				if dec := utf16.DecodeRune(r, getu4(raw)); dec != unicode.ReplacementChar {
					r = dec
					raw = raw[6:]
				} else {
					r = unicode.ReplacementChar
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			// '"', '\\' and '/' stand for themselves (and so, in encoding/json, does a
			// quote mark, although its scanner never lets one through).
			dst = append(dst, c)
		}
		raw = raw[2:]
	}
	return dst
}

// getu4 decodes the \uXXXX escape at the start of s, or returns -1 when there is none.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		h := hexValue(c)
		if h < 0 {
			return -1
		}
		r = r<<4 | h
	}
	return r
}

// isPlain reports whether raw, the inside of an accepted string, is the string itself.
func isPlain(raw []byte) bool {
	return bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw)
}
