package openapi

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// ImportOptions says what to call the definitions Import writes.
type ImportOptions struct {
	// System names the System of the backend: lowercase letters, digits and '-'. Required.
	System string
	// BasePath is the API's base path; /api/<system> when empty.
	BasePath string
	// APIName names the API; the system's name when empty.
	APIName string
}

// Import reads the OpenAPI 3.0 or 3.1 document of a backend, in YAML or JSON, and writes
// the definitions that put it behind the gateway: a System with one HTTP operation per
// operation of the document, and an API with one route per operation that proxies to it,
// passing on the path parameters, the query parameters the document declares and the body.
// The output is two YAML documents, laid out in the order of the paths, then of the methods
// (GET, POST, PUT, PATCH, DELETE), so that importing again gives the same text.
//
// What the definitions cannot express is left out with a comment saying so, rather than
// failing the import: a method routes do not take, a path segment that mixes a parameter
// with text, a header or cookie parameter, server variables. What must be decided by a
// person is written with a comment too: the backend's URL when the document has none, its
// credentials, and who may call the API. Import fails on a document that is not OpenAPI
// 3.0 or 3.1, saying what it is, and on one it cannot make sense of, saying where.
func Import(data []byte, opts ImportOptions) ([]byte, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	top, err := sniff(data)
	if err != nil {
		return nil, err
	}
	version, err := top.check()
	if err != nil {
		return nil, err
	}
	doc, err := load(data)
	if err != nil {
		return nil, err
	}
	im := &importer{opts: opts, doc: doc, version: version, names: map[string]string{}, shapes: map[string]string{}}
	if err := im.read(); err != nil {
		return nil, err
	}
	return im.render()
}

// load reads the document with the OpenAPI library, which resolves its references. Only
// references inside the document are followed: an import reads the file it is given, and
// nothing else on the disk or the network. A panic of the library is an error here, since
// no input may crash an import.
func load(data []byte) (doc *openapi3.T, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("reading the OpenAPI document failed: %v", r)
		}
	}()
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err = loader.LoadFromData(data)
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "external reference") {
			return nil, fmt.Errorf("reading the OpenAPI document: %s (only references inside the document, #/..., are followed: bundle the document into one file first)", msg)
		}
		return nil, fmt.Errorf("reading the OpenAPI document: %s", msg)
	}
	return doc, nil
}

