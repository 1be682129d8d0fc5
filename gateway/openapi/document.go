// Package openapi writes the OpenAPI 3.1 document of an API served by the gateway, and
// reads the OpenAPI document of a backend to start the System and the API that put it
// behind the gateway.
//
// The gateway serves each API's document at {basePath}/openapi.json. This package does not
// know the API kind: the gateway describes an API with the plain values of API and Route,
// so that the document follows the routes and their policies without this package
// importing the gateway (which imports it).
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Version is the OpenAPI version of the documents Document writes.
const Version = "3.1.0"

// The types of Scheme.
const (
	// SchemeNone is no authentication: anyone may call.
	SchemeNone = "none"
	// SchemeAPIKey is a consumer's API key in a header or a query parameter.
	SchemeAPIKey = "apiKey"
	// SchemeJWT is a JSON Web Token sent as Authorization: Bearer.
	SchemeJWT = "jwt"
)

// The kinds of Route.
const (
	// KindProxy is a route that calls a System operation; it is what an empty Kind means.
	KindProxy = "proxy"
	// KindFlow is a route that invokes a flow and answers with its reply.
	KindFlow = "flow"
	// KindPublish is a route that publishes a message and answers 202.
	KindPublish = "publish"
)

// API describes an API for its document.
type API struct {
	// Name is the API's resource name; the title when Title is empty.
	Name string
	// Title is the document's title.
	Title string
	// Description says what the API is for.
	Description string
	// Version is the API's version; "v1" when empty.
	Version string
	// BasePath is the path every route is under, the document's server URL.
	BasePath string
	// Security are the ways a caller may authenticate, any one of which will do; empty, or
	// only SchemeNone, for an open API.
	Security []Scheme
	// Routes are the API's operations.
	Routes []Route
}

// Scheme is one way a caller may authenticate.
type Scheme struct {
	// Type is SchemeNone, SchemeAPIKey or SchemeJWT.
	Type string
	// In is where an API key travels: "header" or "query".
	In string
	// Name is the header or query parameter that carries an API key.
	Name string
	// Issuer is the issuer of the tokens of a JWT scheme, for its description.
	Issuer string
}

// Route describes one route of an API.
type Route struct {
	// Method is GET, POST, PUT, PATCH or DELETE.
	Method string
	// Path is the path under the API's base path, with {param} segments; the document's
	// path parameters are read from it.
	Path string
	// OperationID names the operation; OperationID(Method, Path) when empty.
	OperationID string
	// Summary is a short line saying what the route does.
	Summary string
	// Description says more about what the route does.
	Description string
	// Security replaces the API's schemes for this route when not nil; pointing to an
	// empty list makes the route open.
	Security *[]Scheme
	// Scopes are the scopes a caller needs, shown in the route's security requirements.
	Scopes []string
	// RequestSchema is the JSON Schema of the request body, when the route validates it.
	RequestSchema json.RawMessage
	// Kind is KindProxy (or empty), KindFlow or KindPublish.
	Kind string
	// SuccessStatus is the status of a successful answer: 200, 201, 202 or 204; 200 when 0,
	// 202 for a publish route.
	SuccessStatus int
	// Queued says the route may answer 202 with a Location to follow the request's status,
	// as a publish route does, or a route whose backend is offline and whose calls queue.
	Queued bool
	// RateLimited says the route may answer 429: it has a rate limit or a quota.
	RateLimited bool
}

