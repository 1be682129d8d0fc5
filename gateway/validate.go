package gateway

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/problem"
)

// checkShape bounds a JSON body's nesting and its count of values before anything decodes
// it, so that a body built to exhaust the decoder or the mappings is refused cheaply. It
// only counts: the decoder that runs next reports malformed JSON.
func checkShape(raw []byte, maxDepth, maxElements int) error {
	depth, elements := 0, 0
	inString, escaped := false, false
	value := false // inside a scalar other than a string
	for _, c := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '{', '[':
			depth++
			elements++
			value = false
			if depth > maxDepth {
				return fmt.Errorf("the body nests deeper than %d levels", maxDepth)
			}
		case '}', ']':
			depth--
			value = false
		case '"':
			inString = true
			elements++
			value = false
		case ',', ':', ' ', '\t', '\r', '\n':
			value = false
		default:
			if !value {
				elements++
				value = true
			}
		}
		if elements > maxElements {
			return fmt.Errorf("the body has more than %d values", maxElements)
		}
	}
	return nil
}

// validateBody applies a route's validate policy; false means it answered the request.
func (a *api) validateBody(w http.ResponseWriter, r *http.Request, rt *Route, raw []byte) bool {
	v := rt.policies.Validate
	if v == nil {
		// Bounds apply to every body all the same, with the policy's defaults.
		v = defaultValidation
	}
	if err := checkShape(raw, v.MaxDepth, v.MaxElements); err != nil {
		a.g.refused(a, rt, "shape")
		problem.Write(w, r, http.StatusBadRequest, "too-complex", err.Error())
		return false
	}
	if v.typ == nil {
		return true
	}
	var data []byte
	if len(raw) > 0 {
		data = raw
	}
	err := v.typ.Validate(data)
	if err == nil {
		return true
	}
	a.g.refused(a, rt, "schema")
	var ve *catalog.ValidationError
	if errors.As(err, &ve) {
		schemaProblem(w, r, ve, "the body does not match the schema of this route")
		return false
	}
	problem.Write(w, r, http.StatusBadRequest, "malformed", "the body must be JSON")
	return false
}

// defaultValidation bounds bodies of routes without a validate policy.
var defaultValidation = &Validation{MaxDepth: 32, MaxElements: 10000}
