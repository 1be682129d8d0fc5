package expr

import (
	"strings"
	"testing"
)

// FuzzParseTemplate checks that any string either parses or gives a *TemplateError with an
// offset inside the string, and that a string without expressions comes back unchanged.
// Seeds: testdata/fuzz/FuzzParseTemplate.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"", "plain", "a ${{ .x }} b", "${{ {a: {b: 1}} }}", `${{ "}}" }}`, "$${{ x }}", "${{ .x", "${{}}", "$$$", "${{ .a }}${{ .b }}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			te, ok := err.(*TemplateError)
			if !ok {
				t.Fatalf("%q: error %T, want *TemplateError", s, err)
			}
			if te.Offset < 0 || te.Offset > len(s) {
				t.Fatalf("%q: offset %d outside the string", s, te.Offset)
			}
			return
		}
		if !strings.Contains(s, "${{") {
			if !tpl.IsLiteral() || tpl.Literal() != s {
				t.Fatalf("%q: a string without expressions came back as %q", s, tpl.Literal())
			}
		}
		if tpl.String() != s {
			t.Fatalf("String() = %q, want %q", tpl.String(), s)
		}
	})
}
