package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	secrets := t.TempDir()
	if err := os.WriteFile(filepath.Join(secrets, "db.password"), []byte("pa55\r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &substituter{
		lookupEnv: func(name string) (string, bool) {
			v, ok := map[string]string{"A": "1", "EMPTY": "", "CAUSEWAY_SECRET_CRM_TOKEN": "tok", "BOTH": "proc"}[name]
			return v, ok
		},
		envFile:     map[string]string{"FROM_FILE": "file", "BOTH": "file"},
		envFileName: "environments/test.yaml",
		secretsDir:  secrets,
	}
	for _, tc := range []struct {
		in, out, problem string
		secret           bool
	}{
		{in: "plain", out: "plain"},
		{in: "${A}", out: "1"},
		{in: "x${A}y${A}", out: "x1y1"},
		{in: "${FROM_FILE}", out: "file"},
		{in: "${BOTH}", out: "proc"},
		{in: "${EMPTY}", out: ""},
		{in: "${EMPTY:-d}", out: "d"},
		{in: "${UNSET:-}", out: ""},
		{in: "${UNSET:-a:-b c}", out: "a:-b c"},
		{in: "$${A}", out: "${A}"},
		{in: "$$${A}", out: "$${A}"},
		{in: "$A and $", out: "$A and $"},
		{in: "${{ .a }}", out: "${{ .a }}"},
		{in: "${{ .a }} ${A}", out: "${{ .a }} 1"},
		{in: "${{ \"${A}\" }}", out: "${{ \"${A}\" }}"},
		{in: "${{ unterminated", out: "${{ unterminated"},
		{in: "${UNSET}", problem: "unresolved ${UNSET}: not set in the environment or environments/test.yaml"},
		{in: "${A", problem: `unterminated "${A" (write $${ for a literal ${)`},
		{in: "${}", problem: "invalid reference ${}"},
		{in: "${A B}", problem: "invalid reference ${A B}"},
		{in: "${secret:db.password}", out: "pa55", secret: true},
		{in: "u:${secret:crm-token}@${A}", out: "u:tok@1", secret: true},
		{in: "${secret:}", problem: `invalid secret name ""`, secret: true},
		{in: "${secret:a/b}", problem: `invalid secret name "a/b"`, secret: true},
		{in: "${secret:nope}", problem: `secret "nope" not found: no file ` + filepath.Join(secrets, "nope") + " and CAUSEWAY_SECRET_NOPE is not set", secret: true},
	} {
		x := s.expand(tc.in, true)
		problems := strings.Join(x.problems, "; ")
		switch {
		case tc.problem != "" && !strings.Contains(problems, tc.problem):
			t.Errorf("%q: problems %q, want %q", tc.in, problems, tc.problem)
		case tc.problem == "" && problems != "":
			t.Errorf("%q: unexpected problems %q", tc.in, problems)
		case tc.problem == "" && x.out != tc.out:
			t.Errorf("%q: got %q, want %q", tc.in, x.out, tc.out)
		}
		if x.secrets != tc.secret {
			t.Errorf("%q: secrets = %v", tc.in, x.secrets)
		}
	}
	// Without a secrets directory only the environment is looked at, and the message says so.
	s.secretsDir = ""
	if x := s.expand("${secret:db.password}", true); !strings.Contains(strings.Join(x.problems, ""), "CAUSEWAY_SECRET_DB_PASSWORD is not set and no secrets directory is configured") {
		t.Errorf("problems %q", x.problems)
	}
	// Without withSecrets nothing is read.
	if x := s.expand("${secret:nope}", false); len(x.problems) > 0 || !x.secrets {
		t.Errorf("reading without withSecrets: %+v", x)
	}
}

// TestSubstitutedTypes checks that a substituted value takes the type of its field, and
// that in untyped (JSON) values an unquoted reference is read as YAML and a quoted one stays
// a string.
func TestSubstitutedTypes(t *testing.T) {
	src := `apiVersion: causeway/v1
kind: Widget
metadata: {name: a}
spec:
  req: ${PORT}
  count: "${PORT}"
  enabled: '${FLAG}'
  ratio: ${PORT}
  nested: {url: '${HOST}', retries: '${UNSET:-4}'}
  data:
    plain: ${PORT}
    quoted: "${PORT}"
    flag: ${FLAG}
    empty: ${EMPTY}
`
	cfg, err := loadSources("testdata", []source{{"a.yaml", []byte(src)}}, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := cfg.Get("Widget", "a")
	w := r.Spec.(*widgetSpec)
	if w.Req != "8080" || w.Count != 8080 || w.Enabled || w.Ratio != 8080 || w.Nested.Retries != 4 {
		t.Errorf("decoded %+v", w)
	}
	if want := `{"plain":8080,"quoted":"8080","flag":false,"empty":null}`; string(w.Data.Raw) != want {
		t.Errorf("data = %s, want %s", w.Data.Raw, want)
	}
}
