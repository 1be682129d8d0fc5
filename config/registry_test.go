package config

import (
	"strings"
	"testing"
	"time"
)

type (
	noYAMLTag struct {
		A string `doc:"x"`
	}
	noDoc struct {
		A string `yaml:"a"`
	}
	badType struct {
		A any `yaml:"a" doc:"x"`
	}
	intKeys struct {
		A map[int]string `yaml:"a" doc:"x"`
	}
	badDefault struct {
		A int `yaml:"a" default:"many" doc:"x"`
	}
	defaultNotInEnum struct {
		A string `yaml:"a" enum:"x,y" default:"z" doc:"x"`
	}
	requiredDefault struct {
		A string `yaml:"a" required:"true" default:"x" doc:"x"`
	}
	enumOnBool struct {
		A bool `yaml:"a" enum:"true" doc:"x"`
	}
	refOnInt struct {
		A int `yaml:"a" ref:"System" doc:"x"`
	}
	dupName struct {
		A string `yaml:"a" doc:"x"`
		B string `yaml:"a" doc:"x"`
	}
	embedded struct {
		widgetItem
	}
	badRecursive struct {
		Next *badRecursive `yaml:"next" doc:"x"`
		Bad  any           `yaml:"bad" doc:"x"`
	}
	badRequired struct {
		A string `yaml:"a" required:"yes" doc:"x"`
	}
	secretDefault struct {
		A Secret `yaml:"a" default:"x" doc:"x"`
	}
	listDefault struct {
		A []string `yaml:"a" default:"x" doc:"x"`
	}
	goodDefaults struct {
		A *int          `yaml:"a" default:"4" doc:"x"`
		B time.Duration `yaml:"b" default:"1m" doc:"x"`
		C []string      `yaml:"c" enum:"x,y" doc:"x"`
		D uint          `yaml:"d" enum:"1,2" default:"2" doc:"x"`
		F string        `yaml:"-"`
	}
)

func TestRegisterChecksSpecs(t *testing.T) {
	for _, tc := range []struct {
		kind Kind
		want string
	}{
		{Kind{Name: "lower", Doc: "d", New: func() any { return new(goodDefaults) }}, "must be UpperCamelCase"},
		{Kind{Name: "NoDoc", New: func() any { return new(goodDefaults) }}, "has no Doc"},
		{Kind{Name: "NoNew", Doc: "d"}, "has no New function"},
		{Kind{Name: "Value", Doc: "d", New: func() any { return goodDefaults{} }}, "New must return a non-nil pointer to a struct"},
		{Kind{Name: "NilPtr", Doc: "d", New: func() any { return (*goodDefaults)(nil) }}, "non-nil pointer"},
		{Kind{Name: "Str", Doc: "d", New: func() any { s := ""; return &s }}, "pointer to a struct"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(noYAMLTag) }}, "noYAMLTag.A: missing yaml tag"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(noDoc) }}, "noDoc.A: missing doc tag"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(badType) }}, "field type interface {} is not supported"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(intKeys) }}, "field type map[int]string is not supported"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(badDefault) }}, `invalid default "many": default: expected an integer, got string "many"`},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(defaultNotInEnum) }}, `invalid default "z": default: must be one of "x", "y", got "z"`},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(requiredDefault) }}, "a required field cannot have a default"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(enumOnBool) }}, "enum applies to string and integer fields only"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(refOnInt) }}, "ref applies to string fields only"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(dupName) }}, `yaml name "a" is used twice`},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(embedded) }}, "embedded fields are not supported"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(badRecursive) }}, "badRecursive.Bad: field type interface {} is not supported"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(badRequired) }}, `required tag must be "true" or "false"`},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(secretDefault) }}, "default applies to single values"},
		{Kind{Name: "K", Doc: "d", New: func() any { return new(listDefault) }}, "default applies to single values"},
	} {
		err := NewRegistry().Register(tc.kind)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.kind.Name, err, tc.want)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	good := Kind{Name: "Good", Doc: "d", New: func() any { return new(goodDefaults) }}
	if err := r.Register(good); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(good); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("duplicate: %v", err)
	}
	if err := r.Register(Kind{Name: "Alpha", Doc: "d", New: func() any { return new(targetSpec) }}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range r.Kinds() {
		names = append(names, k.Name)
	}
	if strings.Join(names, ",") != "Alpha,Good" {
		t.Errorf("Kinds() = %v, want sorted", names)
	}
	if k, ok := r.Lookup("Good"); !ok || k.Name != "Good" {
		t.Error("Lookup")
	}
	if _, ok := r.Lookup("Nope"); ok {
		t.Error("Lookup of an unknown kind")
	}

	// A ref to a kind that is not registered is reported when loading starts.
	r2 := NewRegistry()
	if err := r2.Register(Kind{Name: "Widget", Doc: "d", New: func() any { return new(widgetSpec) }}); err != nil {
		t.Fatal(err)
	}
	_, err := Load(t.TempDir(), Options{Registry: r2})
	if err == nil || !strings.Contains(err.Error(), "kind Widget: field spec.target refers to kind Target, which is not registered") {
		t.Errorf("unregistered ref kind: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"schema", "schemaFile", "owner", "id", "retries"}
	for in, want := range map[string]string{
		"shema": "schema", "shcema": "schema", "Schema": "schema", "schemafile": "schemaFile",
		"ownr": "owner", "ID": "id", "ix": "", "retires": "retries", "totally": "", "": "",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorList(t *testing.T) {
	list := ErrorList{
		{Pos: Position{File: "b.yaml", Line: 2, Col: 1}, Msg: "third"},
		{Pos: Position{File: "a.yaml", Line: 10, Col: 2}, Msg: "second"},
		{Pos: Position{File: "a.yaml", Line: 9, Col: 5}, Msg: "first"},
		{Pos: Position{File: "c.yaml"}, Msg: "whole file"},
		{Msg: "no position"},
	}
	want := "no position\na.yaml:9:5: first\na.yaml:10:2: second\nb.yaml:2:1: third\nc.yaml: whole file"
	if got := list.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if list[0].Msg != "third" {
		t.Error("Error() must not reorder the list itself")
	}
	if (ErrorList{}).Err() != nil || list.Err() == nil {
		t.Error("Err")
	}
	if p := (Position{File: "f", Line: 3}); p.String() != "f:3" || !p.IsValid() || (Position{}).IsValid() {
		t.Error("Position")
	}
}
