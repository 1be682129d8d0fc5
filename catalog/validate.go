package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/causeway/causeway/internal/jsonscan"
)

// Type is one declared message type.
type Type struct {
	// Name is the CloudEvents type, the MessageType's metadata.name.
	Name string
	// Description is the MessageType's metadata.description.
	Description string
	// Owner names the System that owns the type; empty when none is declared.
	Owner string
	// Labels are the MessageType's metadata.labels.
	Labels map[string]string
	// Schema is the JSON Schema document, for showing it (in the console, in OpenAPI
	// documents) rather than for validating; Validate uses the compiled form.
	Schema []byte

	schema *jsonschema.Schema
	// fast decides without allocating that data matches a schema that uses only common
	// keywords; nil when the schema uses others (see compileFast).
	fast *fastSchema
}

// ErrInvalidJSON is wrapped by the error Validate returns for data that is not JSON at all,
// which a caller may want to answer differently from data that does not match the schema.
var ErrInvalidJSON = errors.New("data is not valid JSON")

// Validate checks a message's data, raw JSON, against the type's schema; nil data stands for
// JSON null. It returns nil when the data matches, a *ValidationError listing every
// violation when it does not, and an error wrapping ErrInvalidJSON when the data is not
// JSON.
//
// Validate is on the ingestion path, so it decodes the data once and does nothing else
// before validating; the schema was compiled when the configuration loaded. Schemas that
// use only common keywords also have a fast path, which accepts valid data without
// decoding it; whatever it cannot accept with certainty goes through the full validator,
// which alone reports violations.
func (t *Type) Validate(data []byte) error {
	if t.schema == nil {
		return fmt.Errorf("message type %q has no compiled schema; types come from catalog.New", t.Name)
	}
	if t.fast != nil && data != nil && t.fast.valid(data) {
		return nil
	}
	var v any
	if data != nil {
		var err error
		if v, err = decodeData(data); err != nil {
			return fmt.Errorf("%w: data of %q: %v", ErrInvalidJSON, t.Name, err)
		}
	}
	err := t.schema.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("validating data of %q: %w", t.Name, err)
	}
	return newValidationError(t.Name, ve)
}

// errTrailing is the error jsonschema.UnmarshalJSON gives for data that holds more than one
// JSON value.
var errTrailing = errors.New("invalid character after top-level value")

// decodeData decodes data for the schema: the value jsonschema.UnmarshalJSON returns, and on
// failure the same error text. UnmarshalJSON reads the data as a stream with a json.Decoder
// (numbers as json.Number), which costs reflection and an allocation for nearly every token;
// jsonscan builds the same value directly from the bytes.
func decodeData(data []byte) (any, error) {
	s := jsonscan.NewScanner(data)
	v, err := s.Decode()
	if err != nil {
		var se *jsonscan.SyntaxError
		if errors.As(err, &se) && se.Truncated {
			// A stream decoder meets the end of the data as io.EOF, and reports it so when
			// the data is only whitespace and as io.ErrUnexpectedEOF when it ends inside
			// the value.
			if len(bytes.Trim(data, " \t\r\n")) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if s.End() != nil {
		return nil, errTrailing
	}
	return v, nil
}

// Violation is one way the data fails its schema.
type Violation struct {
	// Pointer is an RFC 6901 JSON pointer into the data ("/items/0/sku"); "" is the whole
	// document. For a missing property it points at where the property should be.
	Pointer string
	// Message says what is wrong there.
	Message string
}

// String formats the violation as "pointer: message".
func (v Violation) String() string {
	if v.Pointer == "" {
		return v.Message
	}
	return v.Pointer + ": " + v.Message
}

// ValidationError lists the ways a message's data does not match its type's schema.
type ValidationError struct {
	// Type is the message type.
	Type string
	// Violations are sorted by pointer, then message.
	Violations []Violation
}

// maxListed bounds how many violations Error lists, so that a message with thousands of
// bad items still makes a readable log line; Violations keeps them all.
const maxListed = 20

// Error formats the violations on one line, in a deterministic order.
func (e *ValidationError) Error() string {
	var parts []string
	for i, v := range e.Violations {
		if i == maxListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(e.Violations)-maxListed))
			break
		}
		parts = append(parts, v.String())
	}
	return fmt.Sprintf("data does not match schema of %q: %s", e.Type, strings.Join(parts, "; "))
}

func newValidationError(typ string, ve *jsonschema.ValidationError) *ValidationError {
	vs := leaves(ve, nil)
	slices.SortFunc(vs, func(a, b Violation) int {
		if c := strings.Compare(a.Pointer, b.Pointer); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return &ValidationError{Type: typ, Violations: slices.Compact(vs)}
}
