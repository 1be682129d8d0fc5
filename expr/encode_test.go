package expr

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestEncodeAgreesWithEncodingJSON encodes generated values, with the strings, numbers and
// nesting that need care, and checks that MarshalJSON writes exactly what encoding/json
// writes, or fails where it fails.
func TestEncodeAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	strs := []string{"", "plain", "with \"quote\"", `back\slash`, "<b>&amp;</b>", "tab\tnew\nline", "\x00\x1f",
		"é ü 日本", "\u2028\u2029", "\xff\xfe bad utf-8", "emoji 🙂", "del\x7f"}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 19.99, 1e-7, 1e-6, 1e20, 1e21, 123456789012345680000, 1.5e300, -2.5e-10,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.NaN()}
	nums := []json.Number{"0", "-1", "39.80", "1e2", "12345678901234567890", "", "1.", "01", "abc", "-", "2E+3"}
	var value func(depth int) any
	value = func(depth int) any {
		switch n := rng.IntN(10); {
		case depth == 0 || n < 6:
			switch rng.IntN(7) {
			case 0:
				return nil
			case 1:
				return rng.IntN(2) == 0
			case 2:
				return strs[rng.IntN(len(strs))]
			case 3:
				return rng.IntN(2000) - 1000
			case 4:
				return floats[rng.IntN(len(floats))]
			case 5:
				return nums[rng.IntN(len(nums))]
			default:
				return []any(nil)
			}
		case n < 8:
			l := make([]any, rng.IntN(4))
			for i := range l {
				l[i] = value(depth - 1)
			}
			return l
		default:
			m := map[string]any{}
			for range rng.IntN(4) {
				m[strs[rng.IntN(len(strs))]] = value(depth - 1)
			}
			if rng.IntN(8) == 0 {
				// More keys than the encoder sorts on the stack.
				for i := range 14 + rng.IntN(6) {
					m[strs[rng.IntN(len(strs))]+strconv.Itoa(i)] = value(0)
				}
			}
			return m
		}
	}
	direct := 0
	for range 20000 {
		v := value(3)
		got, gerr := MarshalJSON(v)
		want, werr := json.Marshal(v)
		if (gerr == nil) != (werr == nil) || string(got) != string(want) {
			t.Fatalf("%#v: %s, %v; encoding/json: %s, %v", v, got, gerr, want, werr)
		}
		if _, ok := appendJSON(nil, v); ok {
			direct++
		}
	}
	if direct < 5000 {
		t.Fatalf("the direct encoder wrote only %d of 20000 values", direct)
	}
	if m, _ := MarshalJSON(map[string]any(nil)); string(m) != "null" {
		t.Errorf("a nil map: %s", m)
	}
}
