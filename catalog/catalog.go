// Package catalog implements the MessageType kind: the declared message types, each with the
// JSON Schema its messages' data must match, and the catalogue that ingestion consults to
// refuse a message that does not match before accepting it.
//
// The CloudEvents type of a message type is its metadata.name.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/causeway/causeway/config"
)

// Kind is the kind name of message type definitions.
const Kind = "MessageType"

const kindDoc = `A MessageType declares one type of message: the CloudEvents type (its name) and the
JSON Schema (draft 2020-12) that the data of every message of that type must match. A message
whose data does not match is refused with the list of violations before it is accepted.
The schema is given inline (schema) or in a file next to the definition (schemaFile); it may
not refer to other documents, so shared parts go under $defs. Format keywords such as "email"
and "date-time" are checked, not only noted.`

const kindExample = `apiVersion: causeway/v1
kind: MessageType
metadata:
  name: invoice.posted
  description: An invoice was posted in the ERP
spec:
  owner: erp
  schema:
    type: object
    required: [invoiceId, amount]
    properties:
      invoiceId: {type: string}
      amount: {type: number, minimum: 0}
      currency: {type: string, pattern: "^[A-Z]{3}$", default: EUR}`

// Spec is the spec of a MessageType.
type Spec struct {
	// Schema is the inline JSON Schema.
	Schema config.JSON `yaml:"schema" doc:"The JSON Schema that the data of every message of this type must match, written inline as YAML or JSON. Give either schema or schemaFile."`
	// SchemaFile is the path of a file holding the JSON Schema.
	SchemaFile string `yaml:"schemaFile" doc:"Path of a file holding the JSON Schema, relative to the definition file: JSON, or YAML when the name ends in .yaml or .yml (name such a file *.schema.yaml so it is not read as a definition). Give either schema or schemaFile." example:"schemas/customer.updated.json"`
	// Owner names the System that owns the type.
	Owner string `yaml:"owner" ref:"System" doc:"The system that owns the message type: the one that publishes it and decides its schema."`

	raw      []byte
	compiled *jsonschema.Schema
	fast     *fastSchema
}

var _ config.Provisioner = (*Spec)(nil)

// Register adds the MessageType kind to a registry.
func Register(r *config.Registry) error {
	return r.Register(config.Kind{Name: Kind, Doc: kindDoc, Example: kindExample, New: func() any { return new(Spec) }})
}

// Provision reads the schema (from the definition or its file) and compiles it, reporting an
// invalid schema at the line of the offending keyword.
func (s *Spec) Provision(ctx *config.Context) error {
	switch {
	case s.Schema.IsZero() && s.SchemaFile == "":
		ctx.Errorf("", "one of schema or schemaFile is required")
		return ctx.Err()
	case !s.Schema.IsZero() && s.SchemaFile != "":
		ctx.Errorf("schemaFile", "give either schema or schemaFile, not both")
		return ctx.Err()
	}
	doc := s.Schema
	// A problem in the schema is reported at its keyword; prefix and suffix say which field
	// or file the schema came from.
	prefix, suffix := "spec.schema: ", ""
	if s.SchemaFile != "" {
		path := s.SchemaFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(ctx.Dir(), path)
		}
		j, err := config.LoadJSONFile(path)
		if err != nil {
			reportFileError(ctx, err)
			return ctx.Err()
		}
		doc = j
		prefix, suffix = "", fmt.Sprintf(" (schemaFile of %s %q)", Kind, ctx.Name())
	}
	compiled, err := compile(ctx.Name(), doc.Raw)
	if err != nil {
		for _, p := range schemaProblems(ctx.Name(), err) {
			ctx.ErrorAt(doc.PosOf(p.Pointer), "%sinvalid JSON Schema%s: %s%s", prefix, at(p.Pointer), p.Message, suffix)
		}
		return ctx.Err()
	}
	s.raw, s.compiled, s.fast = doc.Raw, compiled, compileFast(doc.Raw)
	return nil
}

func at(ptr string) string {
	if ptr == "" {
		return ""
	}
	return " at " + ptr
}

// reportFileError reports a problem reading a schema file: one without a line (a missing
// file) at the schemaFile field, one inside the file where it is.
func reportFileError(ctx *config.Context, err error) {
	var list config.ErrorList
	if !errors.As(err, &list) {
		ctx.Errorf("schemaFile", "%v", err)
		return
	}
	for _, e := range list {
		if e.Pos.IsValid() {
			ctx.ErrorAt(e.Pos, "%s (schemaFile of %s %q)", e.Msg, Kind, ctx.Name())
		} else {
			ctx.Errorf("schemaFile", "%s: %s", e.Pos.File, e.Msg)
		}
	}
}

// baseURL is the made-up location schemas are compiled under. It must be hierarchical, so
// that a relative $ref resolves to another made-up location, which the loader refuses,
// instead of to a local file.
const baseURL = "causeway:///message-types/"

