package config

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	cfg, err := loadTestFile(t, path)
	if err != nil {
		t.Fatalf("load %s:\n%v", path, err)
	}
	t.Cleanup(func() { _ = cfg.Cleanup() })
	return cfg
}

func widget(t *testing.T, cfg *Config, name string) *widgetSpec {
	t.Helper()
	r, ok := cfg.Get("Widget", name)
	if !ok {
		t.Fatalf("Widget %q not loaded", name)
	}
	return r.Spec.(*widgetSpec)
}

func TestDecodeEveryFieldType(t *testing.T) {
	cfg := mustLoad(t, "testdata/all-fields.good.yaml")
	w := widget(t, cfg, "full")
	limit := 0
	want := widgetSpec{
		Str: "hello", Req: "present", Count: 16, Small: -128, Unsigned: 65535, Ratio: 2.5,
		Enabled: false, Timeout: 90 * time.Second, Mode: "fast", Level: 2,
		Tags:   []string{"a", "b"},
		Env:    map[string]string{"A": "1", "b.c": "x"},
		Nested: widgetNested{URL: "http://x", Retries: 2},
		Opt:    &widgetNested{URL: "http://y", Retries: 5},
		Items:  []widgetItem{{SKU: "A-1", Qty: 2}, {SKU: "B-2"}},
		Target: "main",
		Addr:   netip.MustParseAddr("10.0.0.1"),
		Limit:  &limit,
	}
	got := *w
	if got.Token.Reveal() != "literal-token" {
		t.Errorf("token = %q", got.Token.Reveal())
	}
	wantData := `{"type":"object","required":["id"],"properties":{"id":{"type":"string","pattern":"<[a-z]+>"},"n":{"minimum":1.5,"maximum":10}}}`
	if string(got.Data.Raw) != wantData {
		t.Errorf("data = %s\nwant %s", got.Data.Raw, wantData)
	}
	if p := got.Data.PosOf("/properties/id/pattern"); p.Line != 30 || p.Col != 35 {
		t.Errorf("position of /properties/id/pattern = %v, want line 30 col 35", p)
	}
	if p := got.Data.PosOf("/properties/nope/deeper"); p.Line != 30 || p.Col != 7 {
		t.Errorf("position of a missing pointer = %v, want its nearest parent at 30:7", p)
	}
	got.Token, got.Data = Secret{}, JSON{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}

	r, _ := cfg.Get("Widget", "full")
	if r.Metadata.Description != "Every field type" || r.Metadata.Labels["tier"] != "1" {
		t.Errorf("metadata = %+v", r.Metadata)
	}
	if r.Pos.Line != 8 || r.Pos.Col != 1 || r.File != "testdata/all-fields.good.yaml" {
		t.Errorf("resource position = %v in %s", r.Pos, r.File)
	}
	if p := r.FieldPos("items[1].sku"); p.Line != 43 || p.Col != 12 {
		t.Errorf("FieldPos(items[1].sku) = %v", p)
	}
	if p := r.FieldPos("items[1].qty"); p.Line != 43 {
		t.Errorf("FieldPos of an absent field = %v, want its object's position on line 43", p)
	}
}

func TestDecodeDefaultsAndAnchors(t *testing.T) {
	cfg := mustLoad(t, "testdata/all-fields.good.yaml")
	d := widget(t, cfg, "defaults")
	if d.Count != 3 || !d.Enabled || d.Timeout != 5*time.Second || d.Mode != "safe" || d.Nested.Retries != 2 {
		t.Errorf("defaults not applied: %+v", d)
	}
	if d.Opt != nil || d.Limit != nil || d.Tags != nil {
		t.Errorf("absent optional fields should stay nil: %+v", d)
	}
	a := widget(t, cfg, "anchors")
	if a.Nested != (widgetNested{URL: "http://base", Retries: 9}) {
		t.Errorf("anchored nested = %+v", a.Nested)
	}
	if a.Opt == nil || *a.Opt != (widgetNested{URL: "http://base", Retries: 1}) {
		t.Errorf("merged opt = %+v, want the anchor's url with retries overridden", a.Opt)
	}
	if a.Str != "123" || !reflect.DeepEqual(a.Tags, []string{"x"}) {
		t.Errorf("tags: str=%q tags=%v", a.Str, a.Tags)
	}
	if !reflect.DeepEqual(a.Items, []widgetItem{{SKU: "s1", Qty: 1}, {SKU: "s1", Qty: 1}}) {
		t.Errorf("aliased items = %+v", a.Items)
	}
	if len(cfg.ByKind("Target")) != 2 || len(cfg.All()) != 5 {
		t.Errorf("loaded %d resources, %d targets", len(cfg.All()), len(cfg.ByKind("Target")))
	}
	var names []string
	for _, r := range cfg.All() {
		names = append(names, r.String())
	}
	if got := strings.Join(names, ", "); got != `Target "main", Widget "full", Widget "defaults", Widget "anchors", Target "empty-spec"` {
		t.Errorf("order = %s", got)
	}
}

