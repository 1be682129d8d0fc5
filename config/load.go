package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// APIVersion is the only apiVersion definitions may declare. It is versioned so that a
// future incompatible format can be told apart and converted, rather than misread.
const APIVersion = "causeway/v1"

// Metadata is what every resource has besides its spec.
type Metadata struct {
	// Name identifies the resource among those of its kind.
	Name string `yaml:"name" required:"true" doc:"Name of the resource, unique among resources of its kind: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, at most 253 characters." example:"order.created"`
	// Description says what the resource is.
	Description string `yaml:"description" doc:"What the resource is, for people reading the catalogue and the console."`
	// Labels are free-form key/value pairs.
	Labels map[string]string `yaml:"labels" doc:"Free-form key/value pairs for grouping and selecting resources, such as the owning team."`
}

var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

const maxNameLength = 253

// Resource is one loaded definition.
type Resource struct {
	// APIVersion is the document's apiVersion, always APIVersion.
	APIVersion string
	// Kind is the name of the resource's kind.
	Kind string
	// Metadata is the resource's name, description and labels.
	Metadata Metadata
	// Spec is the pointer returned by the kind's New, decoded and provisioned.
	Spec any
	// Pos is where the document starts.
	Pos Position
	// File is the file the document is in, as filepath.Join(dir, relative path).
	File string

	namePos     Position
	specPos     Position
	fields      map[string]Position
	refs        []refUse
	failed      bool // decoding reported problems, so the spec is not provisioned
	provisioned bool
	cleaned     bool
}

// String names the resource as messages do: MessageType "order.created".
func (r *Resource) String() string { return fmt.Sprintf("%s %q", r.Kind, r.Metadata.Name) }

// Options control Load.
type Options struct {
	// Registry holds the kinds definitions may use. Required.
	Registry *Registry
	// Env names the environment whose values file, environments/<Env>.yaml under the loaded
	// directory, supplies ${NAME} values. Empty for none.
	Env string
	// SecretsDir is the directory holding one file per secret for ${secret:NAME}.
	SecretsDir string
	// LookupEnv reads the process environment; nil means os.LookupEnv. Tests replace it.
	LookupEnv func(string) (string, bool)
	// SkipSecrets checks ${secret:NAME} references for syntax only and leaves secret fields
	// empty, for validating definitions where the secrets are not available, as in CI.
	SkipSecrets bool
}

// Config is a loaded, provisioned and validated set of definitions.
type Config struct {
	dir    string
	all    []*Resource
	byKind map[string][]*Resource
	index  map[string]map[string]*Resource

	cleanupOnce sync.Once
	cleanupErr  error
}

// Dir returns the directory the definitions were loaded from.
func (c *Config) Dir() string { return c.dir }

// All returns every resource in the order it was read: files in the order of a walk of the
// tree that visits each directory's entries sorted by name, documents in file order.
func (c *Config) All() []*Resource { return slices.Clone(c.all) }

// ByKind returns the resources of one kind, in the order of All.
func (c *Config) ByKind(kind string) []*Resource { return slices.Clone(c.byKind[kind]) }

// Get returns a resource by kind and name.
func (c *Config) Get(kind, name string) (*Resource, bool) {
	r, ok := c.index[kind][name]
	return r, ok
}

// Cleanup releases what the specs' Provision acquired, in reverse order. It runs once;
// later calls return the first call's result.
func (c *Config) Cleanup() error {
	c.cleanupOnce.Do(func() { c.cleanupErr = cleanupAll(c.all) })
	return c.cleanupErr
}

