package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/causeway/causeway/gateway/openapi"
	"github.com/causeway/causeway/internal/testutil"
)

// petstoreDoc is the document of the import tests of the openapi package.
var petstoreDoc = filepath.Join("..", "..", "gateway", "openapi", "testdata", "import", "petstore.yaml")

// TestAPIsImportValidates imports a document, prints the definitions, and checks that
// they pass causeway validate as they are.
func TestAPIsImportValidates(t *testing.T) {
	out, err := runForTest(t, newAPIsCmd(), "import", petstoreDoc, "--system", "petstore", "--base-path", "/api/pets", "--name", "pets")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	data, err := os.ReadFile(petstoreDoc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := openapi.Import(data, openapi.ImportOptions{System: "petstore", BasePath: "/api/pets", APIName: "pets"})
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("printed\n%s\nwant\n%s", out, want)
	}
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"petstore.yaml": out})
	got, err := runForTest(t, newValidateCmd(), dir)
	if err != nil || got != "valid: 2 resources (1 API, 1 System) in "+dir+"\n" {
		t.Errorf("validate: %v\n%s", err, got)
	}
}

// TestAPIsImportOutput writes the definitions to a file, which a second import does not
// overwrite without --force.
func TestAPIsImportOutput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "petstore.yaml")
	out, err := runForTest(t, newAPIsCmd(), "import", petstoreDoc, "--system", "petstore", "-o", file)
	if err != nil || out != "wrote "+file+": read its comments, then check it with causeway validate\n" {
		t.Fatalf("%v\n%s", err, out)
	}
	first, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(first), "kind: API\n") {
		t.Fatalf("%v\n%s", err, first)
	}
	_, err = runForTest(t, newAPIsCmd(), "import", petstoreDoc, "--system", "shop", "-o", file)
	if err == nil || err.Error() != file+" exists; give --force to overwrite it" {
		t.Errorf("overwrite without --force: %v", err)
	}
	if again, _ := os.ReadFile(file); string(again) != string(first) {
		t.Error("the file changed without --force")
	}
	if _, err := runForTest(t, newAPIsCmd(), "import", petstoreDoc, "--system", "shop", "-o", file, "--force"); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(file); !strings.Contains(string(again), "name: shop\n") {
		t.Errorf("--force did not overwrite:\n%s", again)
	}
}

// TestAPIsImportErrors checks the messages of what cannot be imported; each is an error,
// which causeway prints and exits 1 with.
func TestAPIsImportErrors(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"system.yaml": "apiVersion: causeway/v1\nkind: System\nmetadata: {name: erp}\nspec: {}\n",
		"v2.json":     `{"swagger": "2.0", "info": {"title": "old", "version": "1"}, "paths": {}}`,
		"broken.yaml": "openapi: 3.0.3\npaths: [\n",
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", filepath.Join(dir, "nope.yaml"), "--system", "erp"}, filepath.Join(dir, "nope.yaml") + ": no such file"},
		{[]string{"import", dir, "--system", "erp"}, dir + " is a directory; give the OpenAPI document's file"},
		{[]string{"import", filepath.Join(dir, "system.yaml"), "--system", "erp"}, filepath.Join(dir, "system.yaml") + ": this is a Causeway definition (kind: System), not an OpenAPI document"},
		{[]string{"import", filepath.Join(dir, "v2.json"), "--system", "erp"}, `only OpenAPI 3.0 and 3.1 documents can be imported`},
		{[]string{"import", filepath.Join(dir, "broken.yaml"), "--system", "erp"}, "broken.yaml: not YAML or JSON: line 2, column 8: sequence end token ']' not found"},
		{[]string{"import", petstoreDoc}, `required flag(s) "system" not set`},
		{[]string{"import", petstoreDoc, "--system", "ERP"}, `system name "ERP": lowercase letters, digits and '-'`},
		{[]string{"import", "--system", "erp"}, "accepts 1 arg(s), received 0"},
	} {
		out, err := runForTest(t, newAPIsCmd(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCodeOf(err) != -1 || out != "" {
			t.Errorf("%v: got %v (%q), want an error with %q", tc.args, err, out, tc.want)
		}
	}
}

// TestAPIsImportServes imports the document of a backend, runs a node on the definitions
// as they come, and calls the API: each route reaches its operation with the path
// parameters, the declared query parameters the request has (and no others), and the body.
func TestAPIsImportServes(t *testing.T) {
	type seen struct{ method, path, query, body string }
	var mu sync.Mutex
	var got []seen
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok": true}`)
	}))
	defer backend.Close()
	doc := `openapi: 3.0.3
info: {title: Shop, version: "1"}
servers: [{url: "` + backend.URL + `/v1"}]
paths:
  /pets:
    get:
      operationId: listPets
      parameters:
        - {name: limit, in: query, schema: {type: integer}}
        - {name: status, in: query, schema: {type: string}}
      responses: {"200": {description: ok}}
    post:
      operationId: createPet
      requestBody: {content: {application/json: {schema: {type: object}}}}
      responses: {"201": {description: created}}
  /owners/{owner-id}/pets/{query}:
    get:
      responses: {"200": {description: ok}}
`
	src := t.TempDir()
	testutil.WriteFiles(t, src, map[string]string{"shop.json": doc})
	defs := t.TempDir()
	if out, err := runForTest(t, newAPIsCmd(), "import", filepath.Join(src, "shop.json"), "--system", "shop", "-o", filepath.Join(defs, "shop.yaml")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	p := runNodeOn(t, defs)
	base := "http://" + p.HTTPAddr() + "/api/shop"
	for _, tc := range []struct {
		method, path, body string
		want               seen
	}{
		{"GET", "/pets?limit=2", "", seen{"GET", "/v1/pets", "limit=2", ""}},
		{"GET", "/pets?status=sold&limit=2&other=x", "", seen{"GET", "/v1/pets", "limit=2&status=sold", ""}},
		{"POST", "/pets", `{"name":"Rex"}`, seen{"POST", "/v1/pets", "", `{"name":"Rex"}`}},
		{"GET", "/owners/o%201/pets/cats", "", seen{"GET", "/v1/owners/o%201/pets/cats", "", ""}},
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(answer, &v) != nil || v["ok"] != true {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, answer)
			continue
		}
		mu.Lock()
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s %s: the backend saw %+v, want %+v", tc.method, tc.path, got, tc.want)
		}
		mu.Unlock()
	}
}