// errOtherDocument is what the schema loader answers for any $ref to another document: a
// schema must be complete in itself, so that validation never depends on the network or on
// files other than the definitions.
var errOtherDocument = errors.New("references to other documents are not supported; put shared definitions under $defs")

type noOtherDocuments struct{}

// Load refuses every document.
func (noOtherDocuments) Load(string) (any, error) { return nil, errOtherDocument }

func schemaURL(name string) string { return baseURL + name + ".json" }

// compile compiles a JSON Schema document, draft 2020-12 unless it says otherwise, with
// format assertions on.
func compile(name string, raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noOtherDocuments{})
	url := schemaURL(name)
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// schemaProblems turns a compilation error into problems located by JSON pointer into the
// schema.
func schemaProblems(name string, err error) []Violation {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			// The schema does not match the metaschema: report the innermost failures, one per
			// location, since the alternatives of an anyOf all fail at the same place.
			var out []Violation
			seen := map[string]bool{}
			for _, v := range leaves(ve, nil) {
				if !seen[v.Pointer] {
					seen[v.Pointer] = true
					out = append(out, v)
				}
			}
			return out
		}
	}
	var lue *jsonschema.LoadURLError
	if errors.As(err, &lue) {
		return []Violation{{Message: fmt.Sprintf("$ref %q cannot be resolved: %v", strings.TrimPrefix(lue.URL, baseURL), lue.Err)}}
	}
	// Other messages name the schema by its made-up location; within the schema's own
	// message that is noise, and other documents' locations are shown relative.
	msg := strings.ReplaceAll(err.Error(), schemaURL(name), "")
	return []Violation{{Message: strings.ReplaceAll(msg, baseURL, "")}}
}

// printer renders the validator's messages in English.
var printer = message.NewPrinter(language.English)

// leaves returns the innermost failures of a validation error: the ones that say what is
// wrong, not the "validation failed" wrappers around them. A required or
// additionalProperties failure becomes one violation per property, pointing at the property,
// which is where a person looks for it.
func leaves(e *jsonschema.ValidationError, out []Violation) []Violation {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			out = leaves(c, out)
		}
		return out
	}
	ptr := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, p := range k.Missing {
			out = append(out, Violation{Pointer: ptr + "/" + escape(p), Message: fmt.Sprintf("required property %q is missing", p)})
		}
	case *kind.DependentRequired:
		for _, p := range k.Missing {
			out = append(out, Violation{Pointer: ptr + "/" + escape(p), Message: fmt.Sprintf("property %q is missing; it is required when %q is present", p, k.Prop)})
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			out = append(out, Violation{Pointer: ptr + "/" + escape(p), Message: "property not allowed"})
		}
	case *kind.FalseSchema:
		out = append(out, Violation{Pointer: ptr, Message: "value not allowed"})
	default:
		out = append(out, Violation{Pointer: ptr, Message: e.ErrorKind.LocalizedString(printer)})
	}
	return out
}

// pointer builds an RFC 6901 JSON pointer from reference tokens.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escape(t))
	}
	return b.String()
}

func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Catalog is the set of declared message types, looked up by CloudEvents type. It is
// read-only once built and safe for concurrent use.
type Catalog struct {
	types map[string]*Type
}

// New builds the catalogue from a configuration returned by config.Load, whose MessageTypes
// are provisioned (their schemas compiled).
func New(cfg *config.Config) *Catalog {
	c := &Catalog{types: map[string]*Type{}}
	if cfg == nil {
		return c
	}
	for _, r := range cfg.ByKind(Kind) {
		spec, ok := r.Spec.(*Spec)
		if !ok || spec.compiled == nil {
			continue
		}
		c.types[r.Metadata.Name] = &Type{
			Name:        r.Metadata.Name,
			Description: r.Metadata.Description,
			Owner:       spec.Owner,
			Labels:      maps.Clone(r.Metadata.Labels),
			Schema:      slices.Clone(spec.raw),
			schema:      spec.compiled,
			fast:        spec.fast,
		}
	}
	return c
}

// Lookup returns the message type with the given CloudEvents type.
func (c *Catalog) Lookup(typ string) (*Type, bool) {
	t, ok := c.types[typ]
	return t, ok
}

// Names returns the declared types, sorted.
func (c *Catalog) Names() []string {
	names := slices.Collect(maps.Keys(c.types))
	sort.Strings(names)
	return names
}

// CompileInline compiles a JSON Schema written inside another kind's definition (an API's
// request validation, say) into a Type named name, reporting an invalid schema at the line
// of the offending keyword under field. It returns nil when the schema does not compile.
func CompileInline(ctx *config.Context, field, name string, doc config.JSON) *Type {
	compiled, err := compile(name, doc.Raw)
	if err != nil {
		for _, p := range schemaProblems(name, err) {
			ctx.ErrorAt(doc.PosOf(p.Pointer), "spec.%s: invalid JSON Schema%s: %s", field, at(p.Pointer), p.Message)
		}
		return nil
	}
	return &Type{Name: name, Schema: slices.Clone(doc.Raw), schema: compiled, fast: compileFast(doc.Raw)}
}
