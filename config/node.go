package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Limits that keep a hostile or broken file from exhausting memory or the stack. Real
// definition files are a few kilobytes; the YAML parser needs a few hundred bytes of memory
// per input byte and grows quadratically with deeply nested flow collections, so both are
// capped before it runs.
const (
	maxFileSize  = 1 << 20
	maxFlowDepth = 64
	maxDepth     = 100
)

// nodeKind tells what a node holds.
type nodeKind uint8

const (
	nullNode nodeKind = iota
	scalarNode
	mappingNode
	sequenceNode
)

// node is the loader's own view of a YAML value: the parser's tree with aliases resolved,
// merge keys applied, tags interpreted and ${...} substituted, every value keeping the
// position it was written at. Decoding works on this tree rather than on the parser's, so
// that substitution happens exactly once per scalar and every later error still points at
// the right line and column.
type node struct {
	kind nodeKind
	pos  Position

	// val is a scalar's value: string, bool, int64, uint64 or float64.
	val any
	// text is a scalar's text: the string itself, or a number or boolean as written.
	text string
	// subst marks a scalar whose text came from a ${...} substitution. Such a value takes
	// the type of the field it lands in, quoted or not: a string field takes its text
	// whatever it looks like and a number field reads it as a number, since the person
	// setting the variable cannot quote it.
	subst bool
	// secret marks a scalar holding a ${secret:NAME} reference. Its text stays the raw text
	// until a field of type Secret asks for the value, so a secret is never read into a
	// place where it could be printed.
	secret bool
	// bad marks a value whose problem was already reported; decoding it would only repeat it.
	bad bool
	// bigInt marks an unquoted integer too large for 64 bits, which the parser keeps as a
	// string; an integer field reports it as out of range rather than as text.
	bigInt bool

	entries []entry
	items   []*node
}

// entry is one key of a mapping.
type entry struct {
	key    string
	keyPos Position
	value  *node
}

// describe says what a node holds for error messages ("got string \"three\"").
func (n *node) describe() string {
	switch n.kind {
	case nullNode:
		return "null"
	case mappingNode:
		return "a mapping"
	case sequenceNode:
		return "a list"
	}
	switch v := n.val.(type) {
	case string:
		return "string " + quoteShort(n.text)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case int64, uint64:
		return "integer " + n.text
	case float64:
		return "number " + n.text
	}
	return "a value"
}

// quoteShort quotes s for a message, cutting long values so that one line stays one line.
func quoteShort(s string) string {
	const limit = 60
	r := []rune(s)
	if len(r) > limit {
		return fmt.Sprintf("%q...", string(r[:limit]))
	}
	return fmt.Sprintf("%q", s)
}

// converter turns the parser's tree of one file into nodes.
type converter struct {
	file    string
	errs    *ErrorList
	sub     *substituter // nil where no substitution applies (schema and environment files)
	anchors map[string]*node
	depth   int
}

func (c *converter) errorf(pos Position, format string, args ...any) {
	*c.errs = append(*c.errs, errorf(pos, format, args...))
}

func (c *converter) pos(tk *token.Token) Position {
	if tk == nil || tk.Position == nil {
		return Position{File: c.file}
	}
	return Position{File: c.file, Line: tk.Position.Line, Col: tk.Position.Column}
}

// parseYAML parses one file into the bodies of its documents, reporting problems into errs.
// Empty documents (a file of comments, a trailing "---") are left out.
func parseYAML(file string, data []byte, sub *substituter, errs *ErrorList) []*node {
	if len(data) > maxFileSize {
		*errs = append(*errs, errorf(Position{File: file},
			"file is too large (%d bytes); definition files are limited to %d bytes", len(data), maxFileSize))
		return nil
	}
	f, err := parseAST(file, data)
	if err != nil {
		*errs = append(*errs, err)
		return nil
	}
	var docs []*node
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if _, ok := d.Body.(*ast.DirectiveNode); ok {
			// A %YAML or %TAG directive is not a document of its own.
			continue
		}
		// Anchors are local to a document in YAML, so each document gets a fresh table.
		c := &converter{file: file, errs: errs, sub: sub, anchors: map[string]*node{}}
		docs = append(docs, c.convert(d.Body, Position{File: file, Line: 1, Col: 1}))
	}
	return docs
}

// yamlError is what the parser's errors provide besides the text with a source excerpt,
// which does not fit on one line of output.
type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

