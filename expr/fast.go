package expr

import (
	"encoding/json"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync"

	"github.com/causeway/causeway/internal/jsonscan"
	"github.com/itchyny/gojq"
)

// Most mappings are a few keys taken from the input, sometimes with a little arithmetic:
// '{id: .body.order_no, total: (.body.amount_cents / 100)}'. For those, running jq costs
// many times the work itself (an interpreter, a context with a timer for the time limit),
// so Compile also builds a direct evaluator for programs made only of key paths, number,
// string and boolean literals, null, object constructions with literal keys, parentheses
// and + - * / between them. It gives what jq gives, value and type (TestFastAgreesWithJq
// compares them on generated programs and inputs); whenever a step would need more than
// the plain case (a key path into something that is not an object, arithmetic on anything
// but two numbers, a division by zero, an integer overflow), the evaluator gives up and jq
// runs the program, so errors are always jq's own.

// fastNode is a part of a program the direct evaluator can run; ok false means jq must.
type fastNode interface {
	// eval runs the node on in. ix, when not nil, holds the members of a RawJSON object of
	// in that paths read (see rawIndex); nil reads the text each time.
	eval(in any, ix *rawIndex) (v any, ok bool)
}

// compileFast returns the direct evaluator of q, or nil when q is not in its reach.
func compileFast(q *gojq.Query) fastNode {
	if q == nil || q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 || len(q.Patterns) > 0 {
		return nil
	}
	switch q.Op {
	case 0:
		return fastTerm(q.Term)
	case gojq.OpAdd, gojq.OpSub, gojq.OpMul, gojq.OpDiv:
		l, r := compileFast(q.Left), compileFast(q.Right)
		if l == nil || r == nil {
			return nil
		}
		return &arithNode{op: q.Op, l: l, r: r}
	}
	return nil
}

// plainIndex reports whether ix is .name, nothing else.
func plainIndex(ix *gojq.Index) bool {
	return ix != nil && ix.Name != "" && ix.Str == nil && ix.Start == nil && ix.End == nil && !ix.IsSlice
}

func fastTerm(t *gojq.Term) fastNode {
	if t == nil {
		return nil
	}
	if t.Type != gojq.TermTypeIndex && len(t.SuffixList) > 0 {
		return nil
	}
	switch t.Type {
	case gojq.TermTypeIndex:
		if !plainIndex(t.Index) {
			return nil
		}
		path := pathNode{t.Index.Name}
		for _, s := range t.SuffixList {
			if s.Iter || s.Optional || !plainIndex(s.Index) {
				return nil
			}
			path = append(path, s.Index.Name)
		}
		return path
	case gojq.TermTypeNumber:
		return constNode{jqNumber(json.Number(t.Number))}
	case gojq.TermTypeString:
		if t.Str == nil || t.Str.Queries != nil {
			return nil
		}
		return constNode{t.Str.Str}
	case gojq.TermTypeNull:
		return constNode{nil}
	case gojq.TermTypeTrue:
		return constNode{true}
	case gojq.TermTypeFalse:
		return constNode{false}
	case gojq.TermTypeQuery:
		return compileFast(t.Query)
	case gojq.TermTypeObject:
		if t.Object == nil {
			return nil
		}
		o := &objectNode{}
		for _, kv := range t.Object.KeyVals {
			var key string
			switch {
			case kv.Key != "" && !strings.HasPrefix(kv.Key, "$") && kv.KeyString == nil && kv.KeyQuery == nil:
				key = kv.Key
			case kv.Key == "" && kv.KeyString != nil && kv.KeyString.Queries == nil && kv.KeyQuery == nil:
				key = kv.KeyString.Str
			default:
				return nil
			}
			if kv.Val == nil {
				return nil
			}
			v := compileFast(kv.Val)
			if v == nil {
				return nil
			}
			o.keys, o.vals = append(o.keys, key), append(o.vals, v)
		}
		o.order = make([]int, len(o.keys))
		for i := range o.order {
			o.order[i] = i
		}
		slices.SortFunc(o.order, func(i, j int) int { return strings.Compare(o.keys[i], o.keys[j]) })
		for i := 1; i < len(o.order); i++ {
			if o.keys[o.order[i]] == o.keys[o.order[i-1]] {
				// jq keeps a repeated key's last value; the map does that.
				o.order = nil
				break
			}
		}
		return o
	}
	return nil
}

// pathNode is .a.b.c: a missing key or null gives null, anything but an object gives up.
type pathNode []string