func TestDecodeSubstitution(t *testing.T) {
	cfg := mustLoad(t, "testdata/subst.good.yaml")
	w := widget(t, cfg, "subst")
	r, _ := cfg.Get("Widget", "subst")
	if r.Metadata.Description != "db.internal:8080" {
		t.Errorf("description = %q", r.Metadata.Description)
	}
	if w.Req != "eu-west-1" {
		t.Errorf("req from the environment file = %q", w.Req)
	}
	if w.Count != 8080 || w.Str != "8080" || w.Enabled || w.Mode != "fast" {
		t.Errorf("count=%d str=%q enabled=%v mode=%q", w.Count, w.Str, w.Enabled, w.Mode)
	}
	wantTags := []string{"from-process", "fallback", "", "${NOT_A_VAR}", "${{ .data.orderId }}", "order/${{ .data.id }}/db.internal", "7"}
	if !reflect.DeepEqual(w.Tags, wantTags) {
		t.Errorf("tags = %q\nwant %q", w.Tags, wantTags)
	}
	if w.Nested.URL != "http://db.internal:8080/" || w.Nested.Retries != 7 {
		t.Errorf("nested = %+v", w.Nested)
	}
	if w.Token.Reveal() != "Bearer s3cr3t-value" {
		t.Errorf("token from the secrets directory, trailing newline trimmed: got %d bytes", len(w.Token.Reveal()))
	}
	e := widget(t, cfg, "env-secret")
	if e.Token.Reveal() != "env-secret-value" {
		t.Error("token from CAUSEWAY_SECRET_ENV_ONLY not read")
	}
	if e.Limit == nil || *e.Limit != 42 {
		t.Errorf("limit from a default = %v", e.Limit)
	}
}

func TestSkipSecrets(t *testing.T) {
	opts := testOptions(t)
	opts.SkipSecrets = true
	opts.SecretsDir = ""
	src := `apiVersion: causeway/v1
kind: Widget
metadata: {name: a}
spec:
  req: x
  token: ${secret:not_anywhere}
`
	cfg, err := loadSources("testdata", []source{{"a.yaml", []byte(src)}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := cfg.Get("Widget", "a")
	if !r.Spec.(*widgetSpec).Token.IsZero() {
		t.Error("with SkipSecrets the secret should stay empty")
	}
	// Syntax is still checked.
	bad := strings.Replace(src, "not_anywhere", "../x", 1)
	if _, err := loadSources("testdata", []source{{"a.yaml", []byte(bad)}}, opts); err == nil || !strings.Contains(err.Error(), `invalid secret name "../x"`) {
		t.Errorf("want an invalid secret name error, got %v", err)
	}
}

func TestSecretNeverInMessages(t *testing.T) {
	// A secret that resolves but lands in the wrong place, or next to an error, must not
	// show up in any message.
	src := `apiVersion: causeway/v1
kind: Widget
metadata: {name: a}
spec:
  req: ${secret:api_token}
  token: ${secret:api_token}
  count: ${secret:api_token}
  data: {x: "${secret:api_token}"}
`
	_, err := loadSources("testdata", []source{{"a.yaml", []byte(src)}}, testOptions(t))
	if err == nil {
		t.Fatal("want errors")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("secret value leaked:\n%v", err)
	}
	if n := strings.Count(err.Error(), "can only be used in a secret field"); n != 3 {
		t.Errorf("want 3 misplaced-secret errors, got %d:\n%v", n, err)
	}
}

func TestJSONMarshalsAsValue(t *testing.T) {
	cfg := mustLoad(t, "testdata/all-fields.good.yaml")
	w := widget(t, cfg, "full")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		Data  JSON   `json:"data"`
		Token Secret `json:"token"`
		Empty JSON   `json:"empty"`
	}{w.Data, w.Token, JSON{}})
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.TrimSpace(buf.Bytes())
	if !strings.HasPrefix(string(out), `{"data":{"type":"object"`) || !strings.HasSuffix(string(out), `"token":"<secret>","empty":null}`) {
		t.Errorf("marshalled = %s", out)
	}
	var v map[string]any
	if err := w.Data.Unmarshal(&v); err != nil || v["type"] != "object" {
		t.Errorf("Unmarshal = %v, %v", v, err)
	}
}
