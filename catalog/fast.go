package catalog

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/causeway/causeway/internal/jsonscan"
)

// The fast path of Validate.
//
// Validating a message with the compiled JSON Schema first decodes its data into maps and
// slices, and the validator then allocates as it walks them; for a typical order that is
// about a hundred allocations, the largest single cost of ingestion. Most schemas written
// for Causeway use only a handful of keywords, and for those a walk over the raw bytes can
// decide that the data is valid without building anything. compileFast turns such a schema
// into a fastSchema; fastSchema.valid answers true only when it is certain that the full
// validator would accept the data, and false whenever it is not (invalid data, but also
// anything it cannot judge exactly), so that Validate then runs the full path, which alone
// produces violations and their messages.

// draft2020 is the only $schema value the fast path accepts: the draft Causeway compiles
// schemas in.
const draft2020 = "https://json-schema.org/draft/2020-12/schema"

// Bits of fastSchema.types, one per JSON Schema type name.
const (
	typeNull uint8 = 1 << iota
	typeBoolean
	typeObject
	typeArray
	typeNumber
	typeString
	typeInteger
)

// typeBits maps the JSON Schema type names to their bits.
var typeBits = map[string]uint8{
	"null": typeNull, "boolean": typeBoolean, "object": typeObject, "array": typeArray,
	"number": typeNumber, "string": typeString, "integer": typeInteger,
}

// maxFastDepth bounds how deeply nested a schema the fast path compiles, so that compiling
// and walking stay cheap; deeper schemas keep only the full path.
const maxFastDepth = 64

// maxLinearProps is how many properties an object schema looks up by scanning its list;
// more are looked up in a map, which costs a hash but not a comparison per property.
const maxLinearProps = 8

// fastSchema is one (sub)schema compiled for the fast path: the checks of the supported
// keywords, each applying to the JSON type it is about, as in JSON Schema.
type fastSchema struct {
	// never marks the schema false, which no value matches.
	never bool
	// trivial marks a schema with no assertion at all, such as true or {}: any value
	// matches, so the walk only skips it.
	trivial bool
	// types holds the allowed types; zero allows every type.
	types uint8

	// props are the names the object keywords know: the properties (with their
	// schemas) and the required names (with their bits).
	props []fastProp
	// propIndex indexes props by name when there are more than maxLinearProps.
	propIndex map[string]int
	// required has the bit of every required name.
	required uint64
	// noAdditional is additionalProperties: false.
	noAdditional bool
	// additional is the additionalProperties schema; nil allows any value.
	additional *fastSchema

	// items is the schema of every array element; nil allows any element.
	items *fastSchema
	// minItems and maxItems bound the length of an array; -1 when absent.
	minItems, maxItems int

	// minLength and maxLength bound the length of a string in code points; -1 when
	// absent.
	minLength, maxLength int
	// pattern is the compiled pattern keyword, or nil.
	pattern *regexp.Regexp
	// email is format: "email".
	email bool

	// minimum, maximum, exclusiveMinimum and exclusiveMaximum bound numbers.
	minimum, maximum, exclusiveMinimum, exclusiveMaximum fastBound

	// enum holds the enum values when hasEnum is set; consts holds the const value
	// when hasConst is set.
	enum, consts      []fastLiteral
	hasEnum, hasConst bool

	// needText reports that some check reads a string's text, which therefore must be
	// plain (no escape sequences, valid UTF-8) for the fast path to judge it.
	needText bool
}

// fastProp is a property name the object keywords know. schema is the properties
// schema of the name, nil when the name is only required (its value is then an
// additional property); bit is its bit in fastSchema.required, zero when not required.
type fastProp struct {
	name   string
	schema *fastSchema
	bit    uint64
}

// fastBound is a numeric bound. Its value has at most 15 significant digits, so that
// float64 comparison with another such number is exact (see parseExact).
type fastBound struct {
	set bool
	v   float64
}

// fastLiteral is an enum or const value. Only strings, booleans and null are supported,
// whose equality is plain byte or value equality; numbers and containers would need the
// validator's rational and structural comparison.
type fastLiteral struct {
	kind jsonscan.Kind
	s    string
	b    bool
}

// compileFast compiles the raw schema for the fast path, or returns nil when it uses
// anything outside the supported subset, in which case the type has only the full path.
// It is called on schemas that compiled for the full validator, but it does not rely on
// that: whatever it does not recognise makes it return nil.
func compileFast(raw []byte) *fastSchema {
	doc, err := jsonscan.Decode(raw)
	if err != nil {
		return nil
	}
	f, ok := compileFastNode(doc, true, 0)
	if !ok {
		return nil
	}
	return f
}