func (p pathNode) eval(v any, ix *rawIndex) (any, bool) {
	v, raw, isRaw, ok := p.walk(v, ix)
	switch {
	case !ok:
		return nil, false
	case isRaw:
		// The path ends inside JSON text: only the value it names is decoded.
		return decodeRaw(raw)
	}
	return v, true
}

// text returns the JSON text the path leads to inside a RawJSON of in when writing that
// text as it is gives what decoding it and encoding the value (appendJSON) would: a
// number, true, false, null, a missing member (null), or a string appendString writes
// unchanged. ok is false for anything else, which eval then takes.
func (p pathNode) text(in any, ix *rawIndex) (_ []byte, ok bool) {
	_, raw, isRaw, ok := p.walk(in, ix)
	if !ok || !isRaw {
		return nil, false
	}
	return verbatim(raw)
}

// walk follows the path from v. It ends with the value, or, once the path enters a
// RawJSON, with the text of the value there (isRaw; nil for a missing one). ok is false
// where the evaluator gives up.
func (p pathNode) walk(v any, ix *rawIndex) (_ any, raw []byte, isRaw, ok bool) {
	for i, k := range p {
		switch o := v.(type) {
		case nil:
			return nil, nil, false, true
		case map[string]any:
			v = o[k]
		case RawJSON:
			raw, ok := o.follow(p[i:], ix)
			return nil, raw, true, ok
		default:
			return nil, nil, false, false
		}
	}
	if r, ok := v.(RawJSON); ok {
		return nil, r, true, true
	}
	return v, nil, false, true
}

var jsonNull = []byte("null")

// verbatim returns raw, a checked JSON value (nil for a missing one), when it is written as
// it is; see pathNode.text.
func verbatim(raw []byte) ([]byte, bool) {
	if raw == nil {
		return jsonNull, true
	}
	switch raw[0] {
	case 't', 'f', 'n':
		return raw, true
	case '"':
		for _, c := range raw[1 : len(raw)-1] {
			if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return nil, false
			}
		}
		return raw, true
	case '{', '[':
		return nil, false
	}
	return raw, true // a number, which appendJSON writes as its text
}

// decodeRaw decodes a checked JSON value (nil for a missing one) as DecodeJSON does,
// allocating nothing for the literals.
func decodeRaw(raw []byte) (any, bool) {
	if raw == nil {
		return nil, true
	}
	switch raw[0] {
	case 't':
		return true, true
	case 'f':
		return false, true
	case 'n':
		return nil, true
	case '"':
		return jsonscan.Unquote(raw[1 : len(raw)-1]), true
	case '{', '[':
		v, err := DecodeJSON(raw)
		return v, err == nil
	}
	return json.Number(raw), true
}

// RawJSON is a JSON text in a program's input that has been checked but not decoded, for
// EncodeObject only: the direct evaluator decodes just the values its key paths name,
// where decoding a backend's whole answer into maps to read four of its fields cost more
// than the mapping itself. Eval does not take it: a caller whose EncodeObject gives up
// decodes the text (DecodeJSON) and evaluates that.
type RawJSON []byte

// follow returns the text of the value that keys lead to in r: nil when a member is
// missing or a value on the way is null. ok is false when a value on the way is neither an
// object nor null, or is not valid JSON, where the evaluator gives up. The first key is
// looked up in ix when ix holds, or can be made to hold, r's members.
func (r RawJSON) follow(keys []string, ix *rawIndex) (_ []byte, ok bool) {
	v := []byte(r)
	for i, k := range keys {
		if v == nil {
			return nil, true
		}
		if i == 0 && ix != nil {
			if v, ok = ix.member(r, k); !ok {
				return nil, false
			}
			continue
		}
		if v, ok = member(v, k); !ok {
			return nil, false
		}
	}
	return v, true
}

// rawIndex holds the members of one RawJSON object, read once, for the paths of one
// EncodeObject: a mapping's paths mostly start in the same object (.body.id, .body.name,
// ...), and reading the text again for each made a mapping of ten fields twice as slow as
// decoding the text. The members of nested objects are read by scanning (member).
type rawIndex struct {
	of       []byte // the text indexed, nil before the first
	failed   bool   // of is not an object or null, or not valid JSON
	members  []rawMember
	scratch  [32]rawMember
	isObject bool
}

// rawMember is one member of an indexed object.
type rawMember struct {
	key   []byte // between the quotes, escapes and all
	plain bool   // key is the name itself
	val   []byte
}