// Document returns the OpenAPI 3.1 document of an API, as indented JSON. The same API
// always gives the same bytes: paths, responses and components are in a fixed order.
// It fails on an API the gateway could not serve, saying which route.
func Document(a API) ([]byte, error) {
	if !strings.HasPrefix(a.BasePath, "/") {
		return nil, fmt.Errorf("basePath %q: start with /", a.BasePath)
	}
	d := &document{
		OpenAPI: Version,
		Info:    info{Title: cmp(a.Title, a.Name), Version: cmp(a.Version, "v1"), Description: a.Description},
		Servers: []server{{URL: a.BasePath}},
		Paths:   map[string]*pathItem{},
		Components: components{
			Schemas:         map[string]any{},
			Responses:       map[string]any{},
			SecuritySchemes: map[string]any{},
		},
	}
	if d.Info.Title == "" {
		d.Info.Title = a.BasePath
	}
	names := &schemeNames{byKey: map[Scheme]string{}, doc: d}
	top, err := names.requirements(a.Security, nil)
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	d.Security = top
	// The ids given are taken first, so that a derived id never takes one of them.
	ids := map[string]int{}
	for i, rt := range a.Routes {
		if rt.OperationID == "" {
			continue
		}
		if j, dup := ids[rt.OperationID]; dup {
			return nil, fmt.Errorf("routes[%d] (%s %s): operationId %q is also that of routes[%d]", i, rt.Method, rt.Path, rt.OperationID, j)
		}
		ids[rt.OperationID] = i
	}
	for i, rt := range a.Routes {
		at := fmt.Sprintf("routes[%d] (%s %s)", i, rt.Method, rt.Path)
		op, err := d.operation(rt, a, names)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if j, taken := ids[op.OperationID]; taken && (rt.OperationID == "" || j != i) {
			// A derived id can collide when two paths differ only in punctuation
			// (/order-items and /order_items); a number tells them apart.
			base := op.OperationID
			for n := 2; taken; n++ {
				op.OperationID = fmt.Sprintf("%s%d", base, n)
				_, taken = ids[op.OperationID]
			}
		}
		ids[op.OperationID] = i
		item := d.Paths[rt.Path]
		if item == nil {
			item = &pathItem{}
			d.Paths[rt.Path] = item
		}
		slot := item.slot(rt.Method)
		if *slot != nil {
			return nil, fmt.Errorf("%s: the same method and path as another route", at)
		}
		*slot = op
	}
	d.Components.Schemas["Problem"] = problemSchema
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// cmp returns a, or b when a is empty.
func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// routeMethods are the methods a route may have.
var routeMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// operation describes one route.
func (d *document) operation(rt Route, a API, names *schemeNames) (*operation, error) {
	if !slices.Contains(routeMethods, rt.Method) {
		return nil, fmt.Errorf("method %q: one of %s", rt.Method, strings.Join(routeMethods, ", "))
	}
	params, err := pathParams(rt.Path)
	if err != nil {
		return nil, err
	}
	kind := cmp(rt.Kind, KindProxy)
	if kind != KindProxy && kind != KindFlow && kind != KindPublish {
		return nil, fmt.Errorf("kind %q: one of proxy, flow and publish", rt.Kind)
	}
	status := rt.SuccessStatus
	if status == 0 {
		status = 200
		if kind == KindPublish {
			status = 202
		}
	}
	if status < 200 || status > 299 {
		return nil, fmt.Errorf("success status %d is not 2xx", status)
	}
	op := &operation{
		OperationID: cmp(rt.OperationID, OperationID(rt.Method, rt.Path)),
		Summary:     rt.Summary,
		Description: rt.Description,
		Responses:   map[string]any{},
	}
	for _, p := range params {
		op.Parameters = append(op.Parameters, parameter{Name: p, In: "path", Required: true, Schema: map[string]string{"type": "string"}})
	}
	hasBody := rt.Method == "POST" || rt.Method == "PUT" || rt.Method == "PATCH"
	if len(rt.RequestSchema) > 0 && !json.Valid(rt.RequestSchema) {
		return nil, fmt.Errorf("the request schema is not JSON")
	}
	if hasBody {
		var schema any = json.RawMessage(`{}`)
		if len(rt.RequestSchema) > 0 {
			schema = rt.RequestSchema
		}
		op.RequestBody = &requestBody{
			// A route that validates its body needs one; otherwise the body is passed on
			// as it comes, if it comes.
			Required: len(rt.RequestSchema) > 0,
			Content:  map[string]media{"application/json": {Schema: schema}},
		}
	}

	schemes := a.Security
	if rt.Security != nil {
		schemes = *rt.Security
	}
	reqs, err := names.requirements(schemes, rt.Scopes)
	if err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	if !sameRequirements(reqs, d.Security) {
		op.Security = &reqs
	}
	secured := slices.ContainsFunc(schemes, func(s Scheme) bool { return s.Type != SchemeNone })

	op.Responses[fmt.Sprint(status)] = success(status, kind, rt.Queued && status == 202)
	if rt.Queued && status != 202 {
		op.Responses["202"] = success(202, kind, true)
	}
	use := func(status int) {
		name := problemResponses[status].name
		op.Responses[fmt.Sprint(status)] = ref("#/components/responses/" + name)
		d.Components.Responses[name] = problemResponse(status)
	}
	use(400)
	if secured {
		use(401)
	}
	if secured || len(rt.Scopes) > 0 {
		use(403)
	}
	use(404)
	if kind == KindProxy {
		use(409)
		use(422)
	}
	if hasBody {
		use(413)
	}
	if rt.RateLimited {
		use(429)
	}
	use(502)
	use(503)
	use(504)
	return op, nil
}

// pathParams checks a route's path and returns its parameters in order.
func pathParams(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q: start with /", path)
	}
	var params []string
	if path == "/" {
		return nil, nil
	}
	for _, seg := range strings.Split(path[1:], "/") {
		if m := paramSegment.FindStringSubmatch(seg); m != nil {
			if slices.Contains(params, m[1]) {
				return nil, fmt.Errorf("path %q: parameter %s appears twice", path, m[1])
			}
			params = append(params, m[1])
			continue
		}
		if seg == "" || strings.ContainsAny(seg, "{}") {
			return nil, fmt.Errorf("path %q: segment %q is neither a plain segment nor a {parameter}", path, seg)
		}
	}
	return params, nil
}

// success is the response of a successful request.
func success(status int, kind string, queued bool) *response {
	r := &response{Description: successText[status]}
	if r.Description == "" {
		r.Description = "Success."
	}
	if status != 204 {
		r.Content = map[string]media{"application/json": {Schema: json.RawMessage(`{}`)}}
	}
	if kind == KindFlow {
		r.Headers = map[string]any{"Causeway-Run-Id": header("The run of the flow that answered, to follow it in the console.", "string")}
	}
	if queued {
		r.Description = "Accepted: the request is queued, to be carried out when the service behind the route can take it. Location tells where to follow its status."
		if r.Headers == nil {
			r.Headers = map[string]any{}
		}
		r.Headers["Location"] = header("Where to follow the request's status.", "string")
	}
	return r
}

// successText describes the success statuses.
var successText = map[int]string{
	200: "OK.",
	201: "Created.",
	202: "Accepted: the request is taken and will be carried out.",
	204: "Done, with nothing to answer.",
}
