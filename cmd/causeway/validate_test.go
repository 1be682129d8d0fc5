package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/causeway/causeway/internal/testutil"
	"github.com/spf13/cobra"
)

// runForTest runs a command in-process with args and returns what it printed and its error.
func runForTest(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.Execute()
	return out.String(), err
}

func exitCodeOf(err error) int {
	var ec exitCoder
	if asExitCoder(err, &ec) {
		return ec.ExitCode()
	}
	return -1
}

func TestValidateQuickstart(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "quickstart")
	out, err := runForTest(t, newValidateCmd(), dir)
	if err != nil {
		t.Fatalf("validate failed: %v\n%s", err, out)
	}
	want := "valid: 11 resources (1 API, 2 Flow, 3 FlowTest, 4 MessageType, 1 System) in " + dir + "\n"
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"systems.yaml": "apiVersion: causeway/v1\nkind: Sytem\nmetadata: {name: shop}\n",
		"types.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: order.created}
spec:
  owner: shop
  shema: {type: object}
`,
	})
	t.Chdir(dir)
	out, err := runForTest(t, newValidateCmd(), ".")
	if exitCodeOf(err) != 1 || err.Error() != "" {
		t.Fatalf("want a silent exit 1, got %v", err)
	}
	want := strings.Join([]string{
		`systems.yaml:2:7: unknown kind "Sytem" (known kinds: API, Alert, Consumer, Flow, FlowTest, MessageType, Source, System)`,
		`types.yaml:5:10: spec.owner: System "shop" is not defined`,
		`types.yaml:6:3: unknown field "shema" in MessageType spec (did you mean "schema"?)`,
	}, "\n") + "\n"
	if out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
}

// validateEnvDefs uses an environment value and a secret.
var validateEnvDefs = map[string]string{
	"systems.yaml": `apiVersion: causeway/v1
kind: System
metadata:
  name: erp
  description: ERP at ${SITE}, key ${secret:erp_key}
spec:
  location: agent:${SITE}
`,
	"environments/staging.yaml": "SITE: rotterdam\n",
}

func TestValidateEnvironmentAndSecrets(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, validateEnvDefs)
	// The secret lands in a plain string, which validate must refuse whether or not the
	// secret is available, and without showing it.
	secrets := t.TempDir()
	testutil.WriteFiles(t, secrets, map[string]string{"erp_key": "k-123-secret\n"})
	out, err := runForTest(t, newValidateCmd(), dir, "--env", "staging", "--secrets-dir", secrets)
	if exitCodeOf(err) != 1 || !strings.Contains(out, "metadata.description: ${secret:...} can only be used in a secret field") || strings.Contains(out, "k-123") {
		t.Fatalf("got %v:\n%s", err, out)
	}

	testutil.WriteFiles(t, dir, map[string]string{"systems.yaml": strings.Replace(validateEnvDefs["systems.yaml"], ", key ${secret:erp_key}", "", 1)})
	out, err = runForTest(t, newValidateCmd(), dir, "--env", "staging")
	if err != nil || !strings.HasPrefix(out, "valid: 1 resource (1 System) in ") {
		t.Fatalf("with --env: %v\n%s", err, out)
	}
	out, err = runForTest(t, newValidateCmd(), dir)
	if exitCodeOf(err) != 1 || !strings.Contains(out, "systems.yaml:5:16: unresolved ${SITE}: not set in the environment") {
		t.Fatalf("without --env: %v\n%s", err, out)
	}
}

func TestValidateFlagsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"systems.yaml": `apiVersion: causeway/v1
kind: System
metadata: {name: erp, description: "${SITE}"}
spec: {location: "agent:${SITE}"}
`,
		"environments/staging.yaml": "SITE: rotterdam\n",
		"environments/prod.yaml":    "SITE: Not-A-Label\n",
	})
	t.Setenv("CAUSEWAY_ENV", "staging")
	if out, err := runForTest(t, newValidateCmd(), dir); err != nil {
		t.Fatalf("CAUSEWAY_ENV=staging: %v\n%s", err, out)
	}
	// A flag wins over its variable.
	out, err := runForTest(t, newValidateCmd(), dir, "--env", "prod")
	if exitCodeOf(err) != 1 || !strings.Contains(out, `spec.location: invalid agent name "Not-A-Label"`) {
		t.Fatalf("--env prod: %v\n%s", err, out)
	}
	t.Setenv("CAUSEWAY_SKIP_SECRETS", "maybe")
	if _, err := runForTest(t, newValidateCmd(), dir); err == nil || !strings.Contains(err.Error(), "CAUSEWAY_SKIP_SECRETS") {
		t.Errorf("invalid CAUSEWAY_SKIP_SECRETS: %v", err)
	}
}

func TestValidateSkipSecretsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{
		"types.yaml": `apiVersion: causeway/v1
kind: MessageType
metadata: {name: a.b}
spec: {schema: true}
`,
	})
	t.Setenv("CAUSEWAY_SKIP_SECRETS", "true")
	t.Setenv("CAUSEWAY_SECRETS_DIR", filepath.Join(dir, "no-such-dir"))
	if out, err := runForTest(t, newValidateCmd(), dir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestValidateUsage(t *testing.T) {
	if _, err := runForTest(t, newValidateCmd()); err == nil || exitCodeOf(err) == 1 {
		t.Errorf("no DIR: want a usage error, got %v", err)
	}
	out, err := runForTest(t, newValidateCmd(), filepath.Join(t.TempDir(), "missing"))
	if exitCodeOf(err) != 1 || !strings.Contains(out, "missing: cannot read definitions: no such file or directory") {
		t.Errorf("missing DIR: %v\n%s", err, out)
	}
	empty := t.TempDir()
	if out, err := runForTest(t, newValidateCmd(), empty); err != nil || out != "valid: 0 resources in "+empty+"\n" {
		t.Errorf("empty DIR: %v %q", err, out)
	}
}

func TestSchemaCommand(t *testing.T) {
	out, err := runForTest(t, newSchemaCmd())
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "schema", "causeway.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(committed) {
		t.Error("causeway schema differs from schema/causeway.schema.json; run: go test ./kinds -update")
	}
	if _, err := runForTest(t, newSchemaCmd(), "extra"); err == nil {
		t.Error("schema takes no arguments")
	}
}

func TestCommandsRegistered(t *testing.T) {
	found := map[string]bool{}
	for _, c := range commands {
		found[c().Name()] = true
	}
	for _, name := range []string{"validate", "schema"} {
		if !found[name] {
			t.Errorf("command %s is not registered", name)
		}
	}
}
