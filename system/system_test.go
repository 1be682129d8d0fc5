package system_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/system"
)

func loadSystem(t *testing.T, spec string) (*system.Spec, error) {
	t.Helper()
	dir := t.TempDir()
	doc := "apiVersion: causeway/v1\nkind: System\nmetadata: {name: erp}\n" + spec
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := config.NewRegistry()
	if err := system.Register(r); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir, config.Options{Registry: r})
	if err != nil {
		return nil, err
	}
	res, ok := cfg.Get(system.Kind, "erp")
	if !ok {
		t.Fatal("system not loaded")
	}
	return res.Spec.(*system.Spec), nil
}

func TestLocation(t *testing.T) {
	for spec, want := range map[string]string{
		"":                                    "cloud",
		"spec:\n":                             "cloud",
		"spec: {location: cloud}\n":           "cloud",
		"spec: {location: agent:rotterdam}\n": "agent:rotterdam",
		"spec: {location: agent:a}\n":         "agent:a",
		"spec: {location: agent:plant-7}\n":   "agent:plant-7",
	} {
		s, err := loadSystem(t, spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if s.Location != want {
			t.Errorf("%q: location %q, want %q", spec, s.Location, want)
		}
		agent, isAgent := s.Agent()
		if isAgent != strings.HasPrefix(want, "agent:") || (isAgent && "agent:"+agent != want) {
			t.Errorf("%q: Agent() = %q, %v", spec, agent, isAgent)
		}
	}
}

func TestInvalidLocation(t *testing.T) {
	for spec, want := range map[string]string{
		"spec: {location: onprem}\n":                                `s.yaml:4:18: spec.location: invalid location "onprem": use "cloud" or "agent:<name>"`,
		"spec: {location: Cloud}\n":                                 `spec.location: invalid location "Cloud"`,
		"spec: {location: 'agent:'}\n":                              `s.yaml:4:18: spec.location: invalid agent name "": use lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
		"spec: {location: agent:Plant}\n":                           `invalid agent name "Plant"`,
		"spec: {location: agent:-x}\n":                              `invalid agent name "-x"`,
		"spec: {location: agent:a.b}\n":                             `invalid agent name "a.b"`,
		"spec: {location: agent:" + strings.Repeat("a", 64) + "}\n": `invalid agent name "aaaa`,
		"spec: {locaton: cloud}\n":                                  `s.yaml:4:8: unknown field "locaton" in System spec (did you mean "location"?)`,
	} {
		_, err := loadSystem(t, spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", spec, err, want)
		}
	}
}
