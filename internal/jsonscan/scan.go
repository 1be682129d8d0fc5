// Package jsonscan reads JSON text straight from a byte slice: it validates it, walks the
// members of objects and the elements of arrays, hands out keys and values as sub-slices of
// the input, and decodes a value into the generic form (map[string]any, []any, json.Number,
// string, bool, nil) that encoding/json produces with Decoder.UseNumber.
//
// It exists because ingestion decodes every message: encoding/json reaches the same result
// through reflection and intermediate allocations, which cost more CPU than the rest of the
// ingestion path. The scanner itself allocates nothing unless it reports an error.
//
// Acceptance is exactly encoding/json's (RFC 8259, with a nesting limit of MaxDepth), and so
// are error texts and offsets: a caller that used to report encoding/json's errors can keep
// reporting the same ones. Decoded strings are those encoding/json produces too, including its
// treatment of invalid UTF-8 and unpaired surrogates (each becomes U+FFFD).
package jsonscan

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxDepth is how deeply arrays and objects may nest, as in encoding/json: deeper input is a
// syntax error rather than a risk of exhausting the stack of the code that walks it.
const MaxDepth = 10000

// SyntaxError describes input that is not valid JSON, in encoding/json's terms.
type SyntaxError struct {
	// Offset counts the bytes read when the problem was found, as json.SyntaxError.Offset
	// does: one past the offending byte, or the input's length when the input ended early.
	Offset int64
	// Msg is the description encoding/json gives of the same problem.
	Msg string
	// Truncated reports that the input ended before the JSON text was complete, so that more
	// input could have made it valid: a streaming decoder calls this an unexpected EOF.
	Truncated bool
}

// Error returns Msg, as json.SyntaxError.Error does.
func (e *SyntaxError) Error() string { return e.Msg }

// Kind is the type of a JSON value, named as encoding/json names it in its errors.
type Kind uint8

// The kinds of JSON value. Invalid is the zero Kind, returned with an error.
const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// String returns the name encoding/json uses for the kind ("object", "bool", ...).
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "bool"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "invalid"
}

// kindOf classifies the first byte of a value; Invalid marks a byte no value starts with.
var kindOf = [256]Kind{
	'{': Object, '[': Array, '"': String, 't': Bool, 'f': Bool, 'n': Null, '-': Number,
	'0': Number, '1': Number, '2': Number, '3': Number, '4': Number,
	'5': Number, '6': Number, '7': Number, '8': Number, '9': Number,
}

// plainASCII marks the bytes a string may hold that need no further look: printable ASCII
// other than the quote and the backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Key is an object member's name as it appears in the input.
type Key struct {
	// Raw is the name between its quotes, escape sequences and all.
	Raw []byte
	// Plain reports that Raw is the name itself: it holds no escape sequence and is valid
	// UTF-8. Otherwise Unquote(Raw) gives the name.
	Plain bool
}

// String returns the decoded name. It allocates; comparing a Plain key's Raw needs not.
func (k Key) String() string {
	if k.Plain {
		return string(k.Raw)
	}
	return unquote(k.Raw)
}

// Scanner reads one JSON text from a byte slice, value by value. A caller walks containers
// with EnterObject and NextMember, or EnterArray and NextElement, and reads or skips each
// member's or element's value before asking for the next one. The first syntax error stops
// the scanner: every later call returns it again.
//
// The zero Scanner reads empty input; NewScanner and Reset give it something to read.
type Scanner struct {
	data  []byte
	pos   int   // the next byte to read
	depth int   // how many arrays and objects are open
	open  bool  // the innermost container was just entered, so no comma is due yet
	err   error // the first error, returned by every call after it
}

// NewScanner returns a scanner at the start of data.
func NewScanner(data []byte) Scanner { return Scanner{data: data} }

// Reset makes s read data from its start.
func (s *Scanner) Reset(data []byte) { *s = Scanner{data: data} }

// Offset is the index in the input of the next byte the scanner will read.
func (s *Scanner) Offset() int { return s.pos }

// Err returns the error that stopped the scanner, or nil.
func (s *Scanner) Err() error { return s.err }

// Valid reports whether data is one valid JSON text, as json.Valid does.
func Valid(data []byte) bool { return Validate(data) == nil }

// Validate returns nil when data is one valid JSON text (a value with only whitespace
// around it), and otherwise the *SyntaxError json.Unmarshal would report for it.
func Validate(data []byte) error {
	s := NewScanner(data)
	if _, err := s.Skip(); err != nil {
		return err
	}
	return s.End()
}

// Peek skips whitespace and reports the kind of the value that starts there, without
// reading it. It fails when the input ends or no value can start at that byte.
func (s *Scanner) Peek() (Kind, error) {
	if s.err != nil {
		return Invalid, s.err
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return Invalid, s.failEnd()
	}
	k := kindOf[s.data[s.pos]]
	if k == Invalid {
		return Invalid, s.failAt(s.pos, "looking for beginning of value")
	}
	return k, nil
}

