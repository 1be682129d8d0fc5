package expr

import (
	"encoding/json"
	"math"
	"math/big"
	"slices"
	"strings"

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
	eval(in any) (v any, ok bool)
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

func (p pathNode) eval(v any) (any, bool) {
	for _, k := range p {
		switch o := v.(type) {
		case nil:
			return nil, true
		case map[string]any:
			v = o[k]
		default:
			return nil, false
		}
	}
	return v, true
}

// constNode is a literal.
type constNode struct{ v any }

func (c constNode) eval(any) (any, bool) { return c.v, true }

// objectNode is {key: value, ...} with literal keys.
type objectNode struct {
	keys []string
	vals []fastNode
	// order is the keys' indexes in the order MarshalJSON writes them (sorted), nil when
	// a key repeats.
	order []int
}

func (o *objectNode) eval(in any) (any, bool) {
	out := make(map[string]any, len(o.keys))
	for i, k := range o.keys {
		v, ok := o.vals[i].eval(in)
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

func (a *arithNode) eval(in any) (any, bool) {
	lv, ok := a.l.eval(in)
	if !ok {
		return nil, false
	}
	rv, ok := a.r.eval(in)
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
	limit := p.limits.MaxBytes
	n := 2
	b := make([]byte, 0, 128)
	b = append(b, '{')
	for i, j := range o.order {
		v, ok := o.vals[j].eval(input)
		if !ok || hasBig(v) {
			return nil, false
		}
		if limit > 0 {
			// As fits counts the object.
			if n += len(o.keys[j]) + 4; n > limit {
				return nil, false
			}
			if n, ok = grow(n, v, limit); !ok {
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
		if b, ok = appendJSON(b, v); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}
