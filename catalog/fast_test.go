package catalog

import (
	"strings"
	"testing"
)

// orderSchema is the order.created schema of the package's other tests and benchmarks,
// as JSON, so that the fast path is tested on the schema it is measured on.
const orderSchema = `{"type": "object", "required": ["orderId", "customer", "items", "total"],
 "additionalProperties": false,
 "properties": {
  "orderId": {"type": "string", "minLength": 1},
  "customer": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}},
  "items": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["sku", "qty"],
    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}},
  "total": {"type": "number", "minimum": 0},
  "status": {"enum": ["new", "paid", "shipped"]}}}`

// orderPayload is a valid order, the one the benchmarks validate.
const orderPayload = `{"orderId": "o-1001", "customer": {"email": "ada@example.com"},
 "items": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 1}], "total": 59.90, "status": "new"}`

// fullAccepts reports whether the full validator accepts data against schema, failing the
// test when the schema does not compile.
func fullAccepts(tb testing.TB, schema, data string) bool {
	tb.Helper()
	sch, err := compile("t", []byte(schema))
	if err != nil {
		tb.Fatalf("schema %s does not compile: %v", schema, err)
	}
	v, err := decodeData([]byte(data))
	return err == nil && sch.Validate(v) == nil
}

func TestCompileFastUnsupported(t *testing.T) {
	for _, schema := range []string{
		`{"$ref": "#/$defs/a", "$defs": {"a": true}}`,
		`{"$defs": {"a": true}}`,
		`{"allOf": [true]}`, `{"anyOf": [true]}`, `{"oneOf": [true]}`, `{"not": false}`,
		`{"if": true, "then": true, "else": true}`,
		`{"patternProperties": {"a": true}}`,
		`{"unevaluatedProperties": false}`, `{"unevaluatedItems": false}`,
		`{"dependentRequired": {"a": ["b"]}}`, `{"dependentSchemas": {"a": true}}`,
		`{"prefixItems": [true]}`, `{"contains": true}`, `{"propertyNames": true}`,
		`{"minProperties": 1}`, `{"maxProperties": 1}`, `{"uniqueItems": true}`,
		`{"multipleOf": 2}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#"}`,
		`{"properties": {"a": {"$schema": "https://json-schema.org/draft/2020-12/schema"}}}`,
		`{"properties": {"a": {"$id": "a"}}}`,
		`{"format": "date-time"}`, `{"format": "uuid"}`,
		`{"enum": [1, "a"]}`, `{"enum": [{"a": 1}]}`, `{"const": 1}`, `{"const": [1]}`,
		`{"minimum": 0.1234567890123456}`, `{"maximum": 1e400}`, `{"minLength": 1.0}`,
		`{"type": "objekt"}`, `{"type": []}`, `{"items": [true]}`, `{"pattern": "["}`,
		`{"contentEncoding": "base64"}`, `{"x-custom": 1}`,
		`{"required": ["p"` + manyNames(64) + `]}`,
		`1`, `"a"`, `null`, `not json`,
	} {
		if compileFast([]byte(schema)) != nil {
			t.Errorf("compileFast(%s) is not nil", schema)
		}
	}
	for _, schema := range []string{
		`true`, `false`, `{}`, orderSchema,
		`{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "title": "t", "description": "d",
		  "$comment": "c", "default": 1, "examples": [1], "deprecated": true, "readOnly": false, "writeOnly": false}`,
		`{"required": [` + manyNames(64)[1:] + `]}`,
	} {
		if compileFast([]byte(schema)) == nil {
			t.Errorf("compileFast(%s) is nil", schema)
		}
	}
}

// manyNames returns n distinct quoted property names, each preceded by a comma.
func manyNames(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`,"n`)
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(`"`)
	}
	return b.String()
}