// Skip reads the next value, checking all of it, and returns its bytes: from its first byte
// to its last, without the whitespace around it.
func (s *Scanner) Skip() ([]byte, error) {
	k, err := s.Peek()
	if err != nil {
		return nil, err
	}
	start := s.pos
	switch k {
	case Object:
		err = s.skipObject()
	case Array:
		err = s.skipArray()
	case String:
		_, err = s.scanString()
	case Number:
		err = s.scanNumber()
	default:
		err = s.scanLiteral()
	}
	if err != nil {
		return nil, err
	}
	return s.data[start:s.pos], nil
}

func (s *Scanner) skipObject() error {
	if err := s.EnterObject(); err != nil {
		return err
	}
	for {
		_, _, _, more, err := s.nextMember()
		if err != nil || !more {
			return err
		}
		if _, err := s.Skip(); err != nil {
			return err
		}
	}
}

func (s *Scanner) skipArray() error {
	if err := s.EnterArray(); err != nil {
		return err
	}
	for {
		more, err := s.NextElement()
		if err != nil || !more {
			return err
		}
		if _, err := s.Skip(); err != nil {
			return err
		}
	}
}

// EnterObject reads the '{' that opens the next value, which Peek reported as an Object.
func (s *Scanner) EnterObject() error { return s.enter(Object) }

// EnterArray reads the '[' that opens the next value, which Peek reported as an Array.
func (s *Scanner) EnterArray() error { return s.enter(Array) }

func (s *Scanner) enter(want Kind) error {
	k, err := s.Peek()
	if err != nil {
		return err
	}
	if k != want {
		// A misuse by the caller rather than a property of the input, so not a
		// *SyntaxError; the scanner stays usable.
		return fmt.Errorf("jsonscan: the next value is a JSON %s, not an %s", k, want)
	}
	s.depth++
	if s.depth > MaxDepth {
		return s.failAt(s.pos, "exceeded max depth")
	}
	s.pos++
	s.open = true
	return nil
}

// NextMember moves to the next member of the object being read. It returns the member's
// key with more set, leaving the scanner at the member's value, which the caller must read
// (Skip, Peek and a read, or EnterObject or EnterArray and a walk) before calling
// NextMember again. At the closing '}' it returns more false and the object is done.
func (s *Scanner) NextMember() (key Key, more bool, err error) {
	start, end, plain, more, err := s.nextMember()
	if err != nil || !more {
		return Key{}, false, err
	}
	return Key{Raw: s.data[start:end], Plain: plain}, true, nil
}

// nextMember is NextMember giving the key as the indexes of its bytes between the quotes.
func (s *Scanner) nextMember() (start, end int, plain, more bool, err error) {
	if s.err != nil {
		return 0, 0, false, false, s.err
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return 0, 0, false, false, s.failEnd()
	}
	c := s.data[s.pos]
	if c == '}' {
		s.pos++
		s.depth--
		s.open = false
		return 0, 0, false, false, nil
	}
	if s.open {
		s.open = false
	} else {
		if c != ',' {
			return 0, 0, false, false, s.failAt(s.pos, "after object key:value pair")
		}
		s.pos++
		s.skipSpace()
		if s.pos >= len(s.data) {
			return 0, 0, false, false, s.failEnd()
		}
		c = s.data[s.pos]
	}
	if c != '"' {
		return 0, 0, false, false, s.failAt(s.pos, "looking for beginning of object key string")
	}
	start = s.pos + 1
	if plain, err = s.scanString(); err != nil {
		return 0, 0, false, false, err
	}
	end = s.pos - 1
	s.skipSpace()
	if s.pos >= len(s.data) {
		return 0, 0, false, false, s.failEnd()
	}
	if s.data[s.pos] != ':' {
		return 0, 0, false, false, s.failAt(s.pos, "after object key")
	}
	s.pos++
	return start, end, plain, true, nil
}

// NextElement moves to the next element of the array being read. It returns more true,
// leaving the scanner at the element, which the caller must read before calling NextElement
// again. At the closing ']' it returns more false and the array is done.
func (s *Scanner) NextElement() (more bool, err error) {
	if s.err != nil {
		return false, s.err
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, s.failEnd()
	}
	c := s.data[s.pos]
	if c == ']' {
		s.pos++
		s.depth--
		s.open = false
		return false, nil
	}
	if s.open {
		// Whatever follows must be a value; reading it reports the byte if it is not.
		s.open = false
		return true, nil
	}
	if c != ',' {
		return false, s.failAt(s.pos, "after array element")
	}
	s.pos++
	return true, nil
}

