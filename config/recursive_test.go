package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// treeNode contains itself, as a flow step holds the steps of its branches.
type treeNode struct {
	Name     string      `yaml:"name" required:"true" doc:"The node's name."`
	Children []*treeNode `yaml:"children" doc:"The nodes below."`
	Alias    *treeNode   `yaml:"alias" doc:"Another node."`
}

type treeSpec struct {
	Root treeNode `yaml:"root" required:"true" doc:"The root node."`
}

func treeRegistry(t *testing.T) *Registry {
	t.Helper()
	r := NewRegistry()
	if err := r.Register(Kind{Name: "Tree", Doc: "A kind whose spec contains itself.", New: func() any { return new(treeSpec) }}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRecursiveSpecs(t *testing.T) {
	dir := t.TempDir()
	write := func(doc string) string {
		path := filepath.Join(dir, "t.yaml")
		if err := os.WriteFile(path, []byte("apiVersion: causeway/v1\nkind: Tree\nmetadata: {name: t}\nspec:\n"+doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write(`  root:
    name: a
    children:
      - name: b
        children: [{name: c}, {name: d, alias: {name: e}}]
`)
	cfg, err := Load(dir, Options{Registry: treeRegistry(t)})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := cfg.Get("Tree", "t")
	root := res.Spec.(*treeSpec).Root
	if got := root.Children[0].Children[1].Alias.Name; got != "e" {
		t.Fatalf("nested value %q, want e", got)
	}

	// Problems deep inside are reported with their whole path.
	write(`  root:
    name: a
    children:
      - name: b
        children: [{name: c}, {nmae: d}]
`)
	_, err = Load(dir, Options{Registry: treeRegistry(t)})
	for _, want := range []string{
		`t.yaml:9:32: unknown field "nmae" in Tree spec.root.children[0].children[1] (did you mean "name"?)`,
		`t.yaml:9:31: spec.root.children[0].children[1].name: required field missing`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %q\nwant %q", err, want)
		}
	}

	// The JSON Schema refers to one definition of the type, and validates nested values.
	out, err := JSONSchema(treeRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"$ref": "#/$defs/config.treeNode"`) {
		t.Errorf("schema has no reference to the recursive type:\n%s", out)
	}
	s := compileSchema(t, out)
	var good, bad any
	_ = json.Unmarshal([]byte(`{"apiVersion":"causeway/v1","kind":"Tree","metadata":{"name":"t"},"spec":{"root":{"name":"a","children":[{"name":"b","children":[{"name":"c"}]}]}}}`), &good)
	_ = json.Unmarshal([]byte(`{"apiVersion":"causeway/v1","kind":"Tree","metadata":{"name":"t"},"spec":{"root":{"name":"a","children":[{"name":"b","children":[{"nmae":"c"}]}]}}}`), &bad)
	if err := s.Validate(good); err != nil {
		t.Errorf("a good tree does not validate: %v", err)
	}
	if err := s.Validate(bad); err == nil {
		t.Error("a tree with an unknown field deep inside validates")
	}

	// The reference lists the fields once and says where inner uses find them.
	ref := string(Reference(treeRegistry(t)))
	for _, want := range []string{
		"| `spec.root.name` | string | yes |",
		"| `spec.root.children` | list of object | no | | The nodes below. Each has the fields of `spec.root`. |",
	} {
		if !strings.Contains(ref, want) {
			t.Errorf("reference lacks %q:\n%s", want, ref)
		}
	}
	if strings.Contains(ref, "spec.root.children[].name") {
		t.Error("the reference descends into the recursive type")
	}
}
