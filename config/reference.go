package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
)

// Reference returns a Markdown reference of every registered kind and its fields: type,
// whether it is required, its default, whether it is a secret, its documentation and an
// example. It is generated from the same spec structs as the JSON Schema and the loader, so
// the three cannot drift apart.
func Reference(r *Registry) []byte {
	var b bytes.Buffer
	kinds := r.Kinds()
	b.WriteString("# Resource reference\n\n")
	b.WriteString("<!-- Generated from the registered kinds' spec definitions; do not edit by hand. -->\n\n")
	b.WriteString("Every definition is a YAML document with the envelope below; a file may hold several\n")
	b.WriteString("documents separated by `---`. The fields of `spec` depend on the kind.\n\n")

	b.WriteString("## Envelope\n\n")
	b.WriteString("| Field | Type | Required | Default | Description |\n|---|---|---|---|---|\n")
	row(&b, "`apiVersion`", "string", "yes", "", "Version of the definition format: always `"+APIVersion+"`.")
	var links []string
	for _, k := range kinds {
		links = append(links, fmt.Sprintf("[`%s`](#%s)", k.Name, strings.ToLower(k.Name)))
	}
	row(&b, "`kind`", "string", "yes", "", "Kind of the resource, one of: "+strings.Join(links, ", ")+".")
	if ti, err := r.typeInfo(reflect.TypeFor[Metadata]()); err == nil {
		writeFieldRows(&b, r, ti, "metadata", nil)
	}
	row(&b, "`spec`", "object", "depends on the kind", "", "The kind's fields, listed under each kind below.")
	b.WriteString("\n")

	b.WriteString("## Kinds\n\n")
	if len(kinds) == 0 {
		b.WriteString("No kinds are registered.\n")
	} else {
		b.WriteString("| Kind | Describes |\n|---|---|\n")
	}
	for _, k := range kinds {
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", k.Name, strings.ToLower(k.Name), cell(firstSentence(k.Doc)))
	}
	for _, k := range kinds {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", k.Name, strings.TrimSpace(k.Doc))
		ki, _ := r.kind(k.Name)
		ti, err := r.typeInfo(ki.spec)
		if err == nil && len(ti.fields) > 0 {
			b.WriteString("| Field | Type | Required | Default | Description |\n|---|---|---|---|---|\n")
			writeFieldRows(&b, r, ti, "spec", map[reflect.Type]string{ki.spec: "spec"})
		} else {
			b.WriteString("This kind has no spec fields.\n")
		}
		if ex := strings.TrimSpace(k.Example); ex != "" {
			fmt.Fprintf(&b, "\nExample:\n\n```yaml\n%s\n```\n", ex)
		}
	}
	return b.Bytes()
}

// writeFieldRows writes one table row per field, descending into nested objects so that
// every field appears with its full path. open maps the struct types being written to their
// paths: a type that contains itself is written once, and its inner uses say where.
func writeFieldRows(b *bytes.Buffer, r *Registry, ti *typeInfo, prefix string, open map[reflect.Type]string) {
	for _, f := range ti.fields {
		path := prefix + "." + f.name
		req := "no"
		if f.required {
			req = "yes"
		}
		def := ""
		if f.def != "" {
			def = code(f.def)
		}
		desc := fieldDescription(f)
		if f.example != "" {
			desc += " Example: " + code(f.example) + "."
		}
		inner, suffix := elemType(f.typ)
		if at, ok := open[inner]; ok {
			desc += " Each has the fields of " + code(at) + "."
		}
		row(b, "`"+path+"`", cell(typeName(f.typ, f)), req, def, cell(desc))
		if _, ok := open[inner]; ok || classify(inner) != kStruct {
			continue
		}
		if nested, err := r.typeInfo(inner); err == nil {
			if open == nil {
				open = map[reflect.Type]string{}
			}
			open[inner] = path + suffix
			writeFieldRows(b, r, nested, path+suffix, open)
			delete(open, inner)
		}
	}
}

// elemType strips pointers, slices and maps from a field's type, and says what they add to
// a path: "[]" for a list, ".<name>" for a map.
func elemType(t reflect.Type) (reflect.Type, string) {
	inner, suffix := t, ""
	for {
		switch classify(inner) {
		case kPointer:
			inner = inner.Elem()
			continue
		case kSlice:
			inner, suffix = inner.Elem(), suffix+"[]"
			continue
		case kMap:
			inner, suffix = inner.Elem(), suffix+".<name>"
			continue
		}
		return inner, suffix
	}
}

// row writes one table row, leaving empty cells empty.
func row(b *bytes.Buffer, cells ...string) {
	b.WriteByte('|')
	for _, c := range cells {
		if c != "" {
			b.WriteString(" " + c)
		}
		b.WriteString(" |")
	}
	b.WriteByte('\n')
}

// typeName describes a field's type for people.
func typeName(t reflect.Type, f *fieldInfo) string {
	switch classify(t) {
	case kString:
		if f != nil && f.ref != "" {
			return fmt.Sprintf("name of a [%s](#%s)", f.ref, strings.ToLower(f.ref))
		}
		return "string"
	case kText:
		return "string"
	case kBool:
		return "boolean"
	case kInt, kUint:
		return "integer"
	case kFloat:
		return "number"
	case kDuration:
		return "duration"
	case kSecret:
		return "secret"
	case kJSON:
		return "any value (JSON)"
	case kPointer:
		return typeName(t.Elem(), f)
	case kSlice:
		return "list of " + typeName(t.Elem(), f)
	case kMap:
		return "map of " + typeName(t.Elem(), f)
	case kStruct:
		return "object"
	}
	return t.String()
}

// code formats a value as inline code, choosing a fence that the value itself does not
// contain.
func code(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// cell makes text safe inside a Markdown table cell: one line, no column separators, and
// outside code spans no characters that Markdown would read as HTML or emphasis, so that
// "agent:<name>" shows as written.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	parts := strings.Split(s, "`")
	for i := 0; i < len(parts); i += 2 {
		parts[i] = markdownEscaper.Replace(parts[i])
	}
	return strings.ReplaceAll(strings.Join(parts, "`"), "|", `\|`)
}

var markdownEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`)

// firstSentence returns the text up to the first full stop followed by a space or the end.
func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
