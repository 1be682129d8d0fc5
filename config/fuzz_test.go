package config

import (
	"errors"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader as a definition file. Whatever the input, the
// loader must not panic, and when it refuses a file it must say why, with positions in that
// file.
func FuzzLoad(f *testing.F) {
	reg := testRegistry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{Registry: reg, LookupEnv: lookupTestEnv}
		cfg, err := loadSources(".", []source{{"fuzz.yaml", data}}, opts)
		if err == nil {
			if cfg == nil {
				t.Fatal("no error and no config")
			}
			_ = cfg.Cleanup()
			return
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error is not a non-empty ErrorList: %v", err)
		}
		for _, e := range list {
			if e.Msg == "" {
				t.Fatalf("problem without a message at %v", e.Pos)
			}
			if e.Pos.File != "fuzz.yaml" && e.Pos.File != "" {
				t.Fatalf("problem in another file: %v", e)
			}
		}
		_ = list.Error()
	})
}
