// Package config loads integration definitions: YAML documents in a directory tree, each
// describing one resource with the same envelope,
//
//	apiVersion: causeway/v1
//	kind: MessageType
//	metadata:
//	  name: order.created
//	  description: An order was placed in the web shop
//	spec: {...}
//
// and a spec whose fields depend on the kind.
//
// # Kinds
//
// A kind is registered in a Registry with a Kind value whose New function returns a pointer
// to a spec struct. The struct's fields, with their tags, are the kind's schema: the loader
// decodes into them strictly, and JSONSchema and Reference are generated from them, so the
// three cannot disagree. The tags are:
//
//	yaml:"fieldName"    the field's name in YAML (required on every exported field; "-" skips it)
//	doc:"..."           documentation, in full sentences (required)
//	required:"true"     the field must be given
//	default:"..."       the value used when the field is left out, written as in YAML
//	enum:"a,b,c"        the allowed values
//	ref:"System"        the value names a resource of that kind, which must exist
//	example:"..."       an example value for the reference
//
// Supported field types are strings, booleans, integers, floats, time.Duration ("5s"),
// Secret, JSON, types implementing encoding.TextUnmarshaler (decoded from a string), nested
// structs and pointers to them, slices, and maps with string keys.
//
// # Lifecycle
//
// Load decodes every document, then provisions every resource whose spec implements
// Provisioner, then validates every one implementing Validator; specs implementing Cleaner
// are cleaned up when loading fails or when Config.Cleanup is called. Problems are reported
// with their file, line and column, all of them at once, as an ErrorList.
//
// # Substitution
//
// Before values are decoded, ${NAME} and ${NAME:-default} in scalar values are replaced from
// the process environment and then from the environment file chosen with Options.Env;
// ${secret:NAME} reads a secret and may appear only in fields of type Secret; $${ writes a
// literal ${; run-time expressions ${{ ... }} are left as written.
package config
