package openapi

import (
	"encoding/json"
	"fmt"
	"slices"
)

// The document's objects are structs rather than maps where the order of their members is
// worth keeping (openapi, info, servers, paths, components; get before post), and maps
// where sorted keys are the order to read them in (paths, responses, components); either
// way, encoding/json writes them the same every time.

// document is an OpenAPI document.
type document struct {
	OpenAPI    string               `json:"openapi"`
	Info       info                 `json:"info"`
	Servers    []server             `json:"servers"`
	Security   []requirement        `json:"security,omitempty"`
	Paths      map[string]*pathItem `json:"paths"`
	Components components           `json:"components"`
}

// info is the document's title and version.
type info struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version"`
}

// server is where the API is served.
type server struct {
	URL string `json:"url"`
}

// components are the objects operations refer to.
type components struct {
	Schemas         map[string]any `json:"schemas"`
	Responses       map[string]any `json:"responses,omitempty"`
	SecuritySchemes map[string]any `json:"securitySchemes,omitempty"`
}

// pathItem holds the operations of one path, in the order OpenAPI lists them.
type pathItem struct {
	Get    *operation `json:"get,omitempty"`
	Put    *operation `json:"put,omitempty"`
	Post   *operation `json:"post,omitempty"`
	Delete *operation `json:"delete,omitempty"`
	Patch  *operation `json:"patch,omitempty"`
}

// slot returns the field of a method.
func (p *pathItem) slot(method string) **operation {
	switch method {
	case "GET":
		return &p.Get
	case "PUT":
		return &p.Put
	case "POST":
		return &p.Post
	case "DELETE":
		return &p.Delete
	default:
		return &p.Patch
	}
}

// operation is one route.
type operation struct {
	OperationID string         `json:"operationId"`
	Summary     string         `json:"summary,omitempty"`
	Description string         `json:"description,omitempty"`
	Parameters  []parameter    `json:"parameters,omitempty"`
	RequestBody *requestBody   `json:"requestBody,omitempty"`
	Responses   map[string]any `json:"responses"`
	// Security is set when the route's requirements differ from the API's; pointing to an
	// empty list, it writes "security: []", which makes the route open.
	Security *[]requirement `json:"security,omitempty"`
}

// parameter is a path parameter.
type parameter struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
	Schema   any    `json:"schema"`
}

// requestBody is the body of a request.
type requestBody struct {
	Required bool             `json:"required,omitempty"`
	Content  map[string]media `json:"content"`
}

// media is the schema of a body of one media type.
type media struct {
	Schema any `json:"schema"`
}

// response is an answer of an operation.
type response struct {
	Description string           `json:"description"`
	Headers     map[string]any   `json:"headers,omitempty"`
	Content     map[string]media `json:"content,omitempty"`
}

// requirement is one way of satisfying an operation's security: scheme names and the
// scopes each needs.
type requirement map[string][]string

// ref is a reference to a component.
func ref(to string) map[string]string { return map[string]string{"$ref": to} }

// header describes a response header.
func header(description, typ string) map[string]any {
	return map[string]any{"description": description, "schema": map[string]string{"type": typ}}
}

// problemInfo is how the gateway uses one problem status.
type problemInfo struct {
	name, description string
	headers           map[string]any
}

// retryAfter is the Retry-After header the gateway sets on 429 and 503.
var retryAfter = header("How many seconds to wait before trying again.", "integer")

// problemResponses are the problem answers of the gateway, by status. Each is a component
// that operations refer to, so that one description serves every route.
var problemResponses = map[int]problemInfo{
	400: {name: "BadRequest", description: "The request is malformed: a bad path (an empty or dot segment, an encoded slash), a body that is not JSON or does not match the route's schema, or a request without the shape the route needs."},
	401: {name: "Unauthorized", description: "No credentials, or credentials that are not valid."},
	403: {name: "Forbidden", description: "The caller may not do this: it lacks a scope the route needs, or its address is not allowed."},
	404: {name: "NotFound", description: "No such resource, or no such route."},
	409: {name: "Conflict", description: "The request conflicts with the state of the resource."},
	413: {name: "ContentTooLarge", description: "The body is over the API's limit."},
	422: {name: "UnprocessableContent", description: "The service behind the route refused the request as invalid."},
	429: {name: "TooManyRequests", description: "The caller is over its rate limit or quota. Retry-After says when to try again.", headers: map[string]any{
		"Retry-After":         retryAfter,
		"RateLimit-Limit":     header("The requests allowed in the current window.", "integer"),
		"RateLimit-Remaining": header("The requests left in the current window.", "integer"),
		"RateLimit-Reset":     header("The seconds until the window resets.", "integer"),
	}},
	502: {name: "BadGateway", description: "The service behind the route failed, or its answer could not be used. The problem says no more of the service's failure, which is in the gateway's log."},
	503: {name: "ServiceUnavailable", description: "The service behind the route is down for maintenance, busy or unavailable. Retry-After says when to try again.", headers: map[string]any{"Retry-After": retryAfter}},
	504: {name: "GatewayTimeout", description: "No answer in time. A flow's run may still be working on the request."},
}