// compileFastNode compiles one schema value; ok is false when it is not supported.
func compileFastNode(v any, root bool, depth int) (f *fastSchema, ok bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	f = &fastSchema{minItems: -1, maxItems: -1, minLength: -1, maxLength: -1}
	switch v := v.(type) {
	case bool:
		f.never, f.trivial = !v, v
		return f, true
	case map[string]any:
		ok = f.compileKeywords(v, root, depth)
	}
	if !ok {
		return nil, false
	}
	f.finish()
	return f, true
}

// compileKeywords fills f from the keywords of a schema object, reporting false at the
// first keyword or value it does not support.
func (f *fastSchema) compileKeywords(obj map[string]any, root bool, depth int) bool {
	// Required names are collected first, so that properties can be given their bits.
	var required []string
	if r, ok := obj["required"]; ok {
		arr, ok := r.([]any)
		if !ok {
			return false
		}
		for _, n := range arr {
			name, ok := n.(string)
			if !ok {
				return false
			}
			required = append(required, name)
		}
	}
	for key, val := range obj {
		var ok bool
		switch key {
		case "title", "description", "$comment":
			_, ok = val.(string)
		case "default", "examples", "deprecated", "readOnly", "writeOnly", "required":
			ok = true
		case "$id":
			_, ok = val.(string)
			ok = ok && root
		case "$schema":
			ok = root && val == draft2020
		case "type":
			ok = f.compileType(val)
		case "properties":
			ok = f.compileProperties(val, depth)
		case "additionalProperties":
			if b, isBool := val.(bool); isBool {
				f.noAdditional, ok = !b, true
			} else if _, isObj := val.(map[string]any); isObj {
				f.additional, ok = compileFastNode(val, false, depth+1)
			}
		case "items":
			switch val.(type) {
			case bool, map[string]any:
				f.items, ok = compileFastNode(val, false, depth+1)
			}
		case "minItems":
			f.minItems, ok = count(val)
		case "maxItems":
			f.maxItems, ok = count(val)
		case "minLength":
			f.minLength, ok = count(val)
		case "maxLength":
			f.maxLength, ok = count(val)
		case "minimum":
			f.minimum, ok = bound(val)
		case "maximum":
			f.maximum, ok = bound(val)
		case "exclusiveMinimum":
			f.exclusiveMinimum, ok = bound(val)
		case "exclusiveMaximum":
			f.exclusiveMaximum, ok = bound(val)
		case "enum":
			f.hasEnum = true
			f.enum, ok = literals(val)
		case "const":
			f.hasConst = true
			f.consts, ok = literals([]any{val})
		case "pattern":
			if p, isStr := val.(string); isStr {
				// The validator compiles patterns with Go's regexp.Compile unless told
				// otherwise, and Causeway does not tell it otherwise.
				re, err := regexp.Compile(p)
				f.pattern, ok = re, err == nil
			}
		case "format":
			// Format assertions are on, so a format is a check; the email check is
			// reproduced exactly (see validEmail), the others are left to the full path.
			f.email, ok = val == "email", val == "email"
		}
		if !ok {
			return false
		}
	}
	return f.addRequired(required)
}

// compileType reads the type keyword: a type name or an array of them.
func (f *fastSchema) compileType(val any) bool {
	names, ok := val.([]any)
	if !ok {
		names = []any{val}
	}
	if len(names) == 0 {
		return false
	}
	for _, n := range names {
		name, _ := n.(string)
		bit, known := typeBits[name]
		if !known {
			return false
		}
		f.types |= bit
	}
	return true
}

// compileProperties reads the properties keyword.
func (f *fastSchema) compileProperties(val any, depth int) bool {
	props, ok := val.(map[string]any)
	if !ok {
		return false
	}
	for name, sub := range props {
		s, ok := compileFastNode(sub, false, depth+1)
		if !ok {
			return false
		}
		f.props = append(f.props, fastProp{name: name, schema: s})
	}
	return true
}

// addRequired gives every required name a bit, adding the names that are not properties.
// More than 64 distinct names do not fit the bit set the walk keeps and are not supported.
func (f *fastSchema) addRequired(names []string) bool {
	for _, name := range names {
		i := f.lookup(name)
		if i < 0 {
			f.props = append(f.props, fastProp{name: name})
			i = len(f.props) - 1
		}
		if f.props[i].bit != 0 {
			continue
		}
		n := 0
		for b := f.required; b != 0; b &= b - 1 {
			n++
		}
		if n == 64 {
			return false
		}
		f.props[i].bit = 1 << n
		f.required |= f.props[i].bit
	}
	return true
}

