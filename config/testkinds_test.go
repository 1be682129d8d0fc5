package config

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// widgetSpec is a test kind with a field of every supported type.
type widgetSpec struct {
	Str      string            `yaml:"str" doc:"A string."`
	Req      string            `yaml:"req" required:"true" doc:"A required string."`
	Count    int               `yaml:"count" default:"3" doc:"An integer with a default."`
	Small    int8              `yaml:"small" doc:"An 8-bit integer."`
	Unsigned uint16            `yaml:"unsigned" doc:"An unsigned integer."`
	Ratio    float64           `yaml:"ratio" doc:"A number."`
	Enabled  bool              `yaml:"enabled" default:"true" doc:"A boolean with a default."`
	Timeout  time.Duration     `yaml:"timeout" default:"5s" doc:"A duration with a default."`
	Mode     string            `yaml:"mode" enum:"fast,safe" default:"safe" doc:"A string with allowed values."`
	Level    int               `yaml:"level" enum:"1,2,3" doc:"An integer with allowed values."`
	Token    Secret            `yaml:"token" doc:"A secret."`
	Data     JSON              `yaml:"data" doc:"Any value, kept as JSON."`
	Tags     []string          `yaml:"tags" doc:"A list of strings."`
	Env      map[string]string `yaml:"env" doc:"A map of strings."`
	Nested   widgetNested      `yaml:"nested" doc:"A nested object."`
	Opt      *widgetNested     `yaml:"opt" doc:"An optional nested object."`
	Items    []widgetItem      `yaml:"items" doc:"A list of objects."`
	Target   string            `yaml:"target" ref:"Target" doc:"Names a Target." example:"main"`
	Addr     netip.Addr        `yaml:"addr" doc:"An IP address, decoded by its UnmarshalText."`
	Limit    *int              `yaml:"limit" doc:"An optional integer."`
	Internal string            `yaml:"-"`
}

type widgetNested struct {
	URL     string `yaml:"url" required:"true" doc:"A required URL."`
	Retries int    `yaml:"retries" default:"2" doc:"Retries, with a default."`
}

type widgetItem struct {
	SKU string `yaml:"sku" required:"true" doc:"Stock keeping unit."`
	Qty int    `yaml:"qty" doc:"Quantity."`
}

// targetSpec is a test kind that exercises the lifecycle: its fail field makes Provision or
// Validate fail in a chosen way.
type targetSpec struct {
	Fail string `yaml:"fail" enum:"provision,validate,panic,error,cleanup" doc:"Which lifecycle step fails."`

	provisioned bool
}

// cleanups counts Cleanup calls on targets across a test.
var cleanups atomic.Int64

var (
	_ Provisioner = (*targetSpec)(nil)
	_ Validator   = (*targetSpec)(nil)
	_ Cleaner     = (*targetSpec)(nil)
)

func (s *targetSpec) Provision(ctx *Context) error {
	switch s.Fail {
	case "provision":
		ctx.Errorf("fail", "provisioning failed as asked")
		return ctx.Err()
	case "panic":
		panic("boom")
	case "error":
		return errors.New("plain error")
	}
	s.provisioned = true
	return nil
}

func (s *targetSpec) Validate(ctx *Context) error {
	if !s.provisioned {
		return errors.New("validated before provisioning")
	}
	if s.Fail == "validate" {
		ctx.Errorf("", "validation failed as asked")
	}
	if _, ok := ctx.Lookup("Target", ctx.Name()); !ok {
		ctx.Errorf("", "cannot look itself up")
	}
	return ctx.Err()
}

func (s *targetSpec) Cleanup() error {
	cleanups.Add(1)
	if s.Fail == "cleanup" {
		return errors.New("cleanup failed as asked")
	}
	return nil
}

const widgetExample = `apiVersion: causeway/v1
kind: Widget
metadata:
  name: w1
spec:
  req: x
`

func testRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	for _, k := range []Kind{
		{Name: "Widget", Doc: "A test kind with every field type. It has two sentences.", Example: widgetExample, New: func() any { return new(widgetSpec) }},
		{Name: "Target", Doc: "A test kind with a lifecycle.", New: func() any { return new(targetSpec) }},
	} {
		if err := r.Register(k); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// testEnv is the process environment the table tests see.
var testEnv = map[string]string{
	"PORT":                     "8080",
	"HOST":                     "db.internal",
	"EMPTY":                    "",
	"FLAG":                     "false",
	"OVERRIDE":                 "from-process",
	"CAUSEWAY_SECRET_ENV_ONLY": "env-secret-value",
}

func lookupTestEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}
