package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// jsonSchemaDraft is the JSON Schema dialect of the generated schema.
const jsonSchemaDraft = "https://json-schema.org/draft/2020-12/schema"

// durationPattern matches what time.ParseDuration accepts, or a string holding a ${...}
// reference, which is resolved only when the definitions load.
const durationPattern = `^0$|^([0-9]*\.?[0-9]+(ns|us|µs|ms|s|m|h))+$|\$\{`

// JSONSchema returns the JSON Schema (draft 2020-12) of one definition document, generated
// from the registered spec structs, for editor completion and validation. The schema is a
// oneOf with one branch per kind, told apart by the kind field. Values that are not strings
// (numbers, booleans, durations, enums) also accept a string holding a ${...} reference,
// since that is how they vary between environments.
func JSONSchema(r *Registry) ([]byte, error) {
	g := &schemaGen{reg: r, open: map[reflect.Type]bool{}, recursive: map[reflect.Type]bool{}, defs: map[string]any{}}
	kinds := r.Kinds()
	names := make([]any, len(kinds))
	defs := map[string]any{
		"metadata": g.metadataSchema(),
		"substitution": map[string]any{
			"type":        "string",
			"pattern":     `\$\{`,
			"description": "A ${NAME}, ${NAME:-default} or ${secret:NAME} reference, replaced when the definitions load.",
		},
	}
	branches := make([]any, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name
		ki, _ := r.kind(k.Name)
		spec, err := g.structSchema(ki.spec)
		if err != nil {
			return nil, fmt.Errorf("config: kind %s: %w", k.Name, err)
		}
		spec["title"] = k.Name + " spec"
		spec["description"] = k.Doc
		defs[k.Name] = spec
		// The loader reads a missing or empty spec as an empty mapping, which is fine for
		// a kind without required fields and an error for the others; the branch says the
		// same.
		var specRef any = map[string]any{"$ref": "#/$defs/" + k.Name}
		required := []string{"kind"}
		if _, hasRequired := spec["required"]; hasRequired {
			required = append(required, "spec")
		} else {
			specRef = map[string]any{"anyOf": []any{specRef, map[string]any{"type": "null"}}}
		}
		branches[i] = map[string]any{
			"required": required,
			"properties": map[string]any{
				"kind": map[string]any{"const": k.Name},
				"spec": specRef,
			},
		}
	}
	for name, d := range g.defs {
		defs[name] = d
	}
	doc := map[string]any{
		"$schema":     jsonSchemaDraft,
		"title":       "Causeway definition",
		"description": "One resource definition: apiVersion, kind, metadata and the kind's spec.",
		"type":        "object",
		"required":    []string{"apiVersion", "kind", "metadata"},
		"properties": map[string]any{
			"apiVersion": map[string]any{"const": APIVersion, "description": "Version of the definition format."},
			"kind":       map[string]any{"enum": names, "description": "Kind of the resource."},
			"metadata":   map[string]any{"$ref": "#/$defs/metadata"},
			"spec":       map[string]any{"description": "The resource's specification; its fields depend on the kind."},
		},
		"additionalProperties": false,
		"$defs":                defs,
	}
	if len(branches) > 0 {
		doc["oneOf"] = branches
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("config: encoding the JSON Schema: %w", err)
	}
	return b.Bytes(), nil
}

type schemaGen struct {
	reg *Registry
	// open holds the struct types being generated; a type met again while open contains
	// itself, and is generated once into defs and referred to from every place it is used.
	open, recursive map[reflect.Type]bool
	defs            map[string]any
}

// defName is the $defs key of a recursive type: its package and name ("flow.Step").
func defName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
		pkg = pkg[i+1:]
	}
	return pkg + "." + t.Name()
}

func (g *schemaGen) metadataSchema() map[string]any {
	s, err := g.structSchema(reflect.TypeFor[Metadata]())
	if err != nil {
		// Metadata is this package's own struct; its analysis cannot fail.
		return map[string]any{"type": "object"}
	}
	props := s["properties"].(map[string]any)
	name := props["name"].(map[string]any)
	name["pattern"] = namePattern.String()
	name["maxLength"] = maxNameLength
	return s
}