var bracketPos = regexp.MustCompile(`\[(\d+):(\d+)\]`)

// parseAST runs the lexer and the parser. It checks the nesting of flow collections on the
// tokens first, because the parser's cost grows quadratically with it, and it turns a panic
// in the parser into an error, because no input may crash the loader.
func parseAST(file string, data []byte) (f *ast.File, perr *Error) {
	defer func() {
		if r := recover(); r != nil {
			f, perr = nil, errorf(Position{File: file}, "YAML parser failed on this file: %v", r)
		}
	}()
	tokens := lexer.Tokenize(strings.TrimPrefix(string(data), "\ufeff"))
	depth := 0
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
			if depth > maxFlowDepth {
				c := converter{file: file}
				return nil, errorf(c.pos(tk), "flow collections ([...] and {...}) nested deeper than %d levels", maxFlowDepth)
			}
		case token.SequenceEndType, token.MappingEndType:
			depth--
		}
	}
	f, err := parser.Parse(dropEmptyDocuments(tokens), 0)
	if err == nil {
		return f, nil
	}
	var ye yamlError
	if errors.As(err, &ye) {
		c := converter{file: file}
		msg := bracketPos.ReplaceAllString(ye.GetMessage(), "$1:$2")
		return nil, errorf(c.pos(ye.GetToken()), "YAML syntax error: %s", msg)
	}
	return nil, errorf(Position{File: file}, "YAML syntax error: %v", err)
}

// dropEmptyDocuments removes the document headers ("---") that open an empty document, one
// followed by nothing but comments and another document marker. The parser stops at such a
// header and silently drops the rest of the file; since an empty document defines nothing,
// removing its header changes nothing else. Comments are dropped too, as the parser ignores
// them anyway.
func dropEmptyDocuments(tokens token.Tokens) token.Tokens {
	out := make(token.Tokens, 0, len(tokens))
	for _, tk := range tokens {
		if tk.Type == token.CommentType {
			continue
		}
		if isDocumentMarker(tk) && len(out) > 0 && out[len(out)-1].Type == token.DocumentHeaderType {
			out = out[:len(out)-1]
		}
		out = append(out, tk)
	}
	return out
}

func isDocumentMarker(tk *token.Token) bool {
	return tk.Type == token.DocumentHeaderType || tk.Type == token.DocumentEndType
}

// convert turns one parser node into a node. fallback is the position used where the parser
// has none, as for the empty value of "key:".
func (c *converter) convert(n ast.Node, fallback Position) *node {
	if n == nil {
		return &node{kind: nullNode, pos: fallback}
	}
	switch n := n.(type) {
	case *ast.NullNode:
		return &node{kind: nullNode, pos: c.pos(n.Token)}
	case *ast.StringNode:
		plain := n.Token != nil && n.Token.Type == token.StringType
		out := &node{kind: scalarNode, pos: c.pos(n.Token), val: n.Value, text: n.Value, bigInt: plain && plainInt(n.Value)}
		if c.sub != nil {
			c.sub.scalar(out, plain, c.errs)
		}
		return out
	case *ast.LiteralNode:
		out := &node{kind: scalarNode, pos: c.pos(n.Start), val: "", text: ""}
		if n.Value != nil {
			out.val, out.text = n.Value.Value, n.Value.Value
		}
		if c.sub != nil {
			c.sub.scalar(out, false, c.errs)
		}
		return out
	case *ast.IntegerNode:
		out := &node{kind: scalarNode, pos: c.pos(n.Token), text: tokenText(n.Token)}
		switch v := n.Value.(type) {
		case int64, uint64:
			out.val = v
		default:
			out.val = out.text
		}
		return out
	case *ast.FloatNode:
		return &node{kind: scalarNode, pos: c.pos(n.Token), val: n.Value, text: tokenText(n.Token)}
	case *ast.InfinityNode:
		return &node{kind: scalarNode, pos: c.pos(n.Token), val: n.Value, text: tokenText(n.Token)}
	case *ast.NanNode:
		v, _ := n.GetValue().(float64)
		return &node{kind: scalarNode, pos: c.pos(n.Token), val: v, text: tokenText(n.Token)}
	case *ast.BoolNode:
		return &node{kind: scalarNode, pos: c.pos(n.Token), val: n.Value, text: tokenText(n.Token)}
	case *ast.MappingNode:
		return c.mapping(n)
	case *ast.MappingValueNode:
		return c.mapping(&ast.MappingNode{Values: []*ast.MappingValueNode{n}})
	case *ast.SequenceNode:
		return c.sequence(n)
	case *ast.AnchorNode:
		out := c.convert(n.Value, c.pos(n.Start))
		if name := anchorName(n.Name); name != "" {
			// Registering the anchor after its value is converted makes a self-referencing
			// alias an unknown one, so the tree can never contain a cycle.
			c.anchors[name] = out
		}
		return out
	case *ast.AliasNode:
		name := anchorName(n.Value)
		if target, ok := c.anchors[name]; ok {
			return target
		}
		c.errorf(c.pos(n.Start), "unknown alias *%s (an alias must follow its &%s anchor in the same document)", name, name)
		return &node{kind: nullNode, pos: c.pos(n.Start), bad: true}
	case *ast.TagNode:
		return c.tagged(n)
	}
	pos := fallback
	if tk := safeToken(n); tk != nil {
		pos = c.pos(tk)
	}
	c.errorf(pos, "unsupported YAML element (%s)", n.Type())
	return &node{kind: nullNode, pos: pos, bad: true}
}