// End checks that only whitespace follows the value just read, which must have been the
// whole JSON text.
func (s *Scanner) End() error {
	if s.err != nil {
		return s.err
	}
	s.skipSpace()
	if s.pos < len(s.data) {
		return s.failAt(s.pos, "after top-level value")
	}
	return nil
}

func (s *Scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// scanString reads the string whose opening quote is at s.pos, leaving s.pos after its
// closing quote. plain reports that the bytes between the quotes are the string itself.
func (s *Scanner) scanString() (plain bool, err error) {
	data := s.data
	start := s.pos + 1
	i := start
	escaped, nonASCII := false, false
	for {
		for i < len(data) && plainASCII[data[i]] {
			i++
		}
		if i >= len(data) {
			s.pos = i
			return false, s.failEnd()
		}
		switch c := data[i]; {
		case c == '"':
			s.pos = i + 1
			// Invalid UTF-8 is not an error, but decoding replaces it, as encoding/json
			// does; only valid text can be used as it is.
			return !escaped && (!nonASCII || utf8.Valid(data[start:i])), nil
		case c == '\\':
			escaped = true
			if i, err = s.scanEscape(i); err != nil {
				return false, err
			}
		case c < 0x20:
			return false, s.failAt(i, "in string literal")
		default:
			nonASCII = true
			i++
		}
	}
}

// scanEscape checks the escape sequence whose backslash is at i and returns the index after
// it.
func (s *Scanner) scanEscape(i int) (int, error) {
	data := s.data
	i++
	if i >= len(data) {
		return 0, s.failEOF("in string escape code")
	}
	switch data[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1, nil
	case 'u':
		for j := i + 1; j < i+5; j++ {
			if j >= len(data) {
				return 0, s.failEOF(`in \u hexadecimal character escape`)
			}
			if hexValue(data[j]) < 0 {
				return 0, s.failAt(j, `in \u hexadecimal character escape`)
			}
		}
		return i + 5, nil
	}
	return 0, s.failAt(i, "in string escape code")
}

func hexValue(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// scanNumber reads the number that starts at s.pos: an optional minus, an integer part
// without leading zeros, an optional fraction and an optional exponent. It stops at the
// first byte that cannot continue the number, which the caller then judges in its context.
func (s *Scanner) scanNumber() error {
	data := s.data
	i := s.pos
	if data[i] == '-' {
		i++
		if i >= len(data) {
			return s.failEOF("in numeric literal")
		}
		if !isDigit(data[i]) {
			return s.failAt(i, "in numeric literal")
		}
	}
	if data[i] == '0' {
		i++
	} else {
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) {
			return s.failEOF("after decimal point in numeric literal")
		}
		if !isDigit(data[i]) {
			return s.failAt(i, "after decimal point in numeric literal")
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) {
			return s.failEOF("in exponent of numeric literal")
		}
		if !isDigit(data[i]) {
			return s.failAt(i, "in exponent of numeric literal")
		}
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	s.pos = i
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanLiteral reads the true, false or null that starts at s.pos.
func (s *Scanner) scanLiteral() error {
	var lit string
	switch s.data[s.pos] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	for j := 1; j < len(lit); j++ {
		i := s.pos + j
		if i >= len(s.data) {
			return s.failEOF(literalContext(lit, j))
		}
		if s.data[i] != lit[j] {
			return s.failAt(i, literalContext(lit, j))
		}
	}
	s.pos += len(lit)
	return nil
}

func literalContext(lit string, j int) string {
	return "in literal " + lit + " (expecting " + quoteChar(lit[j]) + ")"
}

// failAt stops the scanner at the unexpected byte data[i], in encoding/json's words.
func (s *Scanner) failAt(i int, context string) error {
	s.pos = i
	return s.fail(&SyntaxError{Offset: int64(i) + 1, Msg: "invalid character " + quoteChar(s.data[i]) + " " + context})
}

// failEOF stops the scanner at the end of the input inside a number, a literal or an escape
// sequence. encoding/json reports these as if a space followed the input, since that is how
// its scanner learns of the end, so the message names a space.
func (s *Scanner) failEOF(context string) error {
	s.pos = len(s.data)
	return s.fail(&SyntaxError{Offset: int64(len(s.data)), Msg: "invalid character ' ' " + context, Truncated: true})
}

// failEnd stops the scanner at the end of the input anywhere else.
func (s *Scanner) failEnd() error {
	s.pos = len(s.data)
	return s.fail(&SyntaxError{Offset: int64(len(s.data)), Msg: "unexpected end of JSON input", Truncated: true})
}

func (s *Scanner) fail(err error) error {
	s.err = err
	return err
}

// quoteChar formats c as encoding/json does in its error messages.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	// Like encoding/json, this reads a byte of 0x80 or more as the code point of that value.
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}