// rawIndexes recycles indexes: one would escape to the heap through the fastNode
// interface on every EncodeObject.
var rawIndexes = sync.Pool{New: func() any { return new(rawIndex) }}

// member looks key up in r, indexing r if nothing is indexed yet; a text other than the
// indexed one is scanned. Its results are member's.
func (ix *rawIndex) member(r RawJSON, key string) ([]byte, bool) {
	switch {
	case ix.of == nil:
		ix.build(r)
	case len(ix.of) != len(r) || len(r) == 0 || &ix.of[0] != &r[0]:
		return member(r, key)
	}
	if ix.failed {
		return nil, false
	}
	if !ix.isObject {
		return nil, true // null
	}
	// The last member of the name, as decoding keeps the last.
	for i := len(ix.members) - 1; i >= 0; i-- {
		m := &ix.members[i]
		if m.plain && string(m.key) == key || !m.plain && jsonscan.Unquote(m.key) == key {
			return m.val, true
		}
	}
	return nil, true
}

func (ix *rawIndex) build(r []byte) {
	ix.of, ix.members = r, ix.scratch[:0]
	s := jsonscan.NewScanner(r)
	k, err := s.Peek()
	switch {
	case err != nil || (k != jsonscan.Null && k != jsonscan.Object):
		ix.failed = true
		return
	case k == jsonscan.Null:
		return
	}
	ix.isObject = true
	if s.EnterObject() != nil {
		ix.failed = true
		return
	}
	for {
		name, more, err := s.NextMember()
		if err != nil {
			ix.failed = true
			return
		}
		if !more {
			break
		}
		v, err := s.Skip()
		if err != nil {
			ix.failed = true
			return
		}
		ix.members = append(ix.members, rawMember{key: name.Raw, plain: name.Plain, val: v})
	}
	ix.failed = s.End() != nil
}

// reset empties ix for the next EncodeObject, dropping what it points to. An object of
// more than 32 members grew members on the heap; that is left to the collector.
func (ix *rawIndex) reset() {
	clear(ix.members)
	clear(ix.scratch[:])
	ix.of, ix.failed, ix.isObject, ix.members = nil, false, false, nil
}

// member returns the text of the member named key of the JSON text r, the last one when
// the name repeats (as decoding into a map keeps the last); nil when r is null or has no
// such member. ok is false when r is neither an object nor null, or is not valid JSON.
func member(r []byte, key string) (_ []byte, ok bool) {
	s := jsonscan.NewScanner(r)
	k, err := s.Peek()
	switch {
	case err != nil:
		return nil, false
	case k == jsonscan.Null:
		return nil, true
	case k != jsonscan.Object:
		return nil, false
	}
	if s.EnterObject() != nil {
		return nil, false
	}
	var found []byte
	for {
		name, more, err := s.NextMember()
		if err != nil {
			return nil, false
		}
		if !more {
			break
		}
		v, err := s.Skip()
		if err != nil {
			return nil, false
		}
		if name.Plain && string(name.Raw) == key || !name.Plain && name.String() == key {
			found = v
		}
	}
	if s.End() != nil {
		return nil, false
	}
	return found, true
}

// constNode is a literal.
type constNode struct{ v any }

func (c constNode) eval(any, *rawIndex) (any, bool) { return c.v, true }

// objectNode is {key: value, ...} with literal keys.
type objectNode struct {
	keys []string
	vals []fastNode
	// order is the keys' indexes in the order MarshalJSON writes them (sorted), nil when
	// a key repeats.
	order []int
}

func (o *objectNode) eval(in any, ix *rawIndex) (any, bool) {
	out := make(map[string]any, len(o.keys))
	for i, k := range o.keys {
		v, ok := o.vals[i].eval(in, ix)
		if !ok {
			return nil, false
		}
		out[k] = v
	}
	return out, true
}

// arithNode is l op r on two numbers, as jq computes it.
type arithNode struct {
	op   gojq.Operator
	l, r fastNode
}

func (a *arithNode) eval(in any, ix *rawIndex) (any, bool) {
	lv, ok := a.l.eval(in, ix)
	if !ok {
		return nil, false
	}
	rv, ok := a.r.eval(in, ix)
	if !ok {
		return nil, false
	}
	if n, isNum := lv.(json.Number); isNum {
		lv = jqNumber(n)
	}
	if n, isNum := rv.(json.Number); isNum {
		rv = jqNumber(n)
	}
	li, lInt := lv.(int)
	ri, rInt := rv.(int)
	if lInt && rInt {
		return intArith(a.op, li, ri)
	}
	lf, lok := asFloat(lv)
	rf, rok := asFloat(rv)
	if !lok || !rok {
		return nil, false
	}
	switch a.op {
	case gojq.OpAdd:
		return lf + rf, true
	case gojq.OpSub:
		return lf - rf, true
	case gojq.OpMul:
		return lf * rf, true
	case gojq.OpDiv:
		if rf == 0 {
			return nil, false
		}
		return lf / rf, true
	}
	return nil, false
}

