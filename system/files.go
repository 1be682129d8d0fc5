package system

import (
	"path/filepath"
	"strings"

	"github.com/causeway/causeway/config"
)

// Files is how the platform reaches a system that exchanges files through a directory
// (local, or mounted from elsewhere).
type Files struct {
	// Dir is the directory; relative paths are relative to the definition file.
	Dir string `yaml:"dir" required:"true" doc:"The directory files are written to, local or mounted; relative to the definition file when not absolute." example:"/mnt/erp/inbox"`

	abs string
}

// Root returns the directory as an absolute path, resolved when the definitions loaded.
func (f *Files) Root() string {
	if f.abs != "" {
		return f.abs
	}
	return f.Dir
}

// FileOperation writes a file.
type FileOperation struct {
	// Path is the file's path under the directory; a template.
	Path string `yaml:"path" required:"true" doc:"The file's path under the system's directory; a template over the call's with (.params). It may not leave the directory." example:"orders/${{ .params.orderId }}.json"`
	// Format is json (the body as JSON) or text (the body as it is, a string).
	Format string `yaml:"format" default:"json" enum:"json,text" doc:"json writes the body as JSON; text writes it as it is (it must be a string)."`
}

// provisionFiles resolves the directory against the definition file.
func (s *Spec) provisionFiles(ctx *config.Context) {
	if f := s.Files; f != nil {
		f.abs = f.Dir
		if !filepath.IsAbs(f.Dir) {
			f.abs = filepath.Join(ctx.Dir(), f.Dir)
		}
	}
}

// validateFiles checks the file settings and operations.
func (s *Spec) validateFiles(ctx *config.Context) {
	for _, name := range sortedOps(s) {
		op := s.Operations[name]
		if op.File == nil {
			continue
		}
		field := config.MapPath("operations", name) + ".file"
		if s.Files == nil && s.SFTP == nil {
			ctx.Errorf(field, "operation %q writes a file, but the system has no files or sftp settings", name)
		}
		if strings.HasPrefix(op.File.Path, "/") {
			ctx.Errorf(field+".path", "%q must be relative to the system's directory", op.File.Path)
		}
	}
}
