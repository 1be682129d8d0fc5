package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/causeway/causeway/gateway/openapi"
)

func init() { commands = append(commands, newAPIsCmd) }

// maxOpenAPIBytes bounds the OpenAPI documents apis import reads: the largest real ones are
// a few megabytes, and anything far larger is not one.
const maxOpenAPIBytes = 64 << 20

// importFlags are the options of causeway apis import.
type importFlags struct {
	opts   openapi.ImportOptions
	output string
	force  bool
}

// newAPIsCmd builds "causeway apis", the commands that work with API definitions.
func newAPIsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "apis", Short: "Work with the APIs of the gateway"}
	var f importFlags
	imp := &cobra.Command{
		Use:   "import FILE --system NAME",
		Short: "Write a System and an API that put a backend behind the gateway, from its OpenAPI document",
		Long: `Import reads the OpenAPI 3.0 or 3.1 document of a backend (YAML or JSON) and writes two
definitions: a System with the backend's base URL and one HTTP operation per operation of
the document, and an API under --base-path with one route per operation that proxies to
it, passing on the path parameters, the query parameters the document declares and the
body. It prints them, or writes them to --output, which it does not overwrite without
--force.

What the definitions cannot express is left out with a comment saying so; what a person
must decide has a comment too: the backend's URL when the document gives none, the
credentials the System calls with, and who may call the API, which is open (auth: none)
until you choose. Read the comments, then check the result with causeway validate.`,
		Example: `  causeway apis import petstore.yaml --system petstore
  causeway apis import erp-openapi.json --system erp --base-path /api/orders --name orders -o defs/erp.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(cmd.OutOrStdout(), args[0], f)
		},
	}
	fl := imp.Flags()
	fl.StringVar(&f.opts.System, "system", "", "name of the System of the backend (lowercase letters, digits and '-'); required")
	fl.StringVar(&f.opts.BasePath, "base-path", "", "base path of the API (default /api/<system>)")
	fl.StringVar(&f.opts.APIName, "name", "", "name of the API (default the system's name)")
	fl.StringVarP(&f.output, "output", "o", "", "file to write the definitions to, instead of printing them")
	fl.BoolVar(&f.force, "force", false, "overwrite --output when it exists")
	_ = imp.MarkFlagRequired("system")
	cmd.AddCommand(imp)
	return cmd
}

// runImport reads file, imports it and prints or writes the definitions.
func runImport(out io.Writer, file string, f importFlags) error {
	data, err := readOpenAPIFile(file)
	if err != nil {
		return err
	}
	defs, err := openapi.Import(data, f.opts)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if f.output == "" {
		_, err := out.Write(defs)
		return err
	}
	if err := writeNew(f.output, defs, f.force); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "wrote %s: read its comments, then check it with causeway validate\n", f.output)
	return err
}

// readOpenAPIFile reads a document, refusing what cannot be one: a directory, a file that
// is not there, or one too large.
func readOpenAPIFile(file string) ([]byte, error) {
	fh, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no such file", file)
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if st, err := fh.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory; give the OpenAPI document's file", file)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxOpenAPIBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(data) > maxOpenAPIBytes {
		return nil, fmt.Errorf("%s is over %d MiB, too large for an OpenAPI document", file, maxOpenAPIBytes>>20)
	}
	return data, nil
}

// writeNew writes data to path, which must not exist unless force is set: definitions
// written by hand are not replaced by accident.
func writeNew(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	fh, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; give --force to overwrite it", path)
	}
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
