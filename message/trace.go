package message

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
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
// sampled, for a message that arrives without trace context. The ids come from the
// runtime's ChaCha8 generator (math/rand/v2), seeded from the system's entropy: W3C Trace
// Context asks for ids that are random and unique, not secret, and every gateway request
// and accepted message makes one, where crypto/rand's system call cost more than the rest
// of making it.
func NewTraceparent() string {
	var out [TraceparentLen]byte
	return string(AppendTraceparent(out[:0]))
}

// TraceparentLen is the length of a version 00 traceparent.
const TraceparentLen = 55

// AppendTraceparent appends a new traceparent, as NewTraceparent makes, to dst: a caller
// that writes it straight into a request's header makes no string of it.
func AppendTraceparent(dst []byte) []byte {
	var b [24]byte
	for {
		binary.LittleEndian.PutUint64(b[0:], rand.Uint64())
		binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
		binary.LittleEndian.PutUint64(b[16:], rand.Uint64())
		// All-zero ids are invalid; the chance is 2^-64, but a loop costs nothing.
		if binary.LittleEndian.Uint64(b[0:])|binary.LittleEndian.Uint64(b[8:]) != 0 && binary.LittleEndian.Uint64(b[16:]) != 0 {
			break
		}
	}
	n := len(dst)
	dst = append(dst, "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"...)
	out := dst[n:]
	hex.Encode(out[3:35], b[:16])
	hex.Encode(out[36:52], b[16:])
	return dst
}
