package message

import (
	"fmt"
	"strings"
)

// FieldError is one problem with an incoming event, located by the RFC 6901 JSON pointer of
// the attribute or data member at fault (for a batch, prefixed by the item's index).
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// FieldErrors lists every problem found in an event or a batch. Ingestion answers it with
// 422 Unprocessable Content.
type FieldErrors []FieldError

// Error joins the problems into one line.
func (fe FieldErrors) Error() string {
	var b strings.Builder
	for i, e := range fe {
		if i > 0 {
			b.WriteString("; ")
		}
		if e.Pointer != "" {
			b.WriteString(e.Pointer)
			b.WriteString(": ")
		}
		b.WriteString(e.Detail)
	}
	return b.String()
}

// SyntaxError is a body that is not the JSON it should be. Ingestion answers it with 400.
type SyntaxError struct {
	// Offset is the byte offset of the problem, or -1 when unknown.
	Offset int64
	Msg    string
}

// Error describes the problem and where it is.
func (e *SyntaxError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("malformed JSON at byte %d: %s", e.Offset, e.Msg)
	}
	return "malformed JSON: " + e.Msg
}