func tokenText(tk *token.Token) string {
	if tk == nil {
		return ""
	}
	return tk.Value
}

// safeToken returns a node's token; some node types panic on GetToken when the parser left
// their token unset.
func safeToken(n ast.Node) (tk *token.Token) {
	defer func() {
		if recover() != nil {
			tk = nil
		}
	}()
	return n.GetToken()
}

func anchorName(n ast.Node) string {
	if n == nil {
		return ""
	}
	if tk := safeToken(n); tk != nil {
		return tk.Value
	}
	return ""
}

// enter counts one more level of nesting, refusing to go deeper than maxDepth so that the
// recursive conversion and decoding cannot exhaust the stack. A caller that gets true must
// decrement c.depth when it leaves the level.
func (c *converter) enter(pos Position) bool {
	c.depth++
	if c.depth > maxDepth {
		c.depth--
		c.errorf(pos, "values nested deeper than %d levels", maxDepth)
		return false
	}
	return true
}

func (c *converter) mapping(n *ast.MappingNode) *node {
	out := &node{kind: mappingNode, pos: c.pos(n.Start)}
	if !n.IsFlowStyle && len(n.Values) > 0 && n.Values[0] != nil && n.Values[0].Key != nil {
		// A block mapping has no token of its own; its first key is where it starts.
		out.pos = c.pos(safeToken(n.Values[0].Key))
	}
	if !c.enter(out.pos) {
		out.bad = true
		return out
	}
	defer func() { c.depth-- }()
	seen := map[string]Position{}
	var merged []entry
	for _, mv := range n.Values {
		if mv == nil {
			continue
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			merged = append(merged, c.mergeEntries(mv)...)
			continue
		}
		key, keyPos, ok := c.key(mv.Key)
		if !ok {
			continue
		}
		if first, dup := seen[key]; dup {
			c.errorf(keyPos, "duplicate key %q (first at %d:%d)", key, first.Line, first.Col)
			continue
		}
		seen[key] = keyPos
		out.entries = append(out.entries, entry{key: key, keyPos: keyPos, value: c.convert(mv.Value, keyPos)})
	}
	// Keys written in the mapping win over merged ones, and among merged mappings the first
	// one listed wins, as the YAML merge key convention says.
	for _, e := range merged {
		if _, dup := seen[e.key]; dup {
			continue
		}
		seen[e.key] = e.keyPos
		out.entries = append(out.entries, e)
	}
	return out
}

// mergeEntries returns the entries a "<<" key brings into a mapping.
func (c *converter) mergeEntries(mv *ast.MappingValueNode) []entry {
	keyPos := c.pos(safeToken(mv.Key))
	v := c.convert(mv.Value, keyPos)
	switch v.kind {
	case mappingNode:
		return v.entries
	case sequenceNode:
		var out []entry
		for _, item := range v.items {
			if item.kind != mappingNode {
				c.errorf(item.pos, "the merge key << takes a mapping or a list of mappings, got %s", item.describe())
				continue
			}
			out = append(out, item.entries...)
		}
		return out
	}
	if !v.bad {
		c.errorf(v.pos, "the merge key << takes a mapping or a list of mappings, got %s", v.describe())
	}
	return nil
}

