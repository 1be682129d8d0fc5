package config

import (
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
)

// typeInfo is the analysed form of a spec struct: its fields in declaration order, as the
// decoder, the JSON Schema and the reference all need them.
type typeInfo struct {
	t      reflect.Type
	fields []*fieldInfo
	byName map[string]*fieldInfo
}

func (ti *typeInfo) names() []string {
	out := make([]string, len(ti.fields))
	for i, f := range ti.fields {
		out[i] = f.name
	}
	return out
}

// fieldInfo is one field of a spec struct with its tags.
type fieldInfo struct {
	name     string // as written in YAML
	goName   string
	index    int
	typ      reflect.Type
	doc      string
	example  string
	ref      string // kind whose resource the value names
	def      string // default, as YAML text
	required bool
	enum     []string
}

// valueKind is how the decoder treats a Go type.
type valueKind int

const (
	kUnsupported valueKind = iota
	kString
	kBool
	kInt
	kUint
	kFloat
	kDuration
	kSecret
	kJSON
	kText
	kStruct
	kPointer
	kSlice
	kMap
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	secretType          = reflect.TypeFor[Secret]()
	jsonType            = reflect.TypeFor[JSON]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// classify tells how a type is decoded. The types with their own meaning come first, so that
// time.Duration is not read as an integer and a struct with UnmarshalText is not read as a
// mapping.
func classify(t reflect.Type) valueKind {
	switch t {
	case durationType:
		return kDuration
	case secretType:
		return kSecret
	case jsonType:
		return kJSON
	}
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return kText
	}
	switch t.Kind() {
	case reflect.String:
		return kString
	case reflect.Bool:
		return kBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kUint
	case reflect.Float32, reflect.Float64:
		return kFloat
	case reflect.Struct:
		return kStruct
	case reflect.Pointer:
		if classify(t.Elem()) == kPointer {
			return kUnsupported
		}
		return kPointer
	case reflect.Slice:
		return kSlice
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return kUnsupported
		}
		return kMap
	}
	return kUnsupported
}

// baseType strips pointers, slices and maps, down to the type a single value has. Tags such
// as enum and ref apply to every value of a list or map field.
func baseType(t reflect.Type) reflect.Type {
	for {
		switch classify(t) {
		case kPointer, kSlice, kMap:
			t = t.Elem()
		default:
			return t
		}
	}
}

// isScalarKind reports whether a type is written as a single YAML value.
func isScalarKind(k valueKind) bool {
	switch k {
	case kString, kBool, kInt, kUint, kFloat, kDuration, kSecret, kText:
		return true
	}
	return false
}

var fieldNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

// analyzer analyses spec structs into typeInfo, checking every tag.
type analyzer struct {
	types map[reflect.Type]*typeInfo
}

func (a *analyzer) structInfo(t reflect.Type) (*typeInfo, error) {
	if ti, ok := a.types[t]; ok {
		return ti, nil
	}
	// A type may contain itself through a slice, map or pointer (a flow step holding the
	// steps of its branches): the entry goes in before the fields are analysed, so the
	// inner use finds it, and comes out again if the analysis fails.
	ti := &typeInfo{t: t, byName: map[string]*fieldInfo{}}
	a.types[t] = ti
	ok := false
	defer func() {
		if !ok {
			delete(a.types, t)
		}
	}()
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil, fmt.Errorf("%s.%s: embedded fields are not supported; give the field a name", t.Name(), sf.Name)
		}
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		f, err := a.field(t, i, sf, name)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name(), sf.Name, err)
		}
		if _, dup := ti.byName[f.name]; dup {
			return nil, fmt.Errorf("%s.%s: yaml name %q is used twice", t.Name(), sf.Name, f.name)
		}
		ti.fields = append(ti.fields, f)
		ti.byName[f.name] = f
	}
	ok = true
	return ti, nil
}

func (a *analyzer) field(parent reflect.Type, i int, sf reflect.StructField, name string) (*fieldInfo, error) {
	if name == "" {
		return nil, fmt.Errorf(`missing yaml tag; every exported field needs one (or yaml:"-")`)
	}
	if !fieldNamePattern.MatchString(name) {
		return nil, fmt.Errorf("yaml name %q must be letters, digits and '_', starting with a letter", name)
	}
	f := &fieldInfo{
		name:    name,
		goName:  sf.Name,
		index:   i,
		typ:     sf.Type,
		doc:     strings.TrimSpace(sf.Tag.Get("doc")),
		example: sf.Tag.Get("example"),
		ref:     sf.Tag.Get("ref"),
		def:     sf.Tag.Get("default"),
	}
	if f.doc == "" {
		return nil, fmt.Errorf("missing doc tag; the reference is generated from it")
	}
	switch req := sf.Tag.Get("required"); req {
	case "", "false":
	case "true":
		f.required = true
	default:
		return nil, fmt.Errorf("required tag must be \"true\" or \"false\", got %q", req)
	}
	if err := a.check(sf.Type); err != nil {
		return nil, err
	}
	base := classify(baseType(sf.Type))
	if e := sf.Tag.Get("enum"); e != "" {
		if base != kString && base != kInt && base != kUint {
			return nil, fmt.Errorf("enum applies to string and integer fields only")
		}
		for _, v := range strings.Split(e, ",") {
			if v = strings.TrimSpace(v); v != "" {
				f.enum = append(f.enum, v)
			}
		}
	}
	if f.ref != "" {
		if !kindNamePattern.MatchString(f.ref) {
			return nil, fmt.Errorf("ref tag %q is not a kind name", f.ref)
		}
		if base != kString {
			return nil, fmt.Errorf("ref applies to string fields only")
		}
	}
	if f.def != "" {
		if f.required {
			return nil, fmt.Errorf("a required field cannot have a default")
		}
		k := classify(sf.Type)
		if k == kPointer {
			k = classify(sf.Type.Elem())
		}
		if !isScalarKind(k) || k == kSecret {
			return nil, fmt.Errorf("default applies to single values (string, number, boolean, duration) only")
		}
		// Decoding the default now proves it is valid for the field, enum included.
		var errs ErrorList
		d := &decoder{errs: &errs, budget: maxValues}
		d.value(defaultNode(f.def, Position{}), reflect.New(sf.Type).Elem(), "default", f)
		if len(errs) > 0 {
			return nil, fmt.Errorf("invalid default %q: %s", f.def, errs[0].Msg)
		}
	}
	return f, nil
}

// check verifies that the decoder supports a field type.
func (a *analyzer) check(t reflect.Type) error {
	switch classify(t) {
	case kUnsupported:
		return fmt.Errorf("field type %s is not supported (use strings, booleans, numbers, time.Duration, config.Secret, config.JSON, structs, and lists, string-keyed maps and pointers of those)", t)
	case kPointer, kSlice, kMap:
		return a.check(t.Elem())
	case kStruct:
		_, err := a.structInfo(t)
		return err
	}
	return nil
}

// defaultNode makes the node a default tag stands for. It reads like an unquoted YAML value
// and, like a substituted one, a string field takes its text as it is.
func defaultNode(text string, pos Position) *node {
	n := &node{kind: scalarNode, pos: pos, val: text, text: text, subst: true}
	resolvePlain(n)
	return n
}
