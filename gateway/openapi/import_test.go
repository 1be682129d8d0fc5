package openapi_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/gateway/openapi"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/system"
)

// importCases are the documents under testdata/import, each with the System it becomes
// and the operations and routes that come out of it.
var importCases = []struct {
	name       string
	opts       openapi.ImportOptions
	operations int
	routes     int
}{
	{"petstore", openapi.ImportOptions{System: "petstore"}, 12, 10},
	{"billing", openapi.ImportOptions{System: "billing", BasePath: "/api/money", APIName: "invoices"}, 6, 6},
}

func TestImportGolden(t *testing.T) {
	for _, tc := range importCases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "import", tc.name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := openapi.Import(data, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := openapi.Import(data, tc.opts)
			if string(got) != string(again) {
				t.Error("two imports of the same document differ")
			}
			golden(t, filepath.Join("testdata", "import", tc.name+".golden.yaml"), got)
		})
	}
}

// TestImportLoads loads what Import writes with the real loader and every kind, as
// causeway validate does, so that the definitions are valid as they come.
func TestImportLoads(t *testing.T) {
	for _, tc := range importCases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "import", tc.name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := openapi.Import(data, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			cfg := LoadImported(t, out)
			sys, ok := cfg.Get(system.Kind, tc.opts.System)
			if !ok {
				t.Fatalf("no System %s", tc.opts.System)
			}
			if n := len(sys.Spec.(*system.Spec).Operations); n != tc.operations {
				t.Errorf("%d operations, want %d", n, tc.operations)
			}
			name := tc.opts.APIName
			if name == "" {
				name = tc.opts.System
			}
			api, ok := cfg.Get(gateway.Kind, name)
			if !ok {
				t.Fatalf("no API %s", name)
			}
			if n := len(api.Spec.(*gateway.Spec).Routes); n != tc.routes {
				t.Errorf("%d routes, want %d", n, tc.routes)
			}
		})
	}
}

// policiesBlock is the API's policies block as Import writes it.
var policiesBlock = regexp.MustCompile(`(?m)^  policies:\n    auth:\n      none: true\n`)

// LoadImported loads definitions written by Import with the loader and every kind. The
// API kind takes a policies block from the gateway's policies on; until it does, the block
// is an unknown field, and the definitions are loaded again without it, so that the rest
// is checked either way.
func LoadImported(t *testing.T, defs []byte) *config.Config {
	t.Helper()
	load := func(defs []byte) (*config.Config, error) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "imported.yaml"), defs, 0o644); err != nil {
			t.Fatal(err)
		}
		return config.Load(dir, config.Options{Registry: kinds.Default(), LookupEnv: func(string) (string, bool) { return "", false }})
	}
	cfg, err := load(defs)
	if err != nil && strings.Contains(err.Error(), `unknown field "policies"`) {
		t.Log("the API kind does not take policies yet; loading without them")
		cfg, err = load(policiesBlock.ReplaceAll(defs, nil))
	}
	if err != nil {
		t.Fatalf("the imported definitions do not load:\n%v\n%s", err, defs)
	}
	t.Cleanup(func() { _ = cfg.Cleanup() })
	return cfg
}