// key returns the text of a mapping key. Keys are not substituted: a definition's structure
// must be visible in the file, only values vary between environments.
func (c *converter) key(k ast.MapKeyNode) (string, Position, bool) {
	if k == nil {
		return "", Position{File: c.file}, false
	}
	var n ast.Node = k
	for {
		switch kn := n.(type) {
		case *ast.MappingKeyNode:
			n = kn.Value
			continue
		case *ast.TagNode:
			n = kn.Value
			continue
		case *ast.AnchorNode:
			n = kn.Value
			continue
		}
		break
	}
	switch kn := n.(type) {
	case *ast.StringNode:
		return kn.Value, c.pos(kn.Token), true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode, *ast.InfinityNode, *ast.NanNode:
		tk := safeToken(kn)
		return tokenText(tk), c.pos(tk), true
	case *ast.AliasNode:
		if target, ok := c.anchors[anchorName(kn.Value)]; ok && target.kind == scalarNode {
			return target.text, c.pos(kn.Start), true
		}
	}
	pos := Position{File: c.file}
	if n != nil {
		pos = c.pos(safeToken(n))
	}
	c.errorf(pos, "mapping keys must be plain values")
	return "", pos, false
}

func (c *converter) sequence(n *ast.SequenceNode) *node {
	out := &node{kind: sequenceNode, pos: c.pos(n.Start)}
	if !c.enter(out.pos) {
		out.bad = true
		return out
	}
	defer func() { c.depth-- }()
	for _, v := range n.Values {
		out.items = append(out.items, c.convert(v, out.pos))
	}
	return out
}

// tagged interprets the standard YAML tags. "!!str" turns any scalar into a string, the
// other core tags only restate what the value already is; anything else would need a type
// system the definitions do not have, so it is refused rather than ignored.
func (c *converter) tagged(n *ast.TagNode) *node {
	pos := c.pos(n.Start)
	tag := tokenText(n.Start)
	switch tag {
	case "!!str", "tag:yaml.org,2002:str":
		v := c.convert(n.Value, pos)
		switch v.kind {
		case nullNode:
			if !v.bad {
				return &node{kind: scalarNode, pos: v.pos, val: "", text: ""}
			}
		case scalarNode:
			cp := *v
			cp.val = cp.text
			return &cp
		default:
			c.errorf(pos, "the tag !!str applies to a single value, got %s", v.describe())
		}
		return v
	case "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq":
		return c.convert(n.Value, pos)
	}
	c.errorf(pos, "unsupported YAML tag %s", tag)
	return &node{kind: nullNode, pos: pos, bad: true}
}

// Scalar resolution for values produced by substitution, following the YAML 1.2 core schema
// the parser uses for values written in the file, so that "${PORT}" with PORT=8080 is the
// integer 8080 exactly as "8080" written in place would be.
var (
	intPattern   = regexp.MustCompile(`^[-+]?[0-9]+$`)
	octPattern   = regexp.MustCompile(`^0o[0-7]+$`)
	hexPattern   = regexp.MustCompile(`^0x[0-9a-fA-F]+$`)
	floatPattern = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
)

// resolvePlain sets a scalar node's kind and value from its text as YAML would read it
// unquoted.
func resolvePlain(n *node) {
	s := n.text
	switch s {
	case "", "~", "null", "Null", "NULL":
		n.kind, n.val = nullNode, nil
		return
	case "true", "True", "TRUE":
		n.val = true
		return
	case "false", "False", "FALSE":
		n.val = false
		return
	case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF":
		n.val = posInf
		return
	case "-.inf", "-.Inf", "-.INF":
		n.val = negInf
		return
	case ".nan", ".NaN", ".NAN":
		n.val = nan
		return
	}
	switch {
	case intPattern.MatchString(s), octPattern.MatchString(s), hexPattern.MatchString(s):
		if v, ok := parseYAMLInt(s); ok {
			n.val = v
			return
		}
		n.bigInt = true
	case floatPattern.MatchString(s):
		if v, err := parseFloat(s); err == nil {
			n.val = v
			return
		}
	}
	n.val = s
}

// plainInt reports whether s is written like an integer, to tell "out of range" apart from
// "not a number" for values the parser kept as strings because they overflow.
func plainInt(s string) bool {
	return intPattern.MatchString(s) || octPattern.MatchString(s) || hexPattern.MatchString(s)
}
