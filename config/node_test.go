package config

import (
	"strings"
	"testing"
)

// docNames parses src and returns the value of the "n" key of each document.
func docNames(t *testing.T, src string) []string {
	t.Helper()
	var errs ErrorList
	docs := parseYAML("f.yaml", []byte(src), nil, &errs)
	if len(errs) > 0 {
		t.Fatalf("parse %q: %v", src, errs)
	}
	var out []string
	for _, d := range docs {
		if d.kind != mappingNode || len(d.entries) != 1 {
			t.Fatalf("parse %q: unexpected document %s", src, d.describe())
		}
		out = append(out, d.entries[0].value.text)
	}
	return out
}

// TestEmptyDocuments makes sure an empty document does not hide the documents after it,
// which the YAML parser on its own does.
func TestEmptyDocuments(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"n: a\n---\nn: b\n", "a,b"},
		{"---\n---\nn: b\n", "b"},
		{"---\n# only a comment\n---\nn: b\n---\nn: c\n", "b,c"},
		{"---\n...\n---\nn: b\n", "b"},
		{"n: a\n...\n---\nn: b\n", "a,b"},
		{"n: a\n---\n---\n", "a"},
		{"n: a\n---\n---\n---\nn: d\n", "a,d"},
		{"%YAML 1.2\n---\nn: a\n---\n---\nn: b\n", "a,b"},
		{"# nothing\n", ""},
		{"", ""},
	} {
		if got := strings.Join(docNames(t, tc.src), ","); got != tc.want {
			t.Errorf("%q: documents %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestParseLimits(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"a: " + strings.Repeat("[", 70) + strings.Repeat("]", 70), "f.yaml:1:68: flow collections ([...] and {...}) nested deeper than 64 levels"},
		{strings.Repeat("x", maxFileSize+1), "f.yaml: file is too large"},
		{nestedBlock(120), "values nested deeper than 100 levels"},
		{"a: &a [1]\nb: *a\nc: *b\n", "f.yaml:3:4: unknown alias *b"},
		{"? [a]\n", "YAML syntax error"},
	} {
		var errs ErrorList
		parseYAML("f.yaml", []byte(tc.src), nil, &errs)
		if !strings.Contains(errs.Error(), tc.want) {
			t.Errorf("%.40q: got %v, want %q", tc.src, errs, tc.want)
		}
	}
}

func nestedBlock(depth int) string {
	var b strings.Builder
	for i := range depth {
		b.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	b.WriteString(strings.Repeat(" ", depth) + "v: 1\n")
	return b.String()
}

// TestBillionLaughs checks that aliases that expand to a huge number of values are refused
// rather than decoded.
func TestBillionLaughs(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: causeway/v1\nkind: Widget\nmetadata: {name: lol}\nspec:\n  req: x\n  data:\n    l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("    l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*l" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := loadSources("testdata", []source{{"lol.yaml", []byte(b.String())}}, testOptions(t))
	if err == nil || !strings.Contains(err.Error(), "document expands to more than 200000 values") {
		t.Fatalf("got %v", err)
	}
}