// finish derives what the walk uses from the compiled keywords.
func (f *fastSchema) finish() {
	if len(f.props) > maxLinearProps {
		f.propIndex = make(map[string]int, len(f.props))
		for i, p := range f.props {
			f.propIndex[p.name] = i
		}
	}
	f.needText = f.minLength >= 0 || f.maxLength >= 0 || f.pattern != nil || f.email || f.hasEnum || f.hasConst
	f.trivial = !f.never && f.types == 0 && len(f.props) == 0 && !f.noAdditional && f.additional == nil &&
		f.items == nil && f.minItems < 0 && f.maxItems < 0 && !f.needText &&
		!f.minimum.set && !f.maximum.set && !f.exclusiveMinimum.set && !f.exclusiveMaximum.set
}

// count reads a non-negative integer keyword value written as a plain integer.
func count(val any) (int, bool) {
	n, ok := val.(json.Number)
	if !ok {
		return -1, false
	}
	i, err := strconv.Atoi(string(n))
	if err != nil || i < 0 {
		return -1, false
	}
	return i, true
}

// bound reads a numeric bound, which must be a number parseExact can represent exactly.
func bound(val any) (fastBound, bool) {
	n, ok := val.(json.Number)
	if !ok {
		return fastBound{}, false
	}
	v, ok := parseExact([]byte(n))
	return fastBound{set: ok, v: v}, ok
}

// literals reads enum values, which must all be strings, booleans or null.
func literals(val any) ([]fastLiteral, bool) {
	arr, ok := val.([]any)
	if !ok {
		return nil, false
	}
	out := make([]fastLiteral, 0, len(arr))
	for _, v := range arr {
		switch v := v.(type) {
		case string:
			out = append(out, fastLiteral{kind: jsonscan.String, s: v})
		case bool:
			out = append(out, fastLiteral{kind: jsonscan.Bool, b: v})
		case nil:
			out = append(out, fastLiteral{kind: jsonscan.Null})
		default:
			return nil, false
		}
	}
	return out, true
}

// lookup returns the index in props of the property name, or -1.
func (f *fastSchema) lookup(name string) int {
	if f.propIndex != nil {
		if i, ok := f.propIndex[name]; ok {
			return i
		}
		return -1
	}
	for i := range f.props {
		if f.props[i].name == name {
			return i
		}
	}
	return -1
}

// lookupBytes is lookup for a key read from the data; comparing and indexing with
// string(b) does not copy b.
func (f *fastSchema) lookupBytes(b []byte) int {
	if f.propIndex != nil {
		if i, ok := f.propIndex[string(b)]; ok {
			return i
		}
		return -1
	}
	for i := range f.props {
		if f.props[i].name == string(b) {
			return i
		}
	}
	return -1
}

// valid reports whether the full validator certainly accepts data, which must be one JSON
// text. False means invalid or not known; it never allocates when the data is valid JSON.
func (f *fastSchema) valid(data []byte) bool {
	s := jsonscan.NewScanner(data)
	return f.check(&s) && s.End() == nil
}

// check reads the next value from s and reports whether it certainly matches f.
//
// Duplicate keys need no special care: the decoded object keeps one of the values of a
// repeated key, and check has validated every one of them against the same schema.
func (f *fastSchema) check(s *jsonscan.Scanner) bool {
	if f.never {
		return false
	}
	if f.trivial {
		_, err := s.Skip()
		return err == nil
	}
	k, err := s.Peek()
	if err != nil {
		return false
	}
	switch k {
	case jsonscan.Object:
		return f.allows(typeObject) && f.checkObject(s)
	case jsonscan.Array:
		return f.allows(typeArray) && !f.hasEnum && !f.hasConst && f.checkArray(s)
	}
	raw, err := s.Skip()
	if err != nil {
		return false
	}
	switch k {
	case jsonscan.String:
		return f.allows(typeString) && f.checkString(raw[1:len(raw)-1])
	case jsonscan.Number:
		return f.checkNumber(raw)
	case jsonscan.Bool:
		return f.allows(typeBoolean) && f.matchLiteral(fastLiteral{kind: jsonscan.Bool, b: raw[0] == 't'}, nil)
	default:
		return f.allows(typeNull) && f.matchLiteral(fastLiteral{kind: jsonscan.Null}, nil)
	}
}