func TestImportRefusesWhatIsNotOpenAPI(t *testing.T) {
	petstore, err := os.ReadFile(filepath.Join("testdata", "import", "petstore.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	minimal := func(paths string) string {
		return "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n" + paths
	}
	for _, tc := range []struct {
		name, doc string
		opts      openapi.ImportOptions
		want      string
	}{
		{"not YAML", "a: [1, 2\nb: c", openapi.ImportOptions{}, "not YAML or JSON: line 2, column 1: ',' or ']' must be specified"},
		{"not UTF-8", "openapi: \xff", openapi.ImportOptions{}, `not YAML or JSON: the file is not UTF-8 text`},
		{"truncated JSON", `{"openapi": "3.0.0",`, openapi.ImportOptions{}, `not YAML or JSON`},
		{"empty", "", openapi.ImportOptions{}, `not an OpenAPI document: the file is empty`},
		{"a list", "- a\n- b\n", openapi.ImportOptions{}, `not an OpenAPI document: it is a sequence, not a mapping`},
		{"text", "just some text", openapi.ImportOptions{}, `not an OpenAPI document: it is plain text, not a mapping`},
		{"2.0", "swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n", openapi.ImportOptions{}, `this is an OpenAPI 2.0 document (swagger: "2.0"); only OpenAPI 3.0 and 3.1 documents can be imported`},
		{"definition", "apiVersion: causeway/v1\nkind: System\nmetadata: {name: erp}\n", openapi.ImportOptions{}, `this is a Causeway definition (kind: System), not an OpenAPI document`},
		{"no version", "info: {title: t}\npaths: {}\n", openapi.ImportOptions{}, `not an OpenAPI document: it has no openapi field`},
		{"number", "openapi: 3.1\ninfo: {title: t, version: '1'}\n", openapi.ImportOptions{}, `openapi: the version is written as a number (3.1); write it as a string, such as openapi: "3.1.0"`},
		{"4.0", "openapi: '4.0.0'\n", openapi.ImportOptions{}, `openapi "4.0.0": only OpenAPI 3.0 and 3.1 documents can be imported`},
		{"no paths", "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n", openapi.ImportOptions{}, `the document has no paths: there is nothing to import`},
		{"external ref", minimal("  /a:\n    get:\n      parameters: [{$ref: 'other.yaml#/p'}]\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `only references inside the document`},
		{"missing ref", minimal("  /a:\n    get:\n      parameters: [{$ref: '#/components/parameters/nope'}]\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `reading the OpenAPI document: `},
		{"relative path", minimal("  a:\n    get:\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `paths.a: a path starts with /`},
		{"braces", minimal("  /a/{b:\n    get:\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `paths./a/{b: unbalanced or empty braces`},
		{"parameter in", minimal("  /a:\n    get:\n      parameters: [{name: x, in: body}]\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `paths./a.get.parameters[0] (x): in is path, query, header or cookie, not "body"`},
		{"parameter name", minimal("  /a:\n    parameters: [{in: query}]\n    get:\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `paths./a.parameters[0]: a parameter has a name`},
		{"only HEAD", minimal("  /a:\n    head:\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `the document has no GET, POST, PUT, PATCH or DELETE operation`},
		{"no route", minimal("  /{a}.json:\n    get:\n      responses: {'200': {description: ok}}\n"), openapi.ImportOptions{}, `paths./{a}.json.get: none of the document's operations can be routed; the first: the segment {a}.json mixes a parameter with text`},
		{"no system", string(petstore), openapi.ImportOptions{System: "-"}, `system name "-": lowercase letters, digits and '-'`},
		{"dotted system", string(petstore), openapi.ImportOptions{System: "erp.eu"}, `system name "erp.eu"`},
		{"API name", string(petstore), openapi.ImportOptions{System: "erp", APIName: "Orders"}, `API name "Orders"`},
		{"base path", string(petstore), openapi.ImportOptions{System: "erp", BasePath: "api/erp"}, `base path "api/erp": start with / and do not end with /`},
		{"base path segment", string(petstore), openapi.ImportOptions{System: "erp", BasePath: "/api/{x}"}, `base path "/api/{x}": segment "{x}" is not a plain path segment`},
		{"reserved", string(petstore), openapi.ImportOptions{System: "erp", BasePath: "/v1/erp"}, `base path "/v1/erp" is under /v1, which is Causeway's own`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.System == "" {
				tc.opts.System = "erp"
			}
			_, err := openapi.Import([]byte(tc.doc), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	if _, err := openapi.Import(petstore, openapi.ImportOptions{}); err == nil || !strings.Contains(err.Error(), "name the system") {
		t.Errorf("no system name: %v", err)
	}
}

// TestImportServers checks the base URL taken from the document's servers, and the
// placeholder with a comment where it has none that can be used.
func TestImportServers(t *testing.T) {
	for _, tc := range []struct{ servers, baseURL, comment string }{
		{"", "https://CHANGE-ME", "names no server"},
		{"servers: [{url: 'https://erp.example.com/api/'}]", "https://erp.example.com/api", ""},
		{"servers: [{url: /v3}]", "https://CHANGE-ME/v3", "is relative"},
		{"servers: [{url: 'https://{host}/v1', variables: {host: {default: ''}}}]", "https://CHANGE-ME", "has variables without a default (host)"},
		{"servers: [{url: 'https://{host}/v1'}]", "https://CHANGE-ME", "has variables without a default (host)"},
		{"servers: [{url: 'https://{host}/v1', variables: {host: {default: erp.example.com}}}]", "https://erp.example.com/v1", "their defaults give this URL"},
		{"servers: [{url: 'ftp://erp.example.com'}]", "https://CHANGE-ME", "is not an http or https URL"},
		{"servers: [{url: 'https://user:pw@erp.example.com?tenant=1'}]", "https://erp.example.com", "The credentials in servers[0].url are left out"},
	} {
		doc := "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n" + tc.servers + "\npaths:\n  /a:\n    get:\n      responses: {'200': {description: ok}}\n"
		out, err := openapi.Import([]byte(doc), openapi.ImportOptions{System: "erp"})
		if err != nil {
			t.Errorf("%s: %v", tc.servers, err)
			continue
		}
		if !strings.Contains(string(out), "\n    baseURL: "+tc.baseURL+"\n") || !strings.Contains(string(out), tc.comment) {
			t.Errorf("%s: want baseURL %s and a comment with %q:\n%s", tc.servers, tc.baseURL, tc.comment, out)
		}
		if strings.Contains(string(out), "pw") {
			t.Errorf("%s: the password is in the output", tc.servers)
		}
		LoadImported(t, out)
	}
}

// TestImportJSON reads a JSON document, which is how most documents are served.
func TestImportJSON(t *testing.T) {
	doc := `{"openapi": "3.1.0", "info": {"title": "Stock", "version": "2"},
	  "servers": [{"url": "https://stock.example.com"}],
	  "paths": {"/items/{sku}": {"get": {"operationId": "getItem", "summary": "An item, with its \"stock\"",
	    "parameters": [{"name": "sku", "in": "path", "required": true, "schema": {"type": "string"}}],
	    "responses": {"200": {"description": "The item"}}}}}}`
	out, err := openapi.Import([]byte(doc), openapi.ImportOptions{System: "stock"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"    getItem:\n      description: \"An item, with its \\\"stock\\\"\"\n", "- match: GET /items/{sku}\n", `sku: "${{ .path.sku }}"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	LoadImported(t, out)
}
