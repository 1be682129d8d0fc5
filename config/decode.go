package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxValues bounds how many values one document may expand to. Aliases let a few lines of
// YAML stand for billions of values; real definitions have thousands at most.
const maxValues = 200_000

var (
	posInf = math.Inf(1)
	negInf = math.Inf(-1)
	nan    = math.NaN()
)

// refUse is a value that names another resource, checked once every file is read.
type refUse struct {
	kind, name string
	path       string // the field that holds the reference, e.g. "spec.owner"
	pos        Position
}

// decoder decodes nodes into Go values by reflection, reporting every problem at the
// position of the value it concerns.
type decoder struct {
	reg    *Registry
	sub    *substituter
	errs   *ErrorList
	kind   string              // kind of the document, for messages about its spec
	fields map[string]Position // path of every decoded value, for Context.Pos
	refs   []refUse
	budget int
	spent  bool
}

// fail reports a problem about the value at path. The path ("spec.items[0].sku") comes first
// so that a message still says which field it is about when read away from the file.
func (d *decoder) fail(pos Position, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	*d.errs = append(*d.errs, &Error{Pos: pos, Msg: msg})
}

func (d *decoder) typeError(n *node, path, want string) {
	hint := ""
	if strings.HasPrefix(want, "a string") && n.kind == scalarNode {
		hint = " (quote it to use it as text)"
	}
	d.fail(n.pos, path, "expected %s, got %s%s", want, n.describe(), hint)
}

// spend counts one value against the document's budget.
func (d *decoder) spend(n *node) bool {
	if d.budget <= 0 {
		if !d.spent {
			d.spent = true
			*d.errs = append(*d.errs, errorf(n.pos, "document expands to more than %d values (through aliases?)", maxValues))
		}
		return false
	}
	d.budget--
	return true
}

// where names the object a key belongs to, for "unknown field" messages.
func (d *decoder) where(path string) string {
	if d.kind != "" && (path == "spec" || strings.HasPrefix(path, "spec.") || strings.HasPrefix(path, "spec[")) {
		return d.kind + " " + path
	}
	return path
}

// value decodes n into v. f is the field being decoded, for its enum and ref tags; it is nil
// for values that are not struct fields.
func (d *decoder) value(n *node, v reflect.Value, path string, f *fieldInfo) {
	if !d.spend(n) {
		return
	}
	if d.fields != nil {
		d.fields[path] = n.pos
	}
	if n.bad || n.kind == nullNode {
		return
	}
	k := classify(v.Type())
	if n.subst && n.kind == scalarNode && (k == kBool || k == kInt || k == kUint || k == kFloat) {
		if _, quoted := n.val.(string); quoted {
			// A substituted value takes the type of the field it lands in, quoted or not:
			// "${PORT}" must be quoted inside a flow mapping, and the person setting PORT
			// means a number either way.
			cp := *n
			resolvePlain(&cp)
			if cp.kind == nullNode {
				return
			}
			n = &cp
		}
	}
	if n.secret && k != kSecret {
		d.fail(n.pos, path, "${secret:...} can only be used in a secret field; this field would hold the value as plain text")
		return
	}
	switch k {
	case kSecret:
		d.secret(n, v, path)
	case kJSON:
		if j, ok := d.json(n, path); ok {
			v.Set(reflect.ValueOf(j))
		}
	case kDuration:
		d.duration(n, v, path)
	case kText:
		if s, ok := d.text(n, path, "a string"); ok {
			if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
				d.fail(n.pos, path, "%v", err)
			}
		}
	case kString:
		if s, ok := d.text(n, path, "a string"); ok {
			v.SetString(s)
			d.checkValue(n, s, path, f)
		}
	case kBool:
		if b, ok := n.val.(bool); ok && n.kind == scalarNode {
			v.SetBool(b)
		} else {
			d.typeError(n, path, "a boolean (true or false)")
		}
	case kInt, kUint:
		d.integer(n, v, path, f)
	case kFloat:
		d.float(n, v, path)
	case kPointer:
		p := reflect.New(v.Type().Elem())
		d.value(n, p.Elem(), path, f)
		v.Set(p)
	case kSlice:
		d.slice(n, v, path, f)
	case kMap:
		d.mapping(n, v, path, f)
	case kStruct:
		d.structure(n, v, path)
	default:
		d.fail(n.pos, path, "internal error: field type %s cannot be decoded", v.Type())
	}
}

