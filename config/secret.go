package config

import (
	"fmt"
	"io"
	"log/slog"
)

// redacted is what every printing path shows instead of a secret's value.
const redacted = "<secret>"

// Secret holds a value read from a ${secret:NAME} reference (or written literally in a field
// of this type). Every way of printing or encoding it yields "<secret>", so a secret cannot
// leak into logs, traces, run history or error messages by accident; only Reveal returns the
// value, and a call to Reveal is easy to find in review.
//
// The value is kept inside a function on purpose. fmt prints a Secret held in an unexported
// field, or behind a verb it does not support, by walking its internals without calling any
// of its methods; that walk prints a string or the target of a pointer, but only the address
// of a function. A side effect is that Secrets, and structs holding them, cannot be compared
// with ==, which is no loss: comparing secrets is a job for crypto/subtle.
type Secret struct {
	value func() string
}

// NewSecret wraps a value as a Secret, for tests and for code that obtains secrets itself.
func NewSecret(value string) Secret {
	if value == "" {
		return Secret{}
	}
	return Secret{value: func() string { return value }}
}

// Reveal returns the secret's value. Call it only where the value is handed to the system
// that needs it (an Authorization header, a database driver), never to build a message.
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return s.value()
}

// IsZero reports whether the secret is empty, which is also the case for a definition loaded
// with Options.SkipSecrets.
func (s Secret) IsZero() bool { return s.value == nil }

// String returns "<secret>".
func (s Secret) String() string { return redacted }

// GoString returns "<secret>", so %#v does not show the value either.
func (s Secret) GoString() string { return redacted }

// Format writes "<secret>" for every verb and flag, including %x and %q, which would
// otherwise bypass String.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON encodes the secret as the JSON string "<secret>".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes the secret as "<secret>", which also covers encoders that prefer
// text, such as map keys and slog's text handler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue makes slog log "<secret>" whatever handler is in use.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Compile-time checks that Secret implements the interfaces its redaction relies on.
var (
	_ fmt.Stringer   = Secret{}
	_ fmt.GoStringer = Secret{}
	_ fmt.Formatter  = Secret{}
	_ slog.LogValuer = Secret{}
)