func TestFastValid(t *testing.T) {
	for _, tc := range []struct {
		schema, data string
		fast         bool // what valid reports
		full         bool // what the full validator reports
	}{
		{`true`, `{"a": [1, "x"]}`, true, true},
		{`false`, `1`, false, false},
		{`{}`, `null`, true, true},
		{`{"type": "string"}`, `"a\n"`, true, true},
		{`{"type": "string"}`, `1`, false, false},
		{`{"type": ["string", "null"]}`, `null`, true, true},
		{`{"type": ["string", "null"]}`, `false`, false, false},
		{`{"type": "boolean"}`, `true`, true, true},
		{`{"type": "number"}`, `-1.5e3`, true, true},
		{`{"type": "integer"}`, `12`, true, true},
		{`{"type": "integer"}`, `1.0`, true, true},
		{`{"type": "integer"}`, `1.5e1`, true, true},
		{`{"type": "integer"}`, `15e-1`, false, false},
		{`{"type": "integer"}`, `0.0e-7`, true, true},
		{`{"type": "integer"}`, `1.5`, false, false},
		{`{"type": "integer"}`, `1e99999`, false, true}, // exponent too long to judge
		{`{"type": "object"}`, `[]`, false, false},
		{`{"type": "array"}`, `[]`, true, true},
		{`{"properties": {"a": {"type": "string"}}}`, `{"a": "x", "b": 1}`, true, true},
		{`{"properties": {"a": {"type": "string"}}}`, `{"a": 1}`, false, false},
		{`{"properties": {"a": {"type": "string"}}}`, `{"a": "x", "a": "y"}`, true, true},
		{`{"properties": {"a": {"type": "string"}}}`, `{"a": "x", "a": 2}`, false, false},
		{`{"properties": {"a": {"type": "string"}}}`, `{"\u0061": 1}`, false, false},
		{`{"properties": {"a": {"type": "string"}}}`, `{"\u0062": 1}`, false, true}, // escaped key
		{`{"properties": {"a": false}}`, `{"a": 1}`, false, false},
		{`{"properties": {"a": false}}`, `"a"`, true, true},
		{`{"required": ["a", "b"]}`, `{"b": 1, "a": 2}`, true, true},
		{`{"required": ["a", "b"]}`, `{"b": 1}`, false, false},
		{`{"required": ["a"]}`, `[1]`, true, true},
		{`{"required": ["a"], "additionalProperties": false}`, `{"a": 1}`, false, false},
		{`{"required": ["a"], "additionalProperties": {"type": "integer"}}`, `{"a": 1}`, true, true},
		{`{"required": ["a"], "additionalProperties": {"type": "integer"}}`, `{"a": "1"}`, false, false},
		{`{"properties": {"a": true}, "additionalProperties": false}`, `{"a": 1}`, true, true},
		{`{"properties": {"a": true}, "additionalProperties": false}`, `{"a": 1, "b": 2}`, false, false},
		{`{"additionalProperties": {"type": "string"}}`, `{"\u00e9": "x"}`, true, true},
		{`{"additionalProperties": {"type": "string"}}`, `{"x": 1}`, false, false},
		{`{"items": {"type": "integer"}}`, `[1, 2]`, true, true},
		{`{"items": {"type": "integer"}}`, `[1, "2"]`, false, false},
		{`{"items": false}`, `[]`, true, true},
		{`{"items": false}`, `[1]`, false, false},
		{`{"minItems": 2}`, `[1, 2]`, true, true},
		{`{"minItems": 2}`, `[1]`, false, false},
		{`{"maxItems": 1}`, `[1]`, true, true},
		{`{"maxItems": 1}`, `[1, 2]`, false, false},
		{`{"minLength": 2}`, `"héé"`, true, true},
		{`{"minLength": 2}`, `"é"`, false, false},
		{`{"maxLength": 2}`, `"éé"`, true, true},
		{`{"maxLength": 2}`, `"ééé"`, false, false},
		{`{"maxLength": 2}`, `"\u00e9"`, false, true}, // escaped string
		{`{"maxLength": 2}`, `3`, true, true},
		{`{"minimum": 1.5}`, `1.5`, true, true},
		{`{"minimum": 1.5}`, `1.4999`, false, false},
		{`{"minimum": 1.5}`, `15e-1`, true, true},
		{`{"minimum": 1.5}`, `1.5000000000000000001`, false, true}, // too many digits
		{`{"maximum": -2}`, `-2`, true, true},
		{`{"maximum": -2}`, `-1.99`, false, false},
		{`{"exclusiveMinimum": 0}`, `0`, false, false},
		{`{"exclusiveMinimum": 0}`, `1e-10`, true, true},
		{`{"exclusiveMaximum": 100}`, `99.999`, true, true},
		{`{"exclusiveMaximum": 100}`, `1E2`, false, false},
		{`{"maximum": 5}`, `"x"`, true, true},
		{`{"enum": ["a", true, null]}`, `"a"`, true, true},
		{`{"enum": ["a", true, null]}`, `true`, true, true},
		{`{"enum": ["a", true, null]}`, `null`, true, true},
		{`{"enum": ["a", true, null]}`, `false`, false, false},
		{`{"enum": ["a", true, null]}`, `"b"`, false, false},
		{`{"enum": ["a", true, null]}`, `1`, false, false},
		{`{"enum": ["a", true, null]}`, `["a"]`, false, false},
		{`{"enum": ["a", true, null]}`, `{}`, false, false},
		{`{"const": "x"}`, `"x"`, true, true},
		{`{"const": "x"}`, `"y"`, false, false},
		{`{"const": false}`, `false`, true, true},
		{`{"const": null}`, `0`, false, false},
		{`{"pattern": "^[A-Z]{3}$"}`, `"EUR"`, true, true},
		{`{"pattern": "^[A-Z]{3}$"}`, `"eur"`, false, false},
		{`{"pattern": "b"}`, `"abc"`, true, true},
		{`{"pattern": "b"}`, `true`, true, true},
		{`{"format": "email"}`, `"ada@example.com"`, true, true},
		{`{"format": "email"}`, `"a.b+c@x-y.example."`, true, true},
		{`{"format": "email"}`, `"@example.com"`, true, true},
		{`{"format": "email"}`, `"not an email"`, false, false},
		{`{"format": "email"}`, `"a..b@example.com"`, false, false},
		{`{"format": "email"}`, `"a@-example.com"`, false, false},
		{`{"format": "email"}`, `"a@example..com"`, false, false},
		{`{"format": "email"}`, `"a@[127.0.0.1]"`, false, true}, // IP domains are left to the full path
		{`{"format": "email"}`, `"\"a b\"@example.com"`, false, true},
		{`{"format": "email"}`, `7`, true, true},
		{orderSchema, orderPayload, true, true},
		{orderSchema, `{"orderId": "", "customer": {"email": "a@b.c"}, "items": [{"sku": "a", "qty": 1}], "total": 1}`, false, false},
		{orderSchema, `{"orderId": "o", "customer": {"email": "a@b.c"}, "items": [{"sku": "a", "qty": 1.5}], "total": 1}`, false, false},
		{orderSchema, `{"orderId": "o", "customer": {"email": "a@b.c"}, "items": [], "total": 1}`, false, false},
		{orderSchema, `{"orderId": "o", "customer": {"email": "a@b.c"}, "items": [{"sku": "a", "qty": 1}], "total": 1, "x": 1}`, false, false},
		{`{"type": "object"}`, `{}  `, true, true},
		{`{"type": "object"}`, `{} {}`, false, false},
		{`{"type": "object"}`, `{`, false, false},
		{`{"type": "string"}`, `"\ud800"`, true, true},
	} {
		f := compileFast([]byte(tc.schema))
		if f == nil {
			t.Errorf("compileFast(%s) is nil", tc.schema)
			continue
		}
		if got := f.valid([]byte(tc.data)); got != tc.fast {
			t.Errorf("schema %s, data %s: valid = %v, want %v", tc.schema, tc.data, got, tc.fast)
		}
		if got := fullAccepts(t, tc.schema, tc.data); got != tc.full {
			t.Errorf("schema %s, data %s: full validator says %v, want %v", tc.schema, tc.data, got, tc.full)
		}
	}
}

