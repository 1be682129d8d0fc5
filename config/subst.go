package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// secretEnvPrefix is the prefix of the environment variables that can supply secrets, for
// platforms that inject secrets as variables rather than files.
const secretEnvPrefix = "CAUSEWAY_SECRET_"

// maxSecretSize bounds what is read from one secret file; a secret is a password, a token or
// a key, not a data set.
const maxSecretSize = 1 << 20

var (
	varNamePattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	secretNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	envNamePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	nonVarChar        = regexp.MustCompile(`[^A-Za-z0-9_]`)
)

// substituter replaces ${...} references in scalar values when the definitions load.
type substituter struct {
	lookupEnv   func(string) (string, bool)
	envFile     map[string]string
	envFileName string // "environments/staging.yaml"; empty when no environment was chosen
	secretsDir  string
	skipSecrets bool
}

// expansion is what expand found in a value besides its result.
type expansion struct {
	out      string
	vars     bool // a ${NAME} was replaced
	secrets  bool // a ${secret:NAME} occurs
	problems []string
}

// scalar substitutes the references in one scalar while the file is converted. plain says the
// scalar was written unquoted, in which case the result is read again as a YAML value, so that
// "${PORT}" can be an integer while "'${PORT}'" stays a string.
func (s *substituter) scalar(n *node, plain bool, errs *ErrorList) {
	if !strings.Contains(n.text, "${") {
		return
	}
	x := s.expand(n.text, false)
	for _, p := range x.problems {
		*errs = append(*errs, &Error{Pos: n.pos, Msg: p})
	}
	switch {
	case len(x.problems) > 0:
		n.bad = true
	case x.secrets:
		// The raw text stays in place: the value is read only when a Secret field asks.
		n.secret = true
	case x.vars:
		n.val, n.text, n.subst = x.out, x.out, true
		if plain {
			resolvePlain(n)
		}
	default:
		n.val, n.text = x.out, x.out
	}
}

// expand replaces the references in raw. Secrets are read only when withSecrets is set,
// which only the decoding of a Secret field does.
//
// The syntax: "$${" is a literal "${"; "${{ ... }}" is a run-time expression and stays as
// written; "${secret:NAME}" is a secret; "${NAME}" and "${NAME:-default}" are variables, the
// default applying when the variable is unset or empty, as in a POSIX shell.
func (s *substituter) expand(raw string, withSecrets bool) expansion {
	var x expansion
	var b strings.Builder
	for i := 0; i < len(raw); {
		switch {
		case strings.HasPrefix(raw[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(raw[i:], "${{"):
			end := strings.Index(raw[i+3:], "}}")
			if end < 0 {
				b.WriteString(raw[i:])
				i = len(raw)
				break
			}
			b.WriteString(raw[i : i+3+end+2])
			i += 3 + end + 2
		case strings.HasPrefix(raw[i:], "${"):
			end := strings.IndexByte(raw[i+2:], '}')
			if end < 0 {
				x.problems = append(x.problems, fmt.Sprintf("unterminated %s (write $${ for a literal ${)", quoteShort(raw[i:])))
				return x
			}
			ref := raw[i+2 : i+2+end]
			i += 2 + end + 1
			if name, ok := strings.CutPrefix(ref, "secret:"); ok {
				x.secrets = true
				if !secretNamePattern.MatchString(name) {
					x.problems = append(x.problems, fmt.Sprintf("invalid secret name %s in ${secret:...}: use letters, digits, '_', '.' and '-'", quoteShort(name)))
					continue
				}
				if withSecrets && !s.skipSecrets {
					v, problem := s.secret(name)
					if problem != "" {
						x.problems = append(x.problems, problem)
					}
					b.WriteString(v)
				}
				continue
			}
			name, def, hasDef := strings.Cut(ref, ":-")
			if !varNamePattern.MatchString(name) {
				x.problems = append(x.problems, fmt.Sprintf("invalid reference ${%s}: a variable name has letters, digits and '_' and does not start with a digit", ref))
				continue
			}
			x.vars = true
			if v, ok := s.lookup(name); ok && (v != "" || !hasDef) {
				b.WriteString(v)
			} else if hasDef {
				b.WriteString(def)
			} else {
				x.problems = append(x.problems, s.unresolved(name))
			}
		default:
			b.WriteByte(raw[i])
			i++
		}
	}
	x.out = b.String()
	return x
}

// lookup finds a variable in the process environment first, so that a pipeline can override
// one value of an environment file without editing it, then in the environment file.
func (s *substituter) lookup(name string) (string, bool) {
	if v, ok := s.lookupEnv(name); ok {
		return v, true
	}
	v, ok := s.envFile[name]
	return v, ok
}

func (s *substituter) unresolved(name string) string {
	if s.envFileName != "" {
		return fmt.Sprintf("unresolved ${%s}: not set in the environment or %s", name, s.envFileName)
	}
	return fmt.Sprintf("unresolved ${%s}: not set in the environment", name)
}

// secretEnvNames returns the variables that can hold a secret: the name as written, then
// upper-cased with every character a variable cannot hold replaced by '_', so that
// ${secret:crm-token} can come from CAUSEWAY_SECRET_CRM_TOKEN.
func secretEnvNames(name string) []string {
	exact := secretEnvPrefix + name
	norm := secretEnvPrefix + strings.ToUpper(nonVarChar.ReplaceAllString(name, "_"))
	if norm == exact {
		return []string{exact}
	}
	return []string{exact, norm}
}

// secret reads a secret from the secrets directory or the environment. A problem message
// names where it looked, never what it found.
func (s *substituter) secret(name string) (string, string) {
	if s.secretsDir != "" {
		path := filepath.Join(s.secretsDir, name)
		v, err := readSecretFile(path)
		if err == nil {
			return v, ""
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Sprintf("secret %q: %v", name, err)
		}
	}
	names := secretEnvNames(name)
	for _, env := range names {
		if v, ok := s.lookupEnv(env); ok {
			return v, ""
		}
	}
	where := names[len(names)-1] + " is not set"
	if s.secretsDir != "" {
		where = fmt.Sprintf("no file %s and %s", filepath.Join(s.secretsDir, name), where)
	} else {
		where += " and no secrets directory is configured"
	}
	return "", fmt.Sprintf("secret %q not found: %s", name, where)
}

func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(data) > maxSecretSize {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxSecretSize)
	}
	// Files written with echo or an editor end in a newline that is not part of the secret.
	return strings.TrimRight(string(data), "\r\n"), nil
}

