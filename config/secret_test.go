package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secretValue = "hunter2-very-secret"

// holder has secrets in exported and unexported fields, the way specs hold them.
type holder struct {
	Token  Secret
	Ptr    *Secret
	hidden Secret
	list   []Secret
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret(secretValue)
	h := holder{Token: s, Ptr: &s, hidden: s, list: []Secret{s}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v", "%10s", "%-v"} {
		for _, v := range []any{s, &s, h, &h, []Secret{s}, map[string]Secret{"k": s}} {
			out := fmt.Sprintf(format, v)
			if strings.Contains(out, secretValue) || strings.Contains(out, fmt.Sprintf("%x", secretValue)) {
				t.Errorf("fmt %s of %T leaked: %s", format, v, out)
			}
		}
	}
	if got := fmt.Sprint(s); got != "<secret>" {
		t.Errorf("Sprint = %q", got)
	}
	if got := fmt.Sprintf("%#v", s); got != "<secret>" {
		t.Errorf("%%#v = %q", got)
	}
	if s.String() != "<secret>" || s.GoString() != "<secret>" {
		t.Error("String/GoString")
	}

	out, err := json.Marshal(map[string]any{"s": s, "h": h, "p": &s})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), secretValue) || !strings.Contains(string(out), `"s":"\u003csecret\u003e"`) {
		t.Errorf("json: %s", out)
	}
	text, _ := s.MarshalText()
	if string(text) != "<secret>" {
		t.Errorf("MarshalText = %q", text)
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("call", "token", s, "holder", h, "ptr", &s, slog.Any("any", s), slog.Group("g", "token", s))
	}
	if strings.Contains(buf.String(), secretValue) || strings.Count(buf.String(), "<secret>") < 6 {
		t.Errorf("slog output:\n%s", buf.String())
	}
}

func TestSecretValue(t *testing.T) {
	if s := NewSecret(secretValue); s.Reveal() != secretValue || s.IsZero() {
		t.Error("Reveal or IsZero wrong for a set secret")
	}
	var zero Secret
	if zero.Reveal() != "" || !zero.IsZero() || !NewSecret("").IsZero() {
		t.Error("zero secret")
	}
	if fmt.Sprint(zero) != "<secret>" {
		t.Error("a zero secret prints differently from a set one, which tells whether it is set")
	}
}
