package openapi

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
)

func TestOperationNameFrom(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"listPets", "listPets"},
		{"pets.findByTags", "petsFindByTags"},
		{"create-invoice", "create-invoice"},
		{"get invoice/by id", "getInvoiceById"},
		{"2getInvoice", "op2getInvoice"},
		{"_private", "op_private"},
		{"ünïcode", "nCode"},
		{"...", ""},
		{"", ""},
	} {
		if got := operationNameFrom(tc.id); got != tc.want {
			t.Errorf("operationNameFrom(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

func TestParamNameFrom(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"petId", "petId"},
		{"user-name", "user_name"},
		{"1st", "_1st"},
		{"a.b", "a_b"},
		{"--", "param"},
		{"", "param"},
	} {
		if got := paramNameFrom(tc.name); got != tc.want {
			t.Errorf("paramNameFrom(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestScalarReadsBack writes strings as YAML scalars and reads them back: each must be the
// same string, with "${" as "$${", which the loader turns back into "${".
func TestScalarReadsBack(t *testing.T) {
	for _, s := range []string{
		"List all pets", "GET /orders/{id}", "Update a pet: all of it", "yes", "No", "null", "~", "3.1",
		"-x", "a #b", "a, b", "it's", `say "hi"`, "line\nline", " lead", "trail ", "tab\there",
		"${HOME} and ${{ .x }}", "ünïcode", "", "https://erp.example.com/v1", "@at", "a  b", "\u2028",
	} {
		checkScalar(t, s)
	}
}

// FuzzScalar checks that every string reads back as itself.
func FuzzScalar(f *testing.F) {
	f.Add("GET /orders/{id}")
	f.Add("a: b")
	f.Fuzz(func(t *testing.T, s string) {
		// Import reads only UTF-8 documents, so every string it writes is UTF-8.
		if utf8.ValidString(s) {
			checkScalar(t, s)
		}
	})
}

func checkScalar(t *testing.T, s string) {
	t.Helper()
	text := "k: " + scalar(s) + "\n"
	var got map[string]string
	if err := yaml.Unmarshal([]byte(text), &got); err != nil {
		t.Errorf("%q: %q does not read: %v", s, text, err)
		return
	}
	if want := strings.ReplaceAll(s, "${", "$${"); got["k"] != want {
		t.Errorf("%q: %q reads as %q, want %q", s, text, got["k"], want)
	}
}