// fixedSchemas are supported schemas that the fuzz seeds' documents are checked against:
// the fast path must accept whatever the full validator accepts of those documents, so
// that it is known not to give up on ordinary data.
var fixedSchemas = []string{
	orderSchema,
	`true`,
	`{"type": "object", "additionalProperties": {"type": ["string", "number", "integer", "boolean", "null", "array", "object"]}}`,
	`{"type": "object", "properties": {"orderId": {"type": "string", "pattern": "^o-[0-9]+$", "maxLength": 20},
	  "total": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000}, "status": {"const": "new"}}}`,
}

// fuzzSeeds are the seed documents of FuzzFastAgreesWithFull, validated against each of
// fixedSchemas and the schema given with them.
var fuzzSeeds = [][2]string{
	{orderSchema, orderPayload},
	{`{"type": "integer", "minimum": 1, "maximum": 10}`, `10.0`},
	{`{"type": "string", "minLength": 2, "pattern": "^a"}`, `"ab"`},
	{`{"enum": ["a", null, true]}`, `null`},
	{`{"type": "object", "required": ["a"], "additionalProperties": false, "properties": {"a": {"const": "x"}}}`, `{"a": "x"}`},
	{`{"items": {"type": "string", "format": "email"}, "maxItems": 2}`, `["a@b.c", "d.e@f.g"]`},
	{`{"exclusiveMinimum": -1.5, "exclusiveMaximum": 2e3}`, `-1.25`},
	{`{"type": ["object", "null"], "properties": {"a": {"type": "array", "minItems": 1, "items": false}}}`, `{"a": []}`},
}

