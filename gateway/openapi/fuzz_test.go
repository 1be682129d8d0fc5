package openapi_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml/parser"

	"github.com/causeway/causeway/gateway/openapi"
)

// FuzzImport checks that no document makes Import panic, and that whatever it writes is
// two YAML documents. Its seeds are in testdata/fuzz/FuzzImport and testdata/import.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"petstore", "billing"} {
		data, err := os.ReadFile(filepath.Join("testdata", "import", name+".yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := openapi.Import(data, openapi.ImportOptions{System: "fz"})
		if err != nil {
			if out != nil {
				t.Errorf("output with an error: %v", err)
			}
			return
		}
		file, err := parser.ParseBytes(out, 0)
		if err != nil {
			t.Fatalf("the output is not YAML: %v\n%s", err, out)
		}
		if len(file.Docs) != 2 {
			t.Fatalf("%d YAML documents, want 2:\n%s", len(file.Docs), out)
		}
	})
}