// text returns a scalar's text for string-like fields.
func (d *decoder) text(n *node, path, want string) (string, bool) {
	if n.kind == scalarNode {
		if _, ok := n.val.(string); ok || n.subst {
			return n.text, true
		}
	}
	d.typeError(n, path, want)
	return "", false
}

// checkValue applies the enum and ref tags to a decoded single value.
func (d *decoder) checkValue(n *node, s, path string, f *fieldInfo) {
	if f == nil {
		return
	}
	if len(f.enum) > 0 && !slices.Contains(f.enum, s) {
		msg := fmt.Sprintf("must be one of %s, got %s", quoteList(f.enum), quoteShort(s))
		if k := classify(baseType(f.typ)); k == kInt || k == kUint {
			msg = fmt.Sprintf("must be one of %s, got %s", strings.Join(f.enum, ", "), s)
		}
		if sug := suggest(s, f.enum); sug != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sug)
		}
		d.fail(n.pos, path, "%s", msg)
		return
	}
	if f.ref != "" && s != "" {
		d.refs = append(d.refs, refUse{kind: f.ref, name: s, path: path, pos: n.pos})
	}
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (d *decoder) secret(n *node, v reflect.Value, path string) {
	if n.kind != scalarNode {
		d.typeError(n, path, "a secret (a single value, usually ${secret:NAME})")
		return
	}
	if !n.secret {
		v.Set(reflect.ValueOf(NewSecret(n.text)))
		return
	}
	if d.sub == nil || d.sub.skipSecrets {
		// The references were checked for syntax when the file was read; that is all a run
		// without secrets can check.
		return
	}
	x := d.sub.expand(n.text, true)
	for _, p := range x.problems {
		d.fail(n.pos, path, "%s", p)
	}
	if len(x.problems) == 0 {
		v.Set(reflect.ValueOf(NewSecret(x.out)))
	}
}

func (d *decoder) duration(n *node, v reflect.Value, path string) {
	const want = `a duration such as "500ms", "5s" or "1h30m"`
	s, ok := n.val.(string)
	if n.kind != scalarNode || !ok && !n.subst {
		d.typeError(n, path, want)
		return
	}
	if n.subst {
		s = n.text
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.fail(n.pos, path, "expected %s, got %s", want, quoteShort(s))
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) integer(n *node, v reflect.Value, path string, f *fieldInfo) {
	if n.kind != scalarNode {
		d.typeError(n, path, "an integer")
		return
	}
	bits := v.Type().Bits()
	unsigned := classify(v.Type()) == kUint
	var lo, hi string
	if unsigned {
		lo, hi = "0", strconv.FormatUint(math.MaxUint64>>(64-bits), 10)
	} else {
		lo, hi = strconv.FormatInt(math.MinInt64>>(64-bits), 10), strconv.FormatInt(math.MaxInt64>>(64-bits), 10)
	}
	outOfRange := func() { d.fail(n.pos, path, "%s is out of range (%s to %s)", n.text, lo, hi) }
	switch x := n.val.(type) {
	case int64:
		if unsigned {
			if x < 0 || v.OverflowUint(uint64(x)) {
				outOfRange()
				return
			}
			v.SetUint(uint64(x))
		} else {
			if v.OverflowInt(x) {
				outOfRange()
				return
			}
			v.SetInt(x)
		}
	case uint64:
		switch {
		case unsigned && !v.OverflowUint(x):
			v.SetUint(x)
		case !unsigned && x <= math.MaxInt64 && !v.OverflowInt(int64(x)):
			v.SetInt(int64(x))
		default:
			outOfRange()
			return
		}
	default:
		if n.bigInt {
			outOfRange()
		} else {
			d.typeError(n, path, "an integer")
		}
		return
	}
	if f != nil && len(f.enum) > 0 {
		var s string
		if unsigned {
			s = strconv.FormatUint(v.Uint(), 10)
		} else {
			s = strconv.FormatInt(v.Int(), 10)
		}
		d.checkValue(n, s, path, f)
	}
}

func (d *decoder) float(n *node, v reflect.Value, path string) {
	if n.kind != scalarNode {
		d.typeError(n, path, "a number")
		return
	}
	var x float64
	switch val := n.val.(type) {
	case int64:
		x = float64(val)
	case uint64:
		x = float64(val)
	case float64:
		x = val
	default:
		d.typeError(n, path, "a number")
		return
	}
	if v.OverflowFloat(x) {
		d.fail(n.pos, path, "%s is out of range", n.text)
		return
	}
	v.SetFloat(x)
}

func (d *decoder) slice(n *node, v reflect.Value, path string, f *fieldInfo) {
	if n.kind != sequenceNode {
		d.typeError(n, path, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.items), len(n.items))
	for i, item := range n.items {
		d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), f)
	}
	v.Set(s)
}

