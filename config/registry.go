package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Kind describes one kind of resource: its name as written after "kind:", documentation for
// the generated reference, and how to make a fresh spec value to decode into.
type Kind struct {
	// Name is the kind's name, in UpperCamelCase ("MessageType").
	Name string
	// Doc explains what a resource of this kind describes, in full sentences.
	Doc string
	// Example is a complete YAML document of this kind, shown in the reference.
	Example string
	// New returns a pointer to a fresh spec struct. The struct's fields and their tags are
	// the kind's schema; see the package documentation for the tags.
	New func() any
}

// Registry is a set of kinds. It is a plain value rather than a global so that the binary,
// the generators and every test can each build the set they need.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]*kindInfo
	types map[reflect.Type]*typeInfo
}

// kindInfo is a registered kind with its analysed spec type.
type kindInfo struct {
	Kind
	spec reflect.Type // the struct type New points to
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{kinds: map[string]*kindInfo{}, types: map[reflect.Type]*typeInfo{}}
}

var kindNamePattern = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// Register adds a kind. It checks the kind and its spec struct thoroughly (names, tags,
// defaults, supported field types), so a mistake in a spec struct is found when the program
// starts, not when a user's file happens to use the field.
func (r *Registry) Register(k Kind) error {
	if !kindNamePattern.MatchString(k.Name) {
		return fmt.Errorf("config: kind name %q must be UpperCamelCase letters and digits", k.Name)
	}
	if strings.TrimSpace(k.Doc) == "" {
		return fmt.Errorf("config: kind %s has no Doc", k.Name)
	}
	if k.New == nil {
		return fmt.Errorf("config: kind %s has no New function", k.Name)
	}
	v := k.New()
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || reflect.ValueOf(v).IsNil() {
		return fmt.Errorf("config: kind %s: New must return a non-nil pointer to a struct, got %T", k.Name, v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.kinds[k.Name]; dup {
		return fmt.Errorf("config: kind %s is already registered", k.Name)
	}
	a := analyzer{types: r.types}
	if _, err := a.structInfo(t.Elem()); err != nil {
		return fmt.Errorf("config: kind %s: %w", k.Name, err)
	}
	r.kinds[k.Name] = &kindInfo{Kind: k, spec: t.Elem()}
	return nil
}

// Kinds returns the registered kinds sorted by name.
func (r *Registry) Kinds() []Kind {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k.Kind)
	}
	slices.SortFunc(out, func(a, b Kind) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns the kind registered under name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	k, ok := r.kind(name)
	if !ok {
		return Kind{}, false
	}
	return k.Kind, true
}

func (r *Registry) kind(name string) (*kindInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

func (r *Registry) kindNames() []string {
	var names []string
	for _, k := range r.Kinds() {
		names = append(names, k.Name)
	}
	return names
}

// typeInfo returns the analysed form of a struct type. Every struct reachable from a
// registered spec was analysed by Register; analysing lazily here covers the envelope's own
// structs and keeps a missing entry from being fatal.
func (r *Registry) typeInfo(t reflect.Type) (*typeInfo, error) {
	r.mu.RLock()
	ti, ok := r.types[t]
	r.mu.RUnlock()
	if ok {
		return ti, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := analyzer{types: r.types}
	return a.structInfo(t)
}

// checkRefs verifies that every kind named in a ref tag is registered. It runs when loading
// starts rather than in Register, because kinds may be registered in any order.
func (r *Registry) checkRefs() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var problems []string
	names := make([]string, 0, len(r.kinds))
	for name := range r.kinds {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		k := r.kinds[name]
		walkFields(r.types, k.spec, "spec", func(path string, f *fieldInfo) {
			if f.ref != "" {
				if _, ok := r.kinds[f.ref]; !ok {
					problems = append(problems, fmt.Sprintf("config: kind %s: field %s refers to kind %s, which is not registered", name, path, f.ref))
				}
			}
		})
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// walkFields calls fn for every field of a struct type and of the structs nested in it, with
// the field's dotted path ("spec.operations[].path"). A type that contains itself is walked
// once.
func walkFields(types map[reflect.Type]*typeInfo, t reflect.Type, prefix string, fn func(path string, f *fieldInfo)) {
	walkFieldsOnce(types, t, prefix, fn, map[reflect.Type]bool{})
}

func walkFieldsOnce(types map[reflect.Type]*typeInfo, t reflect.Type, prefix string, fn func(path string, f *fieldInfo), open map[reflect.Type]bool) {
	ti := types[t]
	if ti == nil || open[t] {
		return
	}
	open[t] = true
	defer delete(open, t)
	for _, f := range ti.fields {
		path := prefix + "." + f.name
		fn(path, f)
		inner, suffix := elemType(f.typ)
		if inner.Kind() == reflect.Struct && types[inner] != nil {
			walkFieldsOnce(types, inner, path+suffix, fn, open)
		}
	}
}