func FuzzFastAgreesWithFull(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, schema, data string) {
		fast := compileFast([]byte(schema))
		if fast == nil {
			return
		}
		sch, err := compile("fuzz", []byte(schema))
		if err != nil {
			return
		}
		if !fast.valid([]byte(data)) {
			return
		}
		v, err := decodeData([]byte(data))
		if err != nil {
			t.Fatalf("fast path accepted data that is not JSON: %v", err)
		}
		if err := sch.Validate(v); err != nil {
			t.Fatalf("fast path accepted data the full validator refuses: %v", err)
		}
	})
}

func TestFastAcceptsSeeds(t *testing.T) {
	for _, seed := range fuzzSeeds {
		for _, schema := range append([]string{seed[0]}, fixedSchemas...) {
			f := compileFast([]byte(schema))
			if f == nil {
				t.Fatalf("compileFast(%s) is nil", schema)
			}
			full := fullAccepts(t, schema, seed[1])
			if fast := f.valid([]byte(seed[1])); fast != full {
				t.Errorf("schema %s, data %s: fast path says %v, full validator %v", schema, seed[1], fast, full)
			}
		}
	}
	if !compileFast([]byte(orderSchema)).valid([]byte(orderPayload)) {
		t.Error("the fast path does not accept the order payload")
	}
}

func TestValidEmailAgrees(t *testing.T) {
	const schema = `{"format": "email"}`
	for _, s := range []string{
		"a@b", "a@b.", "a@b..", "a@.b", "a.@b", ".a@b", "a@b-", "a@-b", "a@b_c", "a@@b", "@", "",
		"a@" + strings.Repeat("x", 63), "a@" + strings.Repeat("x", 64),
		strings.Repeat("a", 64) + "@b", strings.Repeat("a", 65) + "@b",
		"a@" + strings.Repeat("x.", 126) + "x", "a@" + strings.Repeat("x.", 127) + "x",
		"a!#$%&'*+-/=?^_`{|}~@b", "a(b)@c", "é@b", "a@é", `"@b`,
	} {
		data := `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
		fast := compileFast([]byte(schema)).valid([]byte(data))
		if full := fullAccepts(t, schema, data); fast && !full || !fast && full && !strings.HasPrefix(s, `"`) {
			t.Errorf("email %q: fast path says %v, full validator %v", s, fast, full)
		}
	}
}