// allows reports whether the type keyword allows the type t (other than integer, which
// checkNumber decides).
func (f *fastSchema) allows(t uint8) bool { return f.types == 0 || f.types&t != 0 }

// checkObject walks an object, validating each member's value against its properties
// schema or the additionalProperties one, and checks that the required names appeared.
func (f *fastSchema) checkObject(s *jsonscan.Scanner) bool {
	if f.hasEnum || f.hasConst {
		return false
	}
	if err := s.EnterObject(); err != nil {
		return false
	}
	var seen uint64
	for {
		key, more, err := s.NextMember()
		if err != nil {
			return false
		}
		if !more {
			return seen&f.required == f.required
		}
		sub := f.additional
		i := -1
		if len(f.props) > 0 {
			if !key.Plain {
				// The name would have to be decoded to be compared.
				return false
			}
			i = f.lookupBytes(key.Raw)
		}
		if i >= 0 {
			seen |= f.props[i].bit
			if f.props[i].schema != nil {
				sub = f.props[i].schema
			}
		}
		if (i < 0 || f.props[i].schema == nil) && f.noAdditional {
			return false
		}
		if sub == nil {
			if _, err := s.Skip(); err != nil {
				return false
			}
		} else if !sub.check(s) {
			return false
		}
	}
}

// checkArray walks an array, validating each element against items and counting them.
func (f *fastSchema) checkArray(s *jsonscan.Scanner) bool {
	if err := s.EnterArray(); err != nil {
		return false
	}
	n := 0
	for {
		more, err := s.NextElement()
		if err != nil {
			return false
		}
		if !more {
			break
		}
		n++
		if f.maxItems >= 0 && n > f.maxItems {
			return false
		}
		if f.items == nil {
			if _, err := s.Skip(); err != nil {
				return false
			}
		} else if !f.items.check(s) {
			return false
		}
	}
	return f.minItems < 0 || n >= f.minItems
}

// checkString checks a string given by the bytes between its quotes.
func (f *fastSchema) checkString(text []byte) bool {
	if !f.needText {
		return true
	}
	if bytes.IndexByte(text, '\\') >= 0 || !utf8.Valid(text) {
		// The decoded string differs from the bytes.
		return false
	}
	if f.minLength >= 0 || f.maxLength >= 0 {
		n := utf8.RuneCount(text)
		if n < f.minLength || (f.maxLength >= 0 && n > f.maxLength) {
			return false
		}
	}
	if f.pattern != nil && !f.pattern.Match(text) {
		return false
	}
	if f.email && !validEmail(text) {
		return false
	}
	return f.matchLiteral(fastLiteral{kind: jsonscan.String}, text)
}

// matchLiteral checks a string, boolean or null value against enum and const; a string's
// text is given separately so that it need not be copied into a string.
func (f *fastSchema) matchLiteral(v fastLiteral, text []byte) bool {
	return (!f.hasEnum || containsLiteral(f.enum, v, text)) && (!f.hasConst || containsLiteral(f.consts, v, text))
}

