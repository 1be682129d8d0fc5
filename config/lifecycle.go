package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Provisioner is implemented by specs that prepare something from their decoded fields,
// such as compiling a JSON Schema or a jq expression. Provision runs after every file has
// been decoded, so other resources can be looked up, and before any Validate.
type Provisioner interface {
	Provision(ctx *Context) error
}

// Validator is implemented by specs that check what field tags cannot express: rules
// between fields, or against other resources. Validate runs after every resource has been
// provisioned.
type Validator interface {
	Validate(ctx *Context) error
}

// Cleaner is implemented by specs whose Provision acquires something that must be released.
// Cleanup is called once for every spec whose Provision was called, including one whose
// Provision failed halfway, so it must cope with a partly provisioned value.
type Cleaner interface {
	Cleanup() error
}

// Context is what Provision and Validate get: the resource being prepared, a way to report
// problems at the position of one of its fields, and access to the other resources.
//
// A spec reports problems with Errorf or ErrorAt and then returns Err(); it may instead
// return any other error, which is reported at the spec. When it has reported problems
// through the context, the error it returns is not reported a second time.
type Context struct {
	res   *Resource
	cfg   *Config
	errs  *ErrorList
	count int
}

// Resource returns the resource being provisioned or validated.
func (c *Context) Resource() *Resource { return c.res }

// Name returns the resource's metadata.name.
func (c *Context) Name() string { return c.res.Metadata.Name }

// Kind returns the resource's kind.
func (c *Context) Kind() string { return c.res.Kind }

// File returns the file the resource was defined in, as it appears in messages.
func (c *Context) File() string { return c.res.File }

// Dir returns the directory of the file the resource was defined in; paths written in a
// definition (such as a schemaFile) are relative to it.
func (c *Context) Dir() string { return filepath.Dir(c.res.File) }

// Pos returns where a spec field was written; field is a path below spec ("schema",
// "operations[2].path"), or "" for the spec itself. For a field that was not written it
// returns the position of the closest enclosing object.
func (c *Context) Pos(field string) Position { return c.res.FieldPos(field) }

// Errorf reports a problem with a spec field, at its position, as "spec.field: message".
// An empty field reports a problem with the spec as a whole.
func (c *Context) Errorf(field, format string, args ...any) {
	path := "spec"
	if field != "" {
		path += "." + field
	}
	c.ErrorAt(c.Pos(field), "%s: %s", path, fmt.Sprintf(format, args...))
}

// ErrorAt reports a problem at any position, such as a line in a file the spec refers to.
func (c *Context) ErrorAt(pos Position, format string, args ...any) {
	*c.errs = append(*c.errs, errorf(pos, format, args...))
	c.count++
}

// Err returns the problems reported through this context as an ErrorList, or nil.
func (c *Context) Err() error {
	if c.count == 0 {
		return nil
	}
	return slices.Clone((*c.errs)[len(*c.errs)-c.count:])
}

// Has reports whether the definition gives a field (a path below spec, as in Errorf), which
// tells a secret left empty by --skip-secrets from one not given at all.
func (c *Context) Has(field string) bool {
	_, ok := c.res.fields["spec."+field]
	return ok
}

// Lookup returns another resource by kind and name.
func (c *Context) Lookup(kind, name string) (*Resource, bool) { return c.cfg.Get(kind, name) }

// All returns every resource of a kind, for checks across resources (two sources on one
// webhook path, say).
func (c *Context) All(kind string) []*Resource { return c.cfg.ByKind(kind) }

// FieldPos returns where a spec field was written; see Context.Pos.
func (r *Resource) FieldPos(field string) Position {
	path := "spec"
	if field != "" {
		path += "." + field
	}
	for {
		if p, ok := r.fields[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	if r.specPos.IsValid() {
		return r.specPos
	}
	return r.Pos
}

// runStep calls one lifecycle method, turning a returned error that was not reported through
// the context, or a panic, into a problem at the spec. A panic in a kind's code is a bug, but
// it must not take down a validate run, which is there to report problems.
func runStep(ctx *Context, step string, fn func(*Context) error) (ok bool) {
	before := len(*ctx.errs)
	defer func() {
		if r := recover(); r != nil {
			ctx.ErrorAt(ctx.res.FieldPos(""), "internal error while %s %s: %v", step, ctx.res, r)
			ok = false
		}
	}()
	err := fn(ctx)
	if err != nil && ctx.count == 0 {
		switch e := err.(type) {
		case *Error:
			ctx.ErrorAt(e.Pos, "%s", e.Msg)
		case ErrorList:
			for _, x := range e {
				ctx.ErrorAt(x.Pos, "%s", x.Msg)
			}
		default:
			ctx.ErrorAt(ctx.res.FieldPos(""), "spec: %v", err)
		}
	}
	return err == nil && len(*ctx.errs) == before
}

// cleanup calls a spec's Cleanup once.
func (r *Resource) cleanup() error {
	if !r.provisioned || r.cleaned {
		return nil
	}
	r.cleaned = true
	c, ok := r.Spec.(Cleaner)
	if !ok {
		return nil
	}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		err = c.Cleanup()
	}()
	if err != nil {
		return fmt.Errorf("cleaning up %s: %w", r, err)
	}
	return nil
}