// namePattern is what resources are called; a System's name has no dot, since a call
// writes <system>.<operation>.
var (
	namePattern       = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)
	systemNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	literalSegment    = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@-]+$`)
)

// reservedPaths are the paths of the http listener that APIs may not take.
var reservedPaths = []string{"/v1", "/healthz", "/readyz"}

// check checks the names and the base path, filling in the defaults.
func (o *ImportOptions) check() error {
	if o.System == "" {
		return errors.New("name the system: lowercase letters, digits and '-', such as erp")
	}
	if len(o.System) > 63 || !systemNamePattern.MatchString(o.System) {
		return fmt.Errorf("system name %q: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", o.System)
	}
	if o.APIName == "" {
		o.APIName = o.System
	}
	if len(o.APIName) > 253 || !namePattern.MatchString(o.APIName) {
		return fmt.Errorf("API name %q: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit", o.APIName)
	}
	if o.BasePath == "" {
		o.BasePath = "/api/" + o.System
	}
	bp := o.BasePath
	if !strings.HasPrefix(bp, "/") || bp == "/" || strings.HasSuffix(bp, "/") {
		return fmt.Errorf("base path %q: start with / and do not end with /, such as /api/%s", bp, o.System)
	}
	for _, seg := range strings.Split(bp[1:], "/") {
		if !literalSegment.MatchString(seg) || seg == "." || seg == ".." || strings.Contains(seg, "${") {
			return fmt.Errorf("base path %q: segment %q is not a plain path segment", bp, seg)
		}
	}
	for _, r := range reservedPaths {
		if bp == r || strings.HasPrefix(bp, r+"/") {
			return fmt.Errorf("base path %q is under %s, which is Causeway's own", bp, r)
		}
	}
	return nil
}

// importer turns a loaded document into definitions.
type importer struct {
	opts    ImportOptions
	doc     *openapi3.T
	version string

	baseURL     string
	systemNotes []string // comments above the System's http settings
	auth        []string // suggested auth settings, commented out
	ops         []*importedOp
	skipped     []string          // operations left out of the System, with why
	names       map[string]string // operation name to where it comes from
	shapes      map[string]string // method and path shape to the match of its route
}

// importedOp is one operation of the document, as a System operation and maybe a route.
type importedOp struct {
	at                 string // "paths./pets/{id}.get", for messages
	method             string
	name               string
	sysPath, routePath string // routePath is empty when the operation is not routed
	description        string
	pathParams         []string
	query              []string
	body               bool
	sysNotes           []string
	routeNotes         []string
	notRouted          string // why the operation has no route
}

// importMethods are the methods read, in the order written; routes take the first five.
var importMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"}

// read reads the servers, the security schemes and the operations.
func (im *importer) read() error {
	im.readServer()
	im.readSecuritySchemes()
	if len(im.doc.Webhooks) > 0 {
		im.skipped = append(im.skipped, "The document's webhooks are left out: they are calls the backend makes, not calls to it.")
	}
	if im.doc.Paths == nil || im.doc.Paths.Len() == 0 {
		return errors.New("the document has no paths: there is nothing to import")
	}
	paths := im.doc.Paths.Map()
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, path := range keys {
		item := paths[path]
		if item == nil {
			continue
		}
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("paths.%s: a path starts with /", path)
		}
		if strings.Count(path, "{") != strings.Count(path, "}") || strings.Contains(path, "{}") {
			return fmt.Errorf("paths.%s: unbalanced or empty braces", path)
		}
		for _, method := range importMethods {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			at := "paths." + path + "." + strings.ToLower(method)
			if method == "HEAD" || method == "OPTIONS" || method == "TRACE" {
				im.skipped = append(im.skipped, fmt.Sprintf("%s %s is left out: routes answer GET, POST, PUT, PATCH and DELETE.", method, path))
				continue
			}
			o, err := im.operation(at, method, path, item, op)
			if err != nil {
				return err
			}
			im.ops = append(im.ops, o)
		}
	}
	if len(im.ops) == 0 {
		return errors.New("the document has no GET, POST, PUT, PATCH or DELETE operation: there is nothing to import")
	}
	routed := slices.ContainsFunc(im.ops, func(o *importedOp) bool { return o.routePath != "" })
	if !routed {
		return fmt.Errorf("%s: none of the document's operations can be routed; the first: %s", im.ops[0].at, im.ops[0].notRouted)
	}
	return nil
}

// reservedWith are the keys of a call's parameters that are not path parameters, which a
// path parameter of that name would be taken for.
var reservedWith = map[string]string{"body": "body", "query": "query string", "headers": "headers"}

// placeholder finds the {name} placeholders of a path.
var placeholder = regexp.MustCompile(`\{([^{}]*)\}`)

// queryName is a query parameter name that can be written into the call's mapping as it is.
var queryName = regexp.MustCompile(`^[A-Za-z0-9_.\-\[\]]+$`)

// operation reads one operation.
func (im *importer) operation(at, method, path string, item *openapi3.PathItem, op *openapi3.Operation) (*importedOp, error) {
	o := &importedOp{at: at, method: method, description: strings.TrimSpace(op.Summary)}
	if o.description == "" {
		o.description = strings.TrimSpace(op.Description)
	}
	if op.Deprecated {
		o.routeNotes = append(o.routeNotes, "Deprecated in the document.")
	}

	// The path's parameters get names that routes and operation paths accept, the same in
	// both, so that the route passes each on by name.
	rename := map[string]string{}
	taken := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(path, -1) {
		if _, done := rename[m[1]]; done {
			continue
		}
		name := paramNameFrom(m[1])
		if reservedWith[name] != "" {
			name += "Param"
		}
		for base, n := name, 2; taken[name]; n++ {
			name = fmt.Sprintf("%s%d", base, n)
		}
		taken[name] = true
		rename[m[1]] = name
		o.pathParams = append(o.pathParams, name)
		switch {
		case reservedWith[paramNameFrom(m[1])] != "":
			o.routeNotes = append(o.routeNotes, fmt.Sprintf("The path parameter {%s} is called {%s} here: a call's parameter named %s is its %s.", m[1], name, m[1], reservedWith[paramNameFrom(m[1])]))
		case name != m[1]:
			o.routeNotes = append(o.routeNotes, fmt.Sprintf("The path parameter {%s} is called {%s} here: routes and operation paths name parameters with letters, digits and '_'.", m[1], name))
		}
	}
	o.sysPath = placeholder.ReplaceAllStringFunc(path, func(s string) string { return "{" + rename[s[1:len(s)-1]] + "}" })

	params, err := parameters(at, item.Parameters, op.Parameters)
	if err != nil {
		return nil, err
	}
	for _, p := range params {
		switch p.In {
		case openapi3.ParameterInPath:
			if _, ok := rename[p.Name]; !ok {
				o.routeNotes = append(o.routeNotes, fmt.Sprintf("The path parameter %s is not in the path %s; it is left out.", p.Name, path))
			}
		case openapi3.ParameterInQuery:
			if !queryName.MatchString(p.Name) {
				o.routeNotes = append(o.routeNotes, fmt.Sprintf("The query parameter %q is not passed on: its name has characters the mapping does not take as they are; add it to with.query by hand.", p.Name))
				continue
			}
			o.query = append(o.query, p.Name)
		case openapi3.ParameterInHeader:
			o.routeNotes = append(o.routeNotes, fmt.Sprintf("The header parameter %s is not passed on; add it to with.headers if the backend needs it.", p.Name))
		case openapi3.ParameterInCookie:
			o.routeNotes = append(o.routeNotes, fmt.Sprintf("The cookie parameter %s is left out: the System does not send cookies.", p.Name))
		}
	}

	o.body = method == "POST" || method == "PUT" || method == "PATCH"
	if rb := op.RequestBody; rb != nil {
		if rb.Value == nil {
			return nil, fmt.Errorf("%s.requestBody: unresolved reference %s", at, rb.Ref)
		}
		o.body = true
		if types := slices.Sorted(mapKeys(rb.Value.Content)); len(types) > 0 && !slices.ContainsFunc(types, isJSON) {
			o.sysNotes = append(o.sysNotes, fmt.Sprintf("The backend takes %s; the System sends bodies as JSON, so this operation may need its body built differently.", strings.Join(types, ", ")))
		}
	}
	if (op.Servers != nil && len(*op.Servers) > 0) || len(item.Servers) > 0 {
		o.sysNotes = append(o.sysNotes, "The document gives this operation servers of its own; the System calls the base URL of all its operations.")
	}

	o.name = operationNameFrom(op.OperationID)
	if o.name == "" {
		o.name = OperationID(method, o.sysPath)
	}
	if prev, dup := im.names[o.name]; dup {
		base := o.name
		for n := 2; im.names[o.name] != ""; n++ {
			o.name = fmt.Sprintf("%s%d", base, n)
		}
		o.sysNotes = append(o.sysNotes, fmt.Sprintf("Called %s: %s is the operation of %s.", o.name, base, prev))
	}
	im.names[o.name] = at

	im.route(o, path)
	return o, nil
}

// route finds the route's path of an operation, or why it has none.
func (im *importer) route(o *importedOp, path string) {
	rp := o.sysPath
	if len(rp) > 1 {
		// A trailing slash would be an empty segment, which routes do not match.
		rp = strings.TrimRight(rp, "/")
		if rp == "" {
			rp = "/"
		}
	}
	var shape strings.Builder
	if rp != "/" {
		for _, seg := range strings.Split(rp[1:], "/") {
			shape.WriteByte('/')
			if paramSegment.MatchString(seg) {
				shape.WriteString("{}")
				continue
			}
			switch {
			case strings.ContainsAny(seg, "{}"):
				o.notRouted = fmt.Sprintf("the segment %s mixes a parameter with text, which routes do not match", seg)
				return
			case seg == "" || seg == "." || seg == ".." || !literalSegment.MatchString(seg) || strings.Contains(seg, "${"):
				o.notRouted = fmt.Sprintf("the segment %q is not a plain path segment", seg)
				return
			}
			shape.WriteString(seg)
		}
	}
	key := o.method + " " + shape.String()
	if prev, dup := im.shapes[key]; dup {
		o.notRouted = fmt.Sprintf("routes cannot tell it from %s, whose path differs only in the names of its parameters", prev)
		return
	}
	o.routePath = rp
	im.shapes[key] = o.method + " " + rp
	if rp != o.sysPath {
		o.routeNotes = append(o.routeNotes, "The route's path has no trailing /: routes do not match an empty segment.")
	}
}

// parameters merges the parameters of a path and of an operation, the operation's
// replacing the path's of the same name and location, as OpenAPI says.
func parameters(at string, pathLevel, opLevel openapi3.Parameters) ([]*openapi3.Parameter, error) {
	var out []*openapi3.Parameter
	for _, list := range []struct {
		at     string
		params openapi3.Parameters
	}{{at + ".parameters", opLevel}, {at[:strings.LastIndexByte(at, '.')] + ".parameters", pathLevel}} {
		for i, ref := range list.params {
			if ref == nil || ref.Value == nil {
				r := ""
				if ref != nil {
					r = " " + ref.Ref
				}
				return nil, fmt.Errorf("%s[%d]: unresolved parameter%s", list.at, i, r)
			}
			p := ref.Value
			switch {
			case p.Name == "":
				return nil, fmt.Errorf("%s[%d]: a parameter has a name", list.at, i)
			case p.In != openapi3.ParameterInPath && p.In != openapi3.ParameterInQuery && p.In != openapi3.ParameterInHeader && p.In != openapi3.ParameterInCookie:
				return nil, fmt.Errorf("%s[%d] (%s): in is path, query, header or cookie, not %q", list.at, i, p.Name, p.In)
			}
			if !slices.ContainsFunc(out, func(q *openapi3.Parameter) bool { return q.Name == p.Name && q.In == p.In }) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// isJSON reports whether a media type is JSON, or a range that holds it.
func isJSON(mediaType string) bool {
	t, _, _ := strings.Cut(strings.ToLower(mediaType), ";")
	t = strings.TrimSpace(t)
	return t == "application/json" || strings.HasSuffix(t, "+json") || t == "*/*" || t == "application/*"
}

// mapKeys returns the keys of a map, for sorting.
func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// placeholderURL stands for the backend's URL when the document does not give a usable one.
const placeholderURL = "https://CHANGE-ME"

// readServer finds the backend's base URL in the document's first server.
func (im *importer) readServer() {
	if len(im.doc.Servers) == 0 || im.doc.Servers[0] == nil || strings.TrimSpace(im.doc.Servers[0].URL) == "" {
		im.baseURL = placeholderURL
		im.systemNotes = append(im.systemNotes, "The document names no server: put the backend's URL in place of "+placeholderURL+".")
		return
	}
	s := im.doc.Servers[0]
	raw := strings.TrimSpace(s.URL)
	var missing []string
	resolved := placeholder.ReplaceAllStringFunc(raw, func(m string) string {
		name := m[1 : len(m)-1]
		if v := s.Variables[name]; v != nil && v.Default != "" {
			return v.Default
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		im.baseURL = placeholderURL
		im.systemNotes = append(im.systemNotes, fmt.Sprintf("servers[0].url %s has variables without a default (%s): put the backend's URL in place of %s.", raw, strings.Join(missing, ", "), placeholderURL))
		return
	}
	if resolved != raw {
		im.systemNotes = append(im.systemNotes, fmt.Sprintf("servers[0].url %s has variables; their defaults give this URL.", raw))
	}
	u, err := url.Parse(resolved)
	switch {
	case err != nil || strings.ContainsAny(resolved, "{}"):
		im.baseURL = placeholderURL
		im.systemNotes = append(im.systemNotes, fmt.Sprintf("servers[0].url %s is not a URL: put the backend's URL in place of %s.", raw, placeholderURL))
		return
	case u.Scheme == "" && u.Host == "":
		// A relative URL is relative to where the document is served, which the document
		// does not say; its path is kept.
		im.baseURL = placeholderURL
		if p := strings.Trim(path.Clean("/"+u.EscapedPath()), "/"); p != "" {
			im.baseURL += "/" + p
		}
		im.systemNotes = append(im.systemNotes, fmt.Sprintf("servers[0].url %s is relative: put the backend's scheme and host in place of %s.", raw, placeholderURL))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		im.baseURL = placeholderURL
		im.systemNotes = append(im.systemNotes, fmt.Sprintf("servers[0].url %s is not an http or https URL: put the backend's URL in place of %s.", raw, placeholderURL))
		return
	default:
		im.baseURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
	}
	im.baseURL = strings.TrimRight(im.baseURL, "/")
	if u.User != nil {
		im.systemNotes = append(im.systemNotes, "The credentials in servers[0].url are left out: give them in auth.")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		im.systemNotes = append(im.systemNotes, "The query of servers[0].url is left out: give query parameters in the operations.")
	}
	if len(im.doc.Servers) > 1 {
		im.systemNotes = append(im.systemNotes, fmt.Sprintf("The document names %d servers; this is the first.", len(im.doc.Servers)))
	}
}

// readSecuritySchemes writes the auth settings that would give the System the credentials
// each security scheme of the document asks for, commented out: which one the backend
// wants of Causeway, and where its secret is, is for a person to say.
func (im *importer) readSecuritySchemes() {
	if im.doc.Components == nil {
		return
	}
	schemes := im.doc.Components.SecuritySchemes
	secret := func(what string) string { return fmt.Sprintf(`"${secret:%s-%s}"`, im.opts.System, what) }
	for _, name := range slices.Sorted(mapKeys(schemes)) {
		ref := schemes[name]
		if ref == nil || ref.Value == nil {
			continue
		}
		s := ref.Value
		var line string
		switch strings.ToLower(s.Type) {
		case "apikey":
			switch s.In {
			case "header", "query":
				line = fmt.Sprintf("auth: {%s: {name: %s, value: %s}}", s.In, quoted(s.Name), secret("api-key"))
			default:
				line = fmt.Sprintf("(an API key in a %s, which the System cannot send)", s.In)
			}
		case "http":
			switch strings.ToLower(s.Scheme) {
			case "bearer":
				line = fmt.Sprintf("auth: {bearer: %s}", secret("token"))
			case "basic":
				line = fmt.Sprintf("auth: {basic: {username: CHANGE-ME, password: %s}}", secret("password"))
			default:
				line = fmt.Sprintf("(HTTP %s authentication, which the System cannot do)", s.Scheme)
			}
		case "oauth2":
			if s.Flows != nil && s.Flows.ClientCredentials != nil {
				cc := s.Flows.ClientCredentials
				scopes := slices.Sorted(mapKeys(cc.Scopes))
				for i, sc := range scopes {
					scopes[i] = quoted(sc)
				}
				line = fmt.Sprintf("auth: {oauth2: {tokenURL: %s, clientID: CHANGE-ME, clientSecret: %s, scopes: [%s]}}", quoted(cc.TokenURL), secret("client-secret"), strings.Join(scopes, ", "))
			} else {
				line = "(OAuth 2.0 without the client credentials flow, the one the System can use)"
			}
		default:
			line = fmt.Sprintf("(%s, which the System cannot do)", s.Type)
		}
		im.auth = append(im.auth, fmt.Sprintf("%s: %s", name, line))
	}
}

// quoted writes a string as a double-quoted YAML scalar.
func quoted(s string) string {
	q := scalar(s)
	if !strings.HasPrefix(q, `"`) {
		q = `"` + q + `"`
	}
	return q
}