func cleanupAll(rs []*Resource) error {
	var errs []error
	for _, r := range slices.Backward(rs) {
		if err := r.cleanup(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Load reads every definition under dir, decodes it, then provisions and validates each
// resource. On any problem it returns an ErrorList holding every problem found, after
// cleaning up whatever was provisioned, and no Config.
//
// Files are the *.yaml and *.yml files in the tree, except hidden files and directories, the
// environments directory at the top, and *.schema.yaml / *.schema.yml files, which hold JSON
// Schemas that definitions refer to.
func Load(dir string, opts Options) (*Config, error) {
	if opts.Registry == nil {
		return nil, errors.New("config: Options.Registry is nil")
	}
	if err := opts.Registry.checkRefs(); err != nil {
		return nil, err
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, ErrorList{errorf(Position{File: dir}, "cannot read definitions: %v", unwrapPathError(err))}
	}
	if !info.IsDir() {
		return nil, ErrorList{errorf(Position{File: dir}, "not a directory; give the directory holding the definitions")}
	}
	l := newLoader(dir, opts)
	if !l.loadEnv(dir, opts.Env) {
		return nil, l.errs
	}
	for _, path := range l.findFiles(dir) {
		data, err := os.ReadFile(path)
		if err != nil {
			l.errs = append(l.errs, errorf(Position{File: path}, "cannot read file: %v", unwrapPathError(err)))
			continue
		}
		l.loadFile(path, data)
	}
	return l.finish()
}

// source is one file's name and content.
type source struct {
	path string
	data []byte
}

// loadSources loads files already in memory as Load loads a directory, for the fuzz target
// and the table tests, which need the same pipeline without the directory walk.
func loadSources(dir string, sources []source, opts Options) (*Config, error) {
	if opts.Registry == nil {
		return nil, errors.New("config: Options.Registry is nil")
	}
	l := newLoader(dir, opts)
	if !l.loadEnv(dir, opts.Env) {
		return nil, l.errs
	}
	for _, s := range sources {
		l.loadFile(s.path, s.data)
	}
	return l.finish()
}

// loader carries the state of one Load.
type loader struct {
	reg  *Registry
	sub  *substituter
	errs ErrorList
	cfg  *Config
}

func newLoader(dir string, opts Options) *loader {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &loader{
		reg: opts.Registry,
		sub: &substituter{lookupEnv: lookup, secretsDir: opts.SecretsDir, skipSecrets: opts.SkipSecrets},
		cfg: &Config{dir: dir, byKind: map[string][]*Resource{}, index: map[string]map[string]*Resource{}},
	}
}

// loadEnv reads the environment file, if one was asked for. Without the environment's values
// every reference to one would be reported as unresolved, burying the actual problem, so a
// problem with the file stops the load.
func (l *loader) loadEnv(dir, env string) bool {
	if env == "" {
		return true
	}
	l.sub.envFile, l.sub.envFileName = loadEnvFile(dir, env, &l.errs)
	if len(l.errs) > 0 {
		l.errs.Sort()
		return false
	}
	return true
}

// findFiles lists the definition files under dir, each directory's entries sorted by name,
// so that loading (and the order of All) does not depend on the file system.
func (l *loader) findFiles(dir string) []string {
	var files []string
	envDir := filepath.Join(dir, "environments")
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			l.errs = append(l.errs, errorf(Position{File: path}, "cannot read: %v", unwrapPathError(err)))
			if d != nil && d.IsDir() && path != dir {
				return fs.SkipDir
			}
			return nil
		}
		if path == dir {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if path == envDir {
				return fs.SkipDir
			}
			return nil
		}
		if isDefinitionFile(name) {
			files = append(files, path)
		}
		return nil
	})
	return files
}

func isDefinitionFile(name string) bool {
	lower := strings.ToLower(name)
	if !strings.HasSuffix(lower, ".yaml") && !strings.HasSuffix(lower, ".yml") {
		return false
	}
	return !strings.HasSuffix(lower, ".schema.yaml") && !strings.HasSuffix(lower, ".schema.yml")
}

// loadFile decodes every document of one file.
func (l *loader) loadFile(path string, data []byte) {
	for _, doc := range parseYAML(path, data, l.sub, &l.errs) {
		l.loadDocument(path, doc)
	}
}

var topLevelFields = []string{"apiVersion", "kind", "metadata", "spec"}

