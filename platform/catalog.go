package platform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/ingest"
)

// catalogChecker lets ingestion check messages against the MessageTypes in the definitions.
type catalogChecker struct{ c *catalog.Catalog }

func newCatalog(cfg *config.Config) ingest.Catalog { return catalogChecker{c: catalog.New(cfg)} }

// Check implements ingest.Catalog.
func (cc catalogChecker) Check(typ string, data []byte) ([]ingest.Violation, error) {
	t, ok := cc.c.Lookup(typ)
	if !ok {
		return nil, fmt.Errorf("%w %q: no MessageType of that name is defined (defined: %s)", ingest.ErrUnknownType, typ, listNames(cc.c.Names()))
	}
	err := t.Validate(data)
	if err == nil {
		return nil, nil
	}
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		return []ingest.Violation{{Pointer: "", Message: err.Error()}}, nil
	}
	out := make([]ingest.Violation, len(ve.Violations))
	for i, v := range ve.Violations {
		out[i] = ingest.Violation{Pointer: v.Pointer, Message: v.Message}
	}
	return out, nil
}

func listNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// checkFunc lets flows check the data of the messages they publish, with the violations in
// the error.
func checkFunc(cat ingest.Catalog) func(typ string, data []byte) error {
	return func(typ string, data []byte) error {
		vs, err := cat.Check(typ, data)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return nil
		}
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = strings.TrimPrefix(v.Pointer+": "+v.Message, ": ")
		}
		return fmt.Errorf("data does not match the schema: %s", strings.Join(parts, "; "))
	}
}