// loadEnvFile reads <dir>/environments/<env>.yaml (or .yml): a flat mapping from variable
// names to single values.
func loadEnvFile(dir, env string, errs *ErrorList) (map[string]string, string) {
	envDir := filepath.Join(dir, "environments")
	if !envNamePattern.MatchString(env) {
		*errs = append(*errs, errorf(Position{File: envDir}, "invalid environment name %q: use letters, digits, '_', '.' and '-'", env))
		return nil, ""
	}
	var path, shown string
	var data []byte
	for _, ext := range []string{".yaml", ".yml"} {
		p := filepath.Join(envDir, env+ext)
		d, err := os.ReadFile(p)
		if err == nil {
			path, data, shown = p, d, "environments/"+env+ext
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			*errs = append(*errs, errorf(Position{File: p}, "cannot read environment file: %v", err))
			return nil, ""
		}
	}
	if path == "" {
		*errs = append(*errs, errorf(Position{File: envDir}, "environment %q not found: there is no environments/%s.yaml", env, env))
		return nil, ""
	}
	vars := map[string]string{}
	docs := parseYAML(path, data, nil, errs)
	for i, doc := range docs {
		if i > 0 {
			*errs = append(*errs, errorf(doc.pos, "an environment file holds a single mapping, found a second document"))
			break
		}
		if doc.kind != mappingNode {
			if !doc.bad {
				*errs = append(*errs, errorf(doc.pos, "an environment file holds a mapping of variable names to values, got %s", doc.describe()))
			}
			break
		}
		for _, e := range doc.entries {
			if !varNamePattern.MatchString(e.key) {
				*errs = append(*errs, errorf(e.keyPos, "invalid variable name %s: use letters, digits and '_', not starting with a digit", quoteShort(e.key)))
				continue
			}
			switch e.value.kind {
			case scalarNode:
				vars[e.key] = e.value.text
			case nullNode:
				vars[e.key] = ""
			default:
				*errs = append(*errs, errorf(e.value.pos, "environment value %s must be a single value, got %s", e.key, e.value.describe()))
			}
		}
	}
	return vars, shown
}