func (d *decoder) mapping(n *node, v reflect.Value, path string, f *fieldInfo) {
	if n.kind != mappingNode {
		d.typeError(n, path, "a mapping")
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.entries))
	for _, e := range n.entries {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(e.value, elem, mapPath(path, e.key), f)
		m.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

// MapPath appends a map key to a field path, as the decoder writes it in messages and as
// Context.Pos and Context.Errorf find it: "headers.tenant", or headers["X-Tenant"] for a key
// that would make the path ambiguous.
func MapPath(path, key string) string { return mapPath(path, key) }

// mapPath appends a map key to a path, quoting keys that would make the path ambiguous.
func mapPath(path, key string) string {
	if fieldNamePattern.MatchString(key) || (key != "" && strings.Trim(key, "abcdefghijklmnopqrstuvwxyz0123456789-_") == "") {
		return path + "." + key
	}
	return fmt.Sprintf("%s[%q]", path, key)
}

func (d *decoder) structure(n *node, v reflect.Value, path string) {
	ti, err := d.reg.typeInfo(v.Type())
	if err != nil {
		d.fail(n.pos, path, "internal error: %v", err)
		return
	}
	if n.kind != mappingNode {
		d.typeError(n, path, "a mapping")
		return
	}
	present := map[string]bool{}
	for _, e := range n.entries {
		f := ti.byName[e.key]
		if f == nil {
			msg := fmt.Sprintf("unknown field %s in %s", quoteShort(e.key), d.where(path))
			if sug := suggest(e.key, ti.names()); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			*d.errs = append(*d.errs, &Error{Pos: e.keyPos, Msg: msg})
			continue
		}
		fp := path + "." + f.name
		if e.value.kind == nullNode && !e.value.bad {
			// An empty value ("key:" or "key: null") means the same as leaving the key out,
			// except that a required field written empty is reported where it is written.
			if f.required {
				present[f.name] = true
				d.fail(e.keyPos, fp, "required field is empty")
			}
			continue
		}
		present[f.name] = true
		d.value(e.value, v.Field(f.index), fp, f)
	}
	for _, f := range ti.fields {
		if present[f.name] {
			continue
		}
		fp := path + "." + f.name
		switch {
		case f.required:
			d.fail(n.pos, fp, "required field missing")
		case f.def != "":
			d.value(defaultNode(f.def, n.pos), v.Field(f.index), fp, f)
		default:
			d.defaults(v.Field(f.index), fp, n.pos)
		}
	}
}

// defaults fills the defaults of a nested struct that was left out entirely, so that a
// default means the same whether or not its parent object is written.
func (d *decoder) defaults(v reflect.Value, path string, pos Position) {
	if classify(v.Type()) != kStruct {
		return
	}
	ti, err := d.reg.typeInfo(v.Type())
	if err != nil {
		return
	}
	for _, f := range ti.fields {
		fp := path + "." + f.name
		if f.def != "" {
			d.value(defaultNode(f.def, pos), v.Field(f.index), fp, f)
		} else {
			d.defaults(v.Field(f.index), fp, pos)
		}
	}
}

// parseYAMLInt parses an integer written as the YAML 1.2 core schema allows: decimal (a
// leading zero does not make it octal), 0o octal or 0x hexadecimal.
func parseYAMLInt(s string) (any, bool) {
	base, digits := 10, s
	switch {
	case strings.HasPrefix(s, "0o"):
		base, digits = 8, s[2:]
	case strings.HasPrefix(s, "0x"):
		base, digits = 16, s[2:]
	}
	if i, err := strconv.ParseInt(digits, base, 64); err == nil {
		return i, true
	}
	if u, err := strconv.ParseUint(strings.TrimPrefix(digits, "+"), base, 64); err == nil {
		return u, true
	}
	return nil, false
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