// asFloat is an int or float64 operand as jq widens it next to a float.
func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// intArith is jq's arithmetic on two ints; an overflow (where jq goes to big integers),
// a division by zero and the corner cases of -1 give up.
func intArith(op gojq.Operator, l, r int) (any, bool) {
	switch op {
	case gojq.OpAdd:
		if v := l + r; (v >= l) == (r >= 0) {
			return v, true
		}
	case gojq.OpSub:
		if v := l - r; (v <= l) == (r >= 0) {
			return v, true
		}
	case gojq.OpMul:
		if r == -1 || l == math.MinInt || r == math.MinInt {
			return nil, false
		}
		if v := l * r; r == 0 || v/r == l {
			return v, true
		}
	case gojq.OpDiv:
		if r == 0 || r == -1 {
			return nil, false
		}
		if l%r == 0 {
			return l / r, true
		}
		return float64(l) / float64(r), true
	}
	return nil, false
}

// jqNumber is a JSON number as jq reads it: an int when it is one, a float64 when it has a
// fraction or an exponent, a big integer otherwise.
func jqNumber(v json.Number) any {
	if i, err := v.Int64(); err == nil && math.MinInt <= i && i <= math.MaxInt {
		return int(i)
	}
	if strings.ContainsAny(v.String(), ".eE") {
		if f, err := v.Float64(); err == nil {
			return f
		}
	}
	if bi, ok := new(big.Int).SetString(v.String(), 10); ok {
		return bi
	}
	if strings.HasPrefix(v.String(), "-") {
		return math.Inf(-1)
	}
	return math.Inf(1)
}

// KeyPath returns the keys of a program that is a key path and nothing else (.path.id
// gives ["path", "id"]), so that a caller on a hot path can look the value up itself.
func (p *Program) KeyPath() ([]string, bool) {
	pn, ok := p.fast.(pathNode)
	return pn, ok
}

// EncodeObject runs a program that builds an object ({key: value, ...}) on input and
// returns the object as MarshalJSON would encode the result of Eval, written directly,
// without the map in between: a response mapping's answer is made to be encoded, and the
// map, its keys sorted for encoding and the walk over it for the size limit cost about as
// much as the rest of the mapping. ok is false whenever anything is out of the plain case
// (another kind of program, a repeated key, a value the direct evaluator gives up on or
// the direct encoder does not write, a result over the size limit): Eval and MarshalJSON
// then give the answer, or the error, as they always do. TestFastAgreesWithJq compares
// the two ways.
func (p *Program) EncodeObject(input any) (data []byte, ok bool) {
	o, isObject := p.fast.(*objectNode)
	if !isObject || o.order == nil {
		return nil, false
	}
	ix := rawIndexes.Get().(*rawIndex)
	defer func() {
		ix.reset()
		rawIndexes.Put(ix)
	}()
	limit := p.limits.MaxBytes
	n := 2
	b := make([]byte, 0, 128)
	b = append(b, '{')
	for i, j := range o.order {
		// A value is taken as it is from JSON text in the input where it can be (text),
		// and evaluated otherwise (v).
		var text []byte
		var v any
		raw := false
		if pn, isPath := o.vals[j].(pathNode); isPath {
			text, raw = pn.text(input, ix)
		}
		if !raw {
			if v, ok = o.vals[j].eval(input, ix); !ok || hasBig(v) {
				return nil, false
			}
		}
		if limit > 0 {
			// As fits counts the object; a text as grow counts its decoded value: a string
			// by its length, anything else as 8.
			if n += len(o.keys[j]) + 4; n > limit {
				return nil, false
			}
			fits := true
			switch {
			case !raw:
				n, fits = grow(n, v, limit)
			case text[0] == '"':
				n += len(text)
			default:
				n += 8
			}
			if !fits || n > limit {
				return nil, false
			}
		}
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = appendString(b, o.keys[j]); !ok {
			return nil, false
		}
		b = append(b, ':')
		if raw {
			b = append(b, text...)
		} else if b, ok = appendJSON(b, v); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}
