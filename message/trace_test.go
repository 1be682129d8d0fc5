package message

import "testing"

// TestNewTraceparent checks that a started trace is a valid, sampled traceparent with fresh
// ids each time.
func TestNewTraceparent(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tp := NewTraceparent()
		if !ValidTraceparent(tp) || len(tp) != 55 || tp[:3] != "00-" || tp[52:] != "-01" {
			t.Fatalf("not a valid traceparent: %q", tp)
		}
		if seen[tp[3:35]] {
			t.Fatalf("trace id repeated: %q", tp)
		}
		seen[tp[3:35]] = true
	}
	for _, bad := range []string{"", "00-00000000000000000000000000000000-0000000000000001-01", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"} {
		if ValidTraceparent(bad) {
			t.Errorf("%q taken as valid", bad)
		}
	}
}

// TestAppendTraceparent checks that a traceparent appended to a buffer is a valid new one
// after what the buffer held, which stays as it was.
func TestAppendTraceparent(t *testing.T) {
	buf := []byte("traceparent: ")
	out := AppendTraceparent(buf)
	if string(out[:13]) != "traceparent: " || len(out) != 13+TraceparentLen {
		t.Fatalf("appended %q", out)
	}
	a, b := string(out[13:]), string(AppendTraceparent(nil))
	if !ValidTraceparent(a) || !ValidTraceparent(b) || a[3:35] == b[3:35] || a[36:52] == b[36:52] {
		t.Fatalf("traceparents %q and %q", a, b)
	}
	if n := testing.AllocsPerRun(100, func() { AppendTraceparent(out[:0]) }); n != 0 {
		t.Errorf("%v allocations appending to a buffer large enough", n)
	}
}