func (g *schemaGen) structSchema(t reflect.Type) (map[string]any, error) {
	ref := map[string]any{"$ref": "#/$defs/" + defName(t)}
	if g.open[t] {
		g.recursive[t] = true
		return ref, nil
	}
	if g.recursive[t] {
		return ref, nil
	}
	g.open[t] = true
	s, err := g.fieldsSchema(t)
	delete(g.open, t)
	if err != nil || !g.recursive[t] {
		return s, err
	}
	g.defs[defName(t)] = s
	return ref, nil
}

func (g *schemaGen) fieldsSchema(t reflect.Type) (map[string]any, error) {
	ti, err := g.reg.typeInfo(t)
	if err != nil {
		return nil, err
	}
	props := map[string]any{}
	var required []string
	for _, f := range ti.fields {
		s, err := g.typeSchema(f.typ, f)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.name, err)
		}
		s["description"] = fieldDescription(f)
		if f.def != "" {
			s["default"] = typedValue(f.typ, f.def)
		}
		if f.example != "" && isScalarKind(classify(derefType(f.typ))) {
			s["examples"] = []any{typedValue(f.typ, f.example)}
		}
		props[f.name] = s
		if f.required {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

// orSubstitution lets a value that is not a plain string also be written as a ${...}
// reference.
func orSubstitution(s map[string]any) map[string]any {
	return map[string]any{"anyOf": []any{s, map[string]any{"$ref": "#/$defs/substitution"}}}
}

func (g *schemaGen) typeSchema(t reflect.Type, f *fieldInfo) (map[string]any, error) {
	var enum []any
	if f != nil {
		for _, e := range f.enum {
			enum = append(enum, typedValue(t, e))
		}
	}
	switch classify(t) {
	case kString:
		if len(enum) > 0 {
			return orSubstitution(map[string]any{"enum": enum}), nil
		}
		return map[string]any{"type": "string"}, nil
	case kText:
		return map[string]any{"type": "string"}, nil
	case kBool:
		return orSubstitution(map[string]any{"type": "boolean"}), nil
	case kInt, kUint:
		s := map[string]any{"type": "integer"}
		if classify(t) == kUint {
			s["minimum"] = 0
		}
		if len(enum) > 0 {
			s = map[string]any{"enum": enum}
		}
		return orSubstitution(s), nil
	case kFloat:
		return orSubstitution(map[string]any{"type": "number"}), nil
	case kDuration:
		return map[string]any{"type": "string", "pattern": durationPattern}, nil
	case kSecret:
		return map[string]any{"type": "string", "writeOnly": true}, nil
	case kJSON:
		return map[string]any{}, nil
	case kPointer:
		return g.typeSchema(t.Elem(), f)
	case kSlice:
		items, err := g.typeSchema(t.Elem(), f)
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case kMap:
		values, err := g.typeSchema(t.Elem(), f)
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "object", "additionalProperties": values}, nil
	case kStruct:
		return g.structSchema(t)
	}
	return nil, fmt.Errorf("type %s is not supported", t)
}

// fieldDescription is a field's doc with what its tags imply, shared by the JSON Schema and
// the reference so both say the same.
func fieldDescription(f *fieldInfo) string {
	parts := []string{f.doc}
	if f.ref != "" {
		parts = append(parts, fmt.Sprintf("Names a %s resource.", f.ref))
	}
	if classify(baseType(f.typ)) == kSecret {
		parts = append(parts, "Secret: write ${secret:NAME}; the value is never shown.")
	}
	if len(f.enum) > 0 {
		parts = append(parts, "One of: "+strings.Join(f.enum, ", ")+".")
	}
	return strings.Join(parts, " ")
}

// derefType strips pointers.
func derefType(t reflect.Type) reflect.Type {
	for classify(t) == kPointer {
		t = t.Elem()
	}
	return t
}

// typedValue turns a tag's text (a default, an example, an enum value) into the JSON value
// it stands for in a field of type t.
func typedValue(t reflect.Type, text string) any {
	switch classify(baseType(t)) {
	case kBool, kInt, kUint, kFloat:
		n := &node{kind: scalarNode, val: text, text: text}
		resolvePlain(n)
		if n.kind == scalarNode {
			return n.val
		}
	}
	return text
}
