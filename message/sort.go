package message

import (
	"slices"
	"strings"
)

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortProblems orders problems by pointer so that reports are deterministic although
// attributes are decoded from a map.
func sortProblems(p FieldErrors) {
	slices.SortStableFunc(p, func(a, b FieldError) int { return strings.Compare(a.Pointer, b.Pointer) })
}