// problemResponse is the component of a problem answer.
func problemResponse(status int) *response {
	p := problemResponses[status]
	return &response{
		Description: p.description,
		Headers:     p.headers,
		Content:     map[string]media{"application/problem+json": {Schema: ref("#/components/schemas/Problem")}},
	}
}

// problemSchema is the schema of the gateway's problem answers, RFC 9457 problem details
// with the members Causeway adds.
var problemSchema = json.RawMessage(`{
  "type": "object",
  "description": "Problem details (RFC 9457): every error of the gateway has this shape.",
  "required": ["type", "title", "status"],
  "properties": {
    "type": {"type": "string", "format": "uri-reference", "description": "The kind of problem, urn:causeway:problem:<slug>.", "examples": ["urn:causeway:problem:not-found"]},
    "title": {"type": "string", "description": "The text of the status."},
    "status": {"type": "integer", "description": "The HTTP status."},
    "detail": {"type": "string", "description": "What went wrong, for people."},
    "instance": {"type": "string", "description": "The path of the request."},
    "errors": {
      "type": "array",
      "description": "Where the request body is wrong, when it does not match the route's schema.",
      "items": {
        "type": "object",
        "required": ["pointer", "detail"],
        "properties": {
          "pointer": {"type": "string", "description": "A JSON pointer into the body."},
          "detail": {"type": "string", "description": "What is wrong there."}
        }
      }
    },
    "runId": {"type": "string", "description": "The flow run the problem concerns."}
  }
}`)

// schemeNames names the security schemes of a document as they are met, "apiKey", "jwt",
// then "apiKey2" and so on for a second one of a type, and adds them to its components.
type schemeNames struct {
	byKey map[Scheme]string
	count map[string]int
	doc   *document
}

// requirements returns the security requirements of a list of schemes, any one of which
// will do, each asking for scopes. SchemeNone among others makes credentials optional (an
// empty requirement); no scheme but SchemeNone gives no requirement at all.
func (n *schemeNames) requirements(schemes []Scheme, scopes []string) ([]requirement, error) {
	out := []requirement{}
	optional := false
	for i, s := range schemes {
		var key Scheme
		switch s.Type {
		case SchemeNone:
			optional = true
			continue
		case SchemeAPIKey:
			if s.In != "header" && s.In != "query" {
				return nil, fmt.Errorf("[%d]: an API key is in header or query, not %q", i, s.In)
			}
			if s.Name == "" {
				return nil, fmt.Errorf("[%d]: name the %s parameter that carries the API key", i, s.In)
			}
			key = Scheme{Type: s.Type, In: s.In, Name: s.Name}
		case SchemeJWT:
			key = Scheme{Type: s.Type, Issuer: s.Issuer}
		default:
			return nil, fmt.Errorf("[%d]: type %q: one of none, apiKey and jwt", i, s.Type)
		}
		name := n.name(key)
		r := requirement{name: append([]string{}, scopes...)}
		if !slices.ContainsFunc(out, func(o requirement) bool { _, ok := o[name]; return ok }) {
			out = append(out, r)
		}
	}
	if optional && len(out) > 0 {
		out = append(out, requirement{})
	}
	return out, nil
}

// name returns the name of a scheme, adding it to the components when it is new.
func (n *schemeNames) name(s Scheme) string {
	if name, ok := n.byKey[s]; ok {
		return name
	}
	if n.count == nil {
		n.count = map[string]int{}
	}
	n.count[s.Type]++
	name := s.Type
	if c := n.count[s.Type]; c > 1 {
		name = fmt.Sprintf("%s%d", s.Type, c)
	}
	n.byKey[s] = name
	switch s.Type {
	case SchemeAPIKey:
		where := "the " + s.Name + " header"
		if s.In == "query" {
			where = "the " + s.Name + " query parameter"
		}
		n.doc.Components.SecuritySchemes[name] = map[string]string{
			"type": "apiKey", "in": s.In, "name": s.Name,
			"description": "The API key issued to the caller, in " + where + ".",
		}
	case SchemeJWT:
		desc := "A JSON Web Token, sent as Authorization: Bearer <token>."
		if s.Issuer != "" {
			desc = "A JSON Web Token issued by " + s.Issuer + ", sent as Authorization: Bearer <token>."
		}
		n.doc.Components.SecuritySchemes[name] = map[string]string{
			"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": desc,
		}
	}
	return name
}

// sameRequirements reports whether two lists of requirements say the same.
func sameRequirements(a, b []requirement) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