// containsLiteral reports whether v, with text for a string, is one of list.
func containsLiteral(list []fastLiteral, v fastLiteral, text []byte) bool {
	for _, l := range list {
		if l.kind != v.kind {
			continue
		}
		switch v.kind {
		case jsonscan.String:
			if l.s == string(text) {
				return true
			}
		case jsonscan.Bool:
			if l.b == v.b {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// checkNumber checks a number literal against type, the bounds, enum and const.
func (f *fastSchema) checkNumber(raw []byte) bool {
	if f.hasEnum || f.hasConst {
		// No number equals a string, boolean or null.
		return false
	}
	if f.types != 0 && f.types&typeNumber == 0 {
		if f.types&typeInteger == 0 || !isIntegral(raw) {
			return false
		}
	}
	if !f.minimum.set && !f.maximum.set && !f.exclusiveMinimum.set && !f.exclusiveMaximum.set {
		return true
	}
	v, ok := parseExact(raw)
	return ok &&
		(!f.minimum.set || v >= f.minimum.v) &&
		(!f.maximum.set || v <= f.maximum.v) &&
		(!f.exclusiveMinimum.set || v > f.exclusiveMinimum.v) &&
		(!f.exclusiveMaximum.set || v < f.exclusiveMaximum.v)
}

// maxExpDigits bounds the digits of an exponent the fast path reads; numbers with longer
// exponents are left to the full path.
const maxExpDigits = 4

// splitNumber takes apart a number literal that the scanner accepted. ok is false when its
// exponent is too long to read safely; digits is returned in two parts, the integer and
// fraction digits, since joining them would need a copy.
func splitNumber(raw []byte) (intPart, frac []byte, exp int, ok bool) {
	i := 0
	if i < len(raw) && raw[i] == '-' {
		i++
	}
	start := i
	for i < len(raw) && isDigit(raw[i]) {
		i++
	}
	intPart = raw[start:i]
	if i < len(raw) && raw[i] == '.' {
		i++
		start = i
		for i < len(raw) && isDigit(raw[i]) {
			i++
		}
		frac = raw[start:i]
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		neg := false
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			neg = raw[i] == '-'
			i++
		}
		if len(raw)-i > maxExpDigits {
			return nil, nil, 0, false
		}
		for ; i < len(raw); i++ {
			exp = exp*10 + int(raw[i]-'0')
		}
		if neg {
			exp = -exp
		}
	}
	return intPart, frac, exp, true
}

// isDigit reports whether c is an ASCII digit, for taking number literals apart.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// significant counts the significant digits of a number literal and returns the decimal
// exponent of its last significant digit: the value is ±(those digits) × 10^last. zero
// reports a value of zero.
func significant(raw []byte) (n, last int, zero, ok bool) {
	intPart, frac, exp, ok := splitNumber(raw)
	if !ok {
		return 0, 0, false, false
	}
	// Position of each digit as a power of ten: the last integer digit is 10^0, the
	// first fraction digit 10^-1.
	first, lastPos := 0, 0
	found := false
	for i, c := range intPart {
		if c != '0' {
			pos := len(intPart) - 1 - i
			if !found {
				first, found = pos, true
			}
			lastPos = pos
		}
	}
	for i, c := range frac {
		if c != '0' {
			pos := -1 - i
			if !found {
				first, found = pos, true
			}
			lastPos = pos
		}
	}
	if !found {
		return 0, 0, true, true
	}
	return first - lastPos + 1, lastPos + exp, false, true
}

// isIntegral reports whether a number literal certainly has an integral value, as the
// validator's "integer" type requires (1.0 and 1e2 are integers). It decides from the
// digits, exactly; literals with very long exponents report false.
func isIntegral(raw []byte) bool {
	_, last, zero, ok := significant(raw)
	return ok && (zero || last >= 0)
}

// parseExact parses a number literal into a float64 when float64 comparison of it is
// exact: at most 15 significant digits (which float64 keeps apart, so distinct such
// numbers stay distinct and ordered) and a magnitude well inside float64's normal range.
func parseExact(raw []byte) (float64, bool) {
	n, last, zero, ok := significant(raw)
	if !ok {
		return 0, false
	}
	if zero {
		return 0, true
	}
	if n > 15 || last < -280 || last+n > 280 {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	return v, err == nil
}

// validEmail reports whether the validator's "email" format certainly accepts s. It
// repeats that check's rules: at most 254 bytes, split at the last '@', a local part of at
// most 64 allowed characters without leading, trailing or doubled dots, and a domain that
// is a valid hostname. Quoted local parts and bracketed IP-address domains are rare and
// left to the full path.
func validEmail(s []byte) bool {
	if len(s) > 254 {
		return false
	}
	at := bytes.LastIndexByte(s, '@')
	if at < 0 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 || bytes.HasPrefix(local, []byte(`"`)) {
		return false
	}
	if bytes.HasPrefix(local, []byte(".")) || bytes.HasSuffix(local, []byte(".")) || bytes.Contains(local, []byte("..")) {
		return false
	}
	for _, c := range local {
		if !isAlnum(c) && bytes.IndexByte([]byte(".!#$%&'*+-/=?^_`{|}~"), c) < 0 {
			return false
		}
	}
	if bytes.HasPrefix(domain, []byte("[")) {
		return false
	}
	return validHostname(domain)
}

// validHostname repeats the validator's "hostname" format check: after one trailing dot
// is dropped, at most 253 bytes of dot-separated labels of 1 to 63 letters, digits and
// hyphens, not starting or ending with a hyphen.
func validHostname(s []byte) bool {
	s = bytes.TrimSuffix(s, []byte("."))
	if len(s) > 253 {
		return false
	}
	for {
		label := s
		i := bytes.IndexByte(s, '.')
		if i >= 0 {
			label = s[:i]
		}
		if len(label) < 1 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !isAlnum(c) && c != '-' {
				return false
			}
		}
		if i < 0 {
			return true
		}
		s = s[i+1:]
	}
}

// isAlnum reports whether c is an ASCII letter or digit, the characters the email and
// hostname formats allow everywhere.
func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) }
