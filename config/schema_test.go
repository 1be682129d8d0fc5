package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/testutil"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// yamlDocsAsJSON converts every document of a YAML file to a JSON value, without
// substitution, as an editor sees the file.
func yamlDocsAsJSON(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var errs ErrorList
	var out []any
	for _, doc := range parseYAML(path, data, nil, &errs) {
		d := &decoder{errs: &errs, budget: maxValues}
		j, _ := d.json(doc, "")
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j.Raw))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return out
}

func compileSchema(t *testing.T, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem:///causeway.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem:///causeway.schema.json")
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v", err)
	}
	return s
}

// TestJSONSchemaAgreesWithLoader checks the generated schema against the loader: documents
// the loader accepts validate, and documents with problems the schema can express do not.
func TestJSONSchemaAgreesWithLoader(t *testing.T) {
	out, err := JSONSchema(testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := JSONSchema(testRegistry(t))
	if !bytes.Equal(out, again) {
		t.Fatal("the schema is not deterministic")
	}
	s := compileSchema(t, out)
	goods, _ := filepath.Glob("testdata/*.good.yaml")
	for _, path := range goods {
		for i, doc := range yamlDocsAsJSON(t, path) {
			if err := s.Validate(doc); err != nil {
				t.Errorf("%s document %d: valid for the loader, not for the schema:\n%v", path, i+1, err)
			}
		}
	}
	for _, path := range []string{"testdata/unknown-field.bad.yaml", "testdata/enum.bad.yaml", "testdata/envelope.bad.yaml", "testdata/required.bad.yaml"} {
		for i, doc := range yamlDocsAsJSON(t, path) {
			if err := s.Validate(doc); err == nil {
				t.Errorf("%s document %d: invalid for the loader, valid for the schema", path, i+1)
			}
		}
	}
	for _, want := range []string{
		`"$schema": "https://json-schema.org/draft/2020-12/schema"`,
		`"const": "causeway/v1"`,
		`"pattern": "^0$|^([0-9]*\\.?[0-9]+(ns|us|µs|ms|s|m|h))+$|\\$\\{"`,
		`"writeOnly": true`,
		`"default": 3`,
		`"description": "Names a Target. Names a Target resource."`,
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("schema lacks %s", want)
		}
	}
}

func TestReference(t *testing.T) {
	ref := string(Reference(testRegistry(t)))
	for _, want := range []string{
		"# Resource reference",
		"| `apiVersion` | string | yes | | Version of the definition format: always `causeway/v1`. |",
		"| `kind` | string | yes | | Kind of the resource, one of: [`Target`](#target), [`Widget`](#widget). |",
		"| `metadata.name` | string | yes | |",
		"| [Widget](#widget) | A test kind with every field type. |",
		"| `spec.req` | string | yes | | A required string. |",
		"| `spec.count` | integer | no | `3` | An integer with a default. |",
		"| `spec.mode` | string | no | `safe` | A string with allowed values. One of: fast, safe. |",
		"| `spec.token` | secret | no | | A secret. Secret: write ${secret:NAME}; the value is never shown. |",
		"| `spec.items[].sku` | string | yes | | Stock keeping unit. |",
		"| `spec.opt.retries` | integer | no | `2` |",
		"| `spec.target` | name of a [Target](#target) | no | | Names a Target. Names a Target resource. Example: `main`. |",
		"| `spec.env` | map of string | no | |",
		"| `spec.data` | any value (JSON) | no | |",
		"| `spec.timeout` | duration | no | `5s` |",
		"```yaml\napiVersion: causeway/v1\nkind: Widget",
		"## Target\n\nA test kind with a lifecycle.",
	} {
		if !strings.Contains(ref, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
	if empty := string(Reference(NewRegistry())); !strings.Contains(empty, "No kinds are registered.") {
		t.Error("empty registry reference")
	}
}

func TestLoadJSONFile(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"ok.json":        "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"a/b\": {\"type\": \"string\"},\n    \"list\": [1, {\"x\": \"é\"}, 3]\n  }\n}\n",
		"ok.yaml":        "type: object\nproperties:\n  a: {type: string}\n",
		"syntax.json":    "{\n  \"type\": \"object\",\n  \"x\": nope\n}\n",
		"trailing.json":  "{} {}\n",
		"empty.json":     "  \n",
		"truncated.json": "{\"a\": [1,\n",
		"two.yaml":       "a: 1\n---\nb: 2\n",
		"bad.yaml":       "a: [1\n",
		"schema.txt":     "{}",
	}
	testutil.WriteFiles(t, dir, files)
	j, err := LoadJSONFile(filepath.Join(dir, "ok.json"))
	if err != nil {
		t.Fatal(err)
	}
	for ptr, want := range map[string]string{"": "1:1", "/type": "2:11", "/properties/a~1b": "4:12", "/properties/a~1b/type": "4:21", "/properties/list/1/x": "5:23", "/properties/list/2": "5:29", "/nope": "1:1"} {
		p := j.PosOf(ptr)
		if got := strings.TrimPrefix(p.String(), p.File+":"); got != want {
			t.Errorf("ok.json %q at %s, want %s", ptr, got, want)
		}
	}
	j, err = LoadJSONFile(filepath.Join(dir, "ok.yaml"))
	if err != nil || string(j.Raw) != `{"type":"object","properties":{"a":{"type":"string"}}}` || j.PosOf("/properties/a/type").Line != 3 {
		t.Errorf("ok.yaml: %s %v", j.Raw, err)
	}
	for name, want := range map[string]string{
		"syntax.json":    "syntax.json:3:9: invalid JSON: invalid character 'o' in literal null (expecting 'u')",
		"trailing.json":  "trailing.json:1:4: invalid JSON: unexpected data after the value",
		"empty.json":     "empty.json:2:1: empty JSON document",
		"truncated.json": "truncated.json:2:1: invalid JSON: unexpected end of file",
		"two.yaml":       "two.yaml: expected one YAML document, found 2",
		"bad.yaml":       "bad.yaml:1:4: YAML syntax error: sequence end token ']' not found",
		"schema.txt":     `schema.txt: unsupported file type ".txt": use .json, .yaml or .yml`,
		"missing.json":   "missing.json: cannot read file: no such file or directory",
	} {
		_, err := LoadJSONFile(filepath.Join(dir, name))
		if err == nil || !strings.Contains(strings.TrimPrefix(err.Error(), dir+string(filepath.Separator)), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
}