// loadDocument decodes one document's envelope and spec and adds the resource.
func (l *loader) loadDocument(file string, doc *node) {
	if doc.kind != mappingNode {
		if !doc.bad {
			l.errs = append(l.errs, errorf(doc.pos, "a definition is a mapping with apiVersion, kind, metadata and spec, got %s", doc.describe()))
		}
		return
	}
	before := len(l.errs)
	top := map[string]entry{}
	for _, e := range doc.entries {
		top[e.key] = e
	}
	av, hasAV := top["apiVersion"]
	kv, hasKind := top["kind"]
	if !hasAV && !hasKind {
		l.errs = append(l.errs, errorf(doc.pos, "not a definition: apiVersion and kind are missing "+
			"(a YAML file holding a JSON Schema must be named *.schema.yaml to be left out of the definitions)"))
		return
	}
	for _, e := range doc.entries {
		if !slices.Contains(topLevelFields, e.key) {
			msg := fmt.Sprintf("unknown top-level field %s", quoteShort(e.key))
			if sug := suggest(e.key, topLevelFields); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			l.errs = append(l.errs, &Error{Pos: e.keyPos, Msg: msg})
		}
	}
	if !hasAV {
		l.errs = append(l.errs, errorf(doc.pos, "apiVersion: required field missing"))
	} else if s, ok := l.envelopeString(av, "apiVersion", fmt.Sprintf("%q", APIVersion)); ok && s != APIVersion {
		l.errs = append(l.errs, errorf(av.value.pos, "apiVersion: expected %q, got %s", APIVersion, quoteShort(s)))
	}

	var kind *kindInfo
	if !hasKind {
		l.errs = append(l.errs, errorf(doc.pos, "kind: required field missing"))
	} else if s, ok := l.envelopeString(kv, "kind", "a kind name"); ok {
		if kind, ok = l.reg.kind(s); !ok {
			known := "no kinds are registered"
			if names := l.reg.kindNames(); len(names) > 0 {
				known = "known kinds: " + strings.Join(names, ", ")
			}
			l.errs = append(l.errs, errorf(kv.value.pos, "unknown kind %s (%s)", quoteShort(s), known))
		}
	}

	res := &Resource{APIVersion: APIVersion, Pos: doc.pos, File: file, fields: map[string]Position{}}
	d := &decoder{reg: l.reg, sub: l.sub, errs: &l.errs, fields: res.fields, budget: maxValues}
	if me, ok := top["metadata"]; !ok {
		l.errs = append(l.errs, errorf(doc.pos, "metadata: required field missing"))
	} else if me.value.kind == nullNode && !me.value.bad {
		l.errs = append(l.errs, errorf(me.keyPos, "metadata: required field is empty"))
	} else {
		d.value(me.value, reflect.ValueOf(&res.Metadata).Elem(), "metadata", nil)
		res.namePos = res.fields["metadata.name"]
		if name := res.Metadata.Name; name != "" && (len(name) > maxNameLength || !namePattern.MatchString(name)) {
			l.errs = append(l.errs, errorf(res.namePos, "metadata.name: invalid name %s: use lowercase letters, digits, '.' and '-', "+
				"starting and ending with a letter or digit, at most %d characters", quoteShort(name), maxNameLength))
			res.Metadata.Name = ""
		}
	}
	if kind == nil {
		return
	}

	res.Kind = kind.Name
	res.Spec = kind.New()
	d.kind = kind.Name
	specNode := &node{kind: mappingNode, pos: doc.pos}
	if se, ok := top["spec"]; ok {
		specNode = se.value
		if specNode.kind == nullNode && !specNode.bad {
			// "spec:" with nothing after it is an empty spec; decoding an empty mapping
			// applies the defaults and reports the required fields.
			specNode = &node{kind: mappingNode, pos: se.keyPos}
		}
	}
	res.specPos = specNode.pos
	d.value(specNode, reflect.ValueOf(res.Spec).Elem(), "spec", nil)
	res.refs = d.refs
	res.failed = len(l.errs) > before
	if res.Metadata.Name == "" {
		return
	}
	if first, dup := l.cfg.index[res.Kind][res.Metadata.Name]; dup {
		l.errs = append(l.errs, errorf(res.namePos, "duplicate %s %q (first defined at %s)", res.Kind, res.Metadata.Name, first.namePos))
		return
	}
	if l.cfg.index[res.Kind] == nil {
		l.cfg.index[res.Kind] = map[string]*Resource{}
	}
	l.cfg.index[res.Kind][res.Metadata.Name] = res
	l.cfg.byKind[res.Kind] = append(l.cfg.byKind[res.Kind], res)
	l.cfg.all = append(l.cfg.all, res)
}

// envelopeString reads apiVersion or kind, which must be strings; want describes the
// expected value for a message about a value of another type.
func (l *loader) envelopeString(e entry, field, want string) (string, bool) {
	n := e.value
	switch {
	case n.bad:
		return "", false
	case n.secret:
		l.errs = append(l.errs, errorf(n.pos, "%s: ${secret:...} can only be used in a secret field", field))
		return "", false
	case n.kind == nullNode:
		l.errs = append(l.errs, errorf(e.keyPos, "%s: required field is empty", field))
		return "", false
	}
	if s, ok := n.val.(string); ok && n.kind == scalarNode {
		return s, true
	}
	if n.subst && n.kind == scalarNode {
		return n.text, true
	}
	l.errs = append(l.errs, errorf(n.pos, "%s: expected %s, got %s", field, want, n.describe()))
	return "", false
}

// finish checks references between resources, runs the lifecycle and returns the result.
func (l *loader) finish() (*Config, error) {
	for _, r := range l.cfg.all {
		for _, ref := range r.refs {
			if _, ok := l.cfg.index[ref.kind][ref.name]; ok {
				continue
			}
			msg := fmt.Sprintf("%s %q is not defined", ref.kind, ref.name)
			if ref.path != "" {
				msg = ref.path + ": " + msg
			}
			var names []string
			for _, other := range l.cfg.byKind[ref.kind] {
				names = append(names, other.Metadata.Name)
			}
			if sug := suggest(ref.name, names); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			l.errs = append(l.errs, &Error{Pos: ref.pos, Msg: msg})
		}
	}
	ready := make([]bool, len(l.cfg.all))
	for i, r := range l.cfg.all {
		if r.failed {
			continue
		}
		ready[i] = true
		if p, ok := r.Spec.(Provisioner); ok {
			r.provisioned = true
			ready[i] = runStep(l.context(r), "provisioning", p.Provision)
		}
	}
	for i, r := range l.cfg.all {
		if v, ok := r.Spec.(Validator); ok && ready[i] {
			runStep(l.context(r), "validating", v.Validate)
		}
	}
	if len(l.errs) > 0 {
		if err := cleanupAll(l.cfg.all); err != nil {
			l.errs = append(l.errs, errorf(Position{}, "%v", err))
		}
		l.errs.Sort()
		return nil, l.errs
	}
	return l.cfg, nil
}

func (l *loader) context(r *Resource) *Context {
	return &Context{res: r, cfg: l.cfg, errs: &l.errs}
}
