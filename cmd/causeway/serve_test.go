package main

import (
	"strings"
	"testing"
)

// TestServeRefusesBadPolicies checks that a wrong --sync or --group-commit (or the same
// from the environment) is an error naming the value before anything starts.
func TestServeRefusesBadPolicies(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--sync", "sometimes"}, want: `sync "sometimes": expected "always" or "interval:DURATION"`},
		{args: []string{"--group-commit", "maybe"}, want: `group commit "maybe": expected auto, on or off`},
		{env: map[string]string{"CAUSEWAY_GROUP_COMMIT": "yes"}, want: `group commit "yes"`},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		args := append([]string{"--config", dir, "--data", t.TempDir()}, tc.args...)
		_, err := runForTest(t, newServeCmd(), args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}
