package catalog_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

func registry(t testing.TB) *config.Registry {
	t.Helper()
	r := config.NewRegistry()
	if err := catalog.Register(r); err != nil {
		t.Fatal(err)
	}
	if err := system.Register(r); err != nil {
		t.Fatal(err)
	}
	return r
}

// load writes files into a temporary directory and loads it. Paths in the returned error
// are relative to that directory.
func load(t testing.TB, files map[string]string) (*config.Config, error) {
	t.Helper()
	dir := t.TempDir()
	for rel, content := range files {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(dir, config.Options{Registry: registry(t)})
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	}
	return cfg, nil
}

const orderCreated = `apiVersion: causeway/v1
kind: MessageType
metadata:
  name: order.created
  description: An order was placed in the web shop
  labels: {team: sales}
spec:
  owner: webshop
  schema:
    type: object
    required: [orderId, customer, items, total]
    additionalProperties: false
    properties:
      orderId: {type: string, minLength: 1}
      customer:
        type: object
        required: [email]
        properties:
          email: {type: string, format: email}
      items:
        type: array
        minItems: 1
        items:
          type: object
          required: [sku, qty]
          properties:
            sku: {type: string}
            qty: {type: integer, minimum: 1}
      total: {type: number, minimum: 0}
      status: {enum: [new, paid, shipped]}
---
apiVersion: causeway/v1
kind: System
metadata: {name: webshop}
`

