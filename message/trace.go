package message

import (
	"crypto/rand"
	"encoding/hex"
)

// ValidTraceparent checks the W3C traceparent form version-traceid-parentid-flags
// ("00-<32 hex>-<16 hex>-<2 hex>"), refusing the all-zero ids the standard declares invalid.
func ValidTraceparent(s string) bool {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	hex := func(p string) bool {
		zero := true
		for i := 0; i < len(p); i++ {
			c := p[i]
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
			if c != '0' {
				zero = false
			}
		}
		return !zero
	}
	return s[:2] != "ff" && hex(s[3:35]) && hex(s[36:52]) && (hex(s[53:55]) || s[53:55] == "00")
}

// NewTraceparent starts a trace: a W3C traceparent with a random trace id and span id,
// sampled, for a message that arrives without trace context.
func NewTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	var out [55]byte
	copy(out[:], "00-")
	hex.Encode(out[3:35], b[:16])
	out[35] = '-'
	hex.Encode(out[36:52], b[16:])
	copy(out[52:], "-01")
	return string(out[:])
}