func TestProvisionProblems(t *testing.T) {
	head := "apiVersion: causeway/v1\nkind: MessageType\nmetadata: {name: t}\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"neither", map[string]string{"t.yaml": head + "spec: {owner: ''}\n"},
			"t.yaml:4:7: spec: one of schema or schemaFile is required"},
		{"both", map[string]string{"t.yaml": head + "spec:\n  schema: {type: object}\n  schemaFile: s.json\n"},
			"t.yaml:6:15: spec.schemaFile: give either schema or schemaFile, not both"},
		{"bad type", map[string]string{"t.yaml": head + "spec:\n  schema:\n    type: objekt\n"},
			"t.yaml:6:11: spec.schema: invalid JSON Schema at /type: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'"},
		{"nested bad keyword", map[string]string{"t.yaml": head + "spec:\n  schema:\n    properties:\n      total: {minimum: x}\n"},
			"t.yaml:7:24: spec.schema: invalid JSON Schema at /properties/total/minimum: got string, want number"},
		{"bad regex", map[string]string{"t.yaml": head + "spec:\n  schema: {pattern: '['}\n"},
			"t.yaml:5:21: spec.schema: invalid JSON Schema at /pattern: '[' is not valid regex"},
		{"not a schema", map[string]string{"t.yaml": head + "spec:\n  schema: '{\"type\": \"object\"}'\n"},
			"t.yaml:5:11: spec.schema: invalid JSON Schema: got string, want boolean or object"},
		{"remote ref", map[string]string{"t.yaml": head + "spec:\n  schema: {$ref: 'https://example.com/s.json'}\n"},
			`t.yaml:5:11: spec.schema: invalid JSON Schema: $ref "https://example.com/s.json" cannot be resolved: references to other documents are not supported; put shared definitions under $defs`},
		{"relative ref", map[string]string{"t.yaml": head + "spec:\n  schema: {$ref: 'other.json'}\n", "other.json": "{}"},
			`t.yaml:5:11: spec.schema: invalid JSON Schema: $ref "other.json" cannot be resolved: references to other documents are not supported`},
		{"missing def", map[string]string{"t.yaml": head + "spec:\n  schema: {$ref: '#/$defs/nope'}\n"},
			`t.yaml:5:11: spec.schema: invalid JSON Schema: json-pointer in "#/$defs/nope" not found`},
		{"missing file", map[string]string{"t.yaml": head + "spec: {schemaFile: schemas/nope.json}\n"},
			"t.yaml:4:20: spec.schemaFile: schemas/nope.json: cannot read file: no such file or directory"},
		{"file not JSON", map[string]string{"t.yaml": head + "spec: {schemaFile: s.json}\n", "s.json": "{\n  \"type\": object\n}\n"},
			`s.json:2:11: invalid JSON: invalid character 'o' looking for beginning of value (schemaFile of MessageType "t")`},
		{"file with bad schema", map[string]string{"sub/t.yaml": head + "spec: {schemaFile: ../schemas/t.schema.yaml}\n", "schemas/t.schema.yaml": "type: object\nproperties:\n  a: {type: strin}\n"},
			`schemas/t.schema.yaml:3:13: invalid JSON Schema at /properties/a/type: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string' (schemaFile of MessageType "t")`},
		{"owner undefined", map[string]string{"t.yaml": head + "spec: {owner: erp, schema: true}\n"},
			`t.yaml:4:15: spec.owner: System "erp" is not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.files)
			if err == nil {
				t.Fatal("loaded without problems")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	cfg, err := load(t, map[string]string{
		"types.yaml": orderCreated,
		"customer.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: customer.updated}
spec: {schemaFile: schemas/customer.updated.json}
`,
		"schemas/customer.updated.json": `{"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := catalog.New(cfg)
	if got := c.Names(); !reflect.DeepEqual(got, []string{"customer.updated", "order.created"}) {
		t.Errorf("Names() = %v", got)
	}
	typ, ok := c.Lookup("order.created")
	if !ok {
		t.Fatal("order.created not found")
	}
	if typ.Name != "order.created" || typ.Description != "An order was placed in the web shop" || typ.Owner != "webshop" || typ.Labels["team"] != "sales" {
		t.Errorf("type = %+v", typ)
	}
	if !strings.HasPrefix(string(typ.Schema), `{"type":"object","required":["orderId"`) {
		t.Errorf("schema = %s", typ.Schema)
	}
	cu, _ := c.Lookup("customer.updated")
	if err := cu.Validate([]byte(`{"id": "c-1"}`)); err != nil {
		t.Errorf("valid customer.updated refused: %v", err)
	}
	if _, ok := c.Lookup("order.deleted"); ok {
		t.Error("found an undeclared type")
	}
	if empty := catalog.New(nil); len(empty.Names()) != 0 {
		t.Error("catalog of nil config")
	}
}

func orderType(t testing.TB) *catalog.Type {
	t.Helper()
	cfg, err := load(t, map[string]string{"types.yaml": orderCreated})
	if err != nil {
		t.Fatal(err)
	}
	typ, ok := catalog.New(cfg).Lookup("order.created")
	if !ok {
		t.Fatal("order.created not found")
	}
	return typ
}

const validOrder = `{"orderId": "o-1001", "customer": {"email": "ada@example.com"},
 "items": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 1}], "total": 59.90, "status": "new"}`

func TestValidate(t *testing.T) {
	typ := orderType(t)
	if err := typ.Validate([]byte(validOrder)); err != nil {
		t.Fatalf("valid order refused: %v", err)
	}
	for _, tc := range []struct {
		name, data string
		want       []catalog.Violation
	}{
		{"missing required", `{"orderId": "o-1", "customer": {"email": "a@b.c"}, "items": [{"sku": "a", "qty": 1}]}`,
			[]catalog.Violation{{Pointer: "/total", Message: `required property "total" is missing`}}},
		{"wrong types", `{"orderId": 1, "customer": {"email": "a@b.c"}, "items": [{"sku": "a", "qty": 1}], "total": "12"}`,
			[]catalog.Violation{{Pointer: "/orderId", Message: "got number, want string"}, {Pointer: "/total", Message: "got string, want number"}}},
		{"enum", `{"orderId": "o", "customer": {"email": "a@b.c"}, "items": [{"sku": "a", "qty": 1}], "total": 1, "status": "lost"}`,
			[]catalog.Violation{{Pointer: "/status", Message: "value must be one of 'new', 'paid', 'shipped'"}}},
		{"nested array", `{"orderId": "o", "customer": {"email": "a@b.c"}, "items": [{"sku": "a", "qty": 1}, {"qty": 0}, {"sku": 7, "qty": 2}], "total": 1}`,
			[]catalog.Violation{
				{Pointer: "/items/1/qty", Message: "minimum: got 0, want 1"},
				{Pointer: "/items/1/sku", Message: `required property "sku" is missing`},
				{Pointer: "/items/2/sku", Message: "got number, want string"},
			}},
		{"format and extra property", `{"orderId": "o", "customer": {"email": "not an email"}, "items": [{"sku": "a", "qty": 1}], "total": 1, "note": "x"}`,
			[]catalog.Violation{{Pointer: "/customer/email", Message: "'not an email' is not valid email: missing @"}, {Pointer: "/note", Message: "property not allowed"}}},
		{"not an object", `[1, 2]`,
			[]catalog.Violation{{Pointer: "", Message: "got array, want object"}}},
		{"null", "",
			[]catalog.Violation{{Pointer: "", Message: "got null, want object"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			if tc.data != "" {
				data = []byte(tc.data)
			}
			err := typ.Validate(data)
			var ve *catalog.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want a *ValidationError, got %v", err)
			}
			if ve.Type != "order.created" || !reflect.DeepEqual(ve.Violations, tc.want) {
				t.Errorf("violations\n%q\nwant\n%q", ve.Violations, tc.want)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	typ := orderType(t)
	err := typ.Validate([]byte(`{"orderId": "o", "customer": {}, "items": [{"qty": 1}], "total": -1}`))
	want := `data does not match schema of "order.created": /customer/email: required property "email" is missing; /items/0/sku: required property "sku" is missing; /total: minimum: got -1, want 0`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	err = typ.Validate([]byte(`{"orderId": `))
	if !errors.Is(err, catalog.ErrInvalidJSON) || !strings.Contains(err.Error(), `data of "order.created"`) {
		t.Errorf("invalid JSON: %v", err)
	}
	if err := typ.Validate([]byte(validOrder + " trailing")); !errors.Is(err, catalog.ErrInvalidJSON) {
		t.Errorf("trailing data: %v", err)
	}
}

// BenchmarkValidate measures the ingestion-path check of one typical order.
func BenchmarkValidate(b *testing.B) {
	typ := orderType(b)
	data := []byte(validOrder)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := typ.Validate(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestValidateValidAllocatesNothing checks that accepting a typical order takes the fast
// path, which allocates nothing, rather than decoding the data for the full validator.
func TestValidateValidAllocatesNothing(t *testing.T) {
	typ := orderType(t)
	data := []byte(validOrder)
	allocs := testing.AllocsPerRun(100, func() {
		if err := typ.Validate(data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Validate of a valid order allocates %v times", allocs)
	}
}

// BenchmarkValidateInvalid measures refusing an order, which builds the violation list.
func BenchmarkValidateInvalid(b *testing.B) {
	typ := orderType(b)
	data := []byte(`{"orderId": 1, "customer": {}, "items": [{"qty": 0}], "total": "x"}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := typ.Validate(data); err == nil {
			b.Fatal("accepted")
		}
	}
}

func TestValidationErrorIsBounded(t *testing.T) {
	typ := orderType(t)
	items := strings.Repeat(`{"qty": 0},`, 30)
	err := typ.Validate([]byte(`{"orderId": "o", "customer": {"email": "a@b.c"}, "total": 1, "items": [` + strings.TrimSuffix(items, ",") + `]}`))
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 60 {
		t.Fatalf("want 60 violations, got %v", err)
	}
	if !strings.HasSuffix(err.Error(), "; and 40 more") || strings.Count(err.Error(), ";") != 20 {
		t.Errorf("message not bounded: %s", err)
	}
	if err := (&catalog.Type{Name: "x"}).Validate([]byte(`{}`)); err == nil {
		t.Error("a type without a compiled schema accepted data")
	}
}
