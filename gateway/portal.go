package gateway

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/causeway/causeway/problem"
)

// The developer portal is a few server-rendered pages on the admin listener: the APIs with
// their OpenAPI documents rendered, and each consumer's usage and quotas. The pages need no
// script, so they work in any browser and behind strict content security policies; the
// same data is served as JSON for tools.

//go:embed portal/*.html
var portalFiles embed.FS

var portalPages = template.Must(template.New("").Funcs(template.FuncMap{
	"lower": strings.ToLower,
}).ParseFS(portalFiles, "portal/*.html"))

// APIInfo describes a served API for the portal and the admin API.
type APIInfo struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	BasePath    string      `json:"basePath"`
	Version     string      `json:"version"`
	Auth        string      `json:"auth"`
	Routes      []RouteInfo `json:"routes"`
	// Document is where the admin listener serves the API's OpenAPI document.
	Document string `json:"document"`
}

// RouteInfo describes a route.
type RouteInfo struct {
	Match       string `json:"match"`
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
	WhenOffline string `json:"whenOffline,omitempty"`
}

// APIs describes the served APIs.
func (g *Gateway) APIs() []APIInfo {
	out := make([]APIInfo, 0, len(g.apis))
	for _, a := range g.apis {
		info := APIInfo{Name: a.name, Description: a.description, BasePath: a.spec.BasePath, Version: a.spec.Version,
			Auth: authName(a.spec.Policies.Auth), Document: "/v1/apis/" + a.name + "/openapi.json", Routes: []RouteInfo{}}
		for _, rt := range a.spec.Routes {
			ri := RouteInfo{Match: rt.Match, Description: rt.Description, WhenOffline: rt.WhenOffline, Kind: "proxy"}
			switch {
			case rt.Flow != nil:
				ri.Kind = "flow"
			case rt.Publish != nil:
				ri.Kind = "publish"
			}
			info.Routes = append(info.Routes, ri)
		}
		out = append(out, info)
	}
	return out
}

// authName names an auth policy for people.
func authName(a *Auth) string {
	switch {
	case a == nil || a.None:
		return "none"
	case a.APIKey != nil:
		return "API key"
	default:
		return "JWT bearer"
	}
}

// RegisterAdmin serves the portal and the gateway's admin API on the admin listener.
func (g *Gateway) RegisterAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/apis", func(w http.ResponseWriter, r *http.Request) { writeJSONBody(w, r, g.APIs()) })
	mux.HandleFunc("GET /v1/apis/{name}/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		a := g.apiNamed(r.PathValue("name"))
		if a == nil {
			problem.Write(w, r, http.StatusNotFound, "not-found", "no API "+r.PathValue("name")+" is defined")
			return
		}
		a.serveDocument(w)
	})
	mux.HandleFunc("GET /v1/consumers", func(w http.ResponseWriter, r *http.Request) { writeJSONBody(w, r, g.ConsumerNames()) })
	mux.HandleFunc("GET /v1/consumers/{name}/usage", func(w http.ResponseWriter, r *http.Request) {
		g.writeUsage(w, r, r.PathValue("name"))
	})
	mux.HandleFunc("GET /portal", g.portalIndex)
	mux.HandleFunc("GET /portal/apis/{name}", g.portalAPI)
	mux.HandleFunc("GET /portal/consumers/{name}", g.portalConsumer)
}

// writeJSONBody answers v as JSON.
func writeJSONBody(w http.ResponseWriter, r *http.Request, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		problem.Write(w, r, http.StatusInternalServerError, "internal", "the answer could not be encoded")
		return
	}
	w.Header()["Content-Type"] = jsonType
	_, _ = w.Write(data)
}

// render answers a portal page.
func render(w http.ResponseWriter, r *http.Request, page string, data any) {
	var b bytes.Buffer
	if err := portalPages.ExecuteTemplate(&b, page, data); err != nil {
		problem.Write(w, r, http.StatusInternalServerError, "internal", "the page could not be rendered")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The pages have no script and load nothing from elsewhere; say so.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b.Bytes())
}

func (g *Gateway) portalIndex(w http.ResponseWriter, r *http.Request) {
	render(w, r, "index.html", map[string]any{"APIs": g.APIs(), "Consumers": g.ConsumerNames()})
}

func (g *Gateway) portalConsumer(w http.ResponseWriter, r *http.Request) {
	u, err := g.Usage(r.Context(), r.PathValue("name"))
	if err != nil {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no Consumer "+r.PathValue("name")+" is defined")
		return
	}
	render(w, r, "consumer.html", u)
}

// opView is an operation of an OpenAPI document, as the portal shows it.
type opView struct {
	Method, Path string
	Doc          struct {
		OperationID string `json:"operationId"`
		Description string `json:"description"`
		Parameters  []struct {
			Name     string `json:"name"`
			In       string `json:"in"`
			Required bool   `json:"required"`
		} `json:"parameters"`
		RequestBody *struct {
			Content map[string]struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Ref         string `json:"$ref"`
			Description string `json:"description"`
		} `json:"responses"`
		Security *[]map[string][]string `json:"security"`
	}
	Schema    string
	Responses []respView
	Security  string
}

// respView is one answer of an operation.
type respView struct{ Code, Description string }

func (g *Gateway) portalAPI(w http.ResponseWriter, r *http.Request) {
	a := g.apiNamed(r.PathValue("name"))
	if a == nil {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no API "+r.PathValue("name")+" is defined")
		return
	}
	var doc struct {
		Info struct {
			Title, Version, Description string
		} `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Responses map[string]struct {
				Description string `json:"description"`
			} `json:"responses"`
			SecuritySchemes map[string]struct {
				Type, In, Name, Scheme, Description string
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(a.doc, &doc); err != nil {
		problem.Write(w, r, http.StatusInternalServerError, "internal", "the API's document could not be read")
		return
	}
	var ops []opView
	for path, methods := range doc.Paths {
		for method, raw := range methods {
			op := opView{Method: strings.ToUpper(method), Path: a.spec.BasePath + strings.TrimSuffix(path, "/")}
			if path == "/" {
				op.Path = a.spec.BasePath + "/"
			}
			if err := json.Unmarshal(raw, &op.Doc); err != nil {
				continue
			}
			if rb := op.Doc.RequestBody; rb != nil {
				if c, ok := rb.Content["application/json"]; ok && len(c.Schema) > 0 {
					var pretty bytes.Buffer
					if json.Indent(&pretty, c.Schema, "", "  ") == nil {
						op.Schema = pretty.String()
					}
				}
			}
			for code, resp := range op.Doc.Responses {
				d := resp.Description
				if name, ok := strings.CutPrefix(resp.Ref, "#/components/responses/"); ok {
					d = doc.Components.Responses[name].Description
				}
				op.Responses = append(op.Responses, respView{Code: code, Description: d})
			}
			sort.Slice(op.Responses, func(i, j int) bool { return op.Responses[i].Code < op.Responses[j].Code })
			ops = append(ops, op)
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return ops[i].Method < ops[j].Method
	})
	var schemes []string
	for name, s := range doc.Components.SecuritySchemes {
		line := name + ": " + s.Type
		if s.Name != "" {
			line += " (" + s.In + " " + s.Name + ")"
		}
		if s.Description != "" {
			line += " — " + s.Description
		}
		schemes = append(schemes, line)
	}
	sort.Strings(schemes)
	var info APIInfo
	for _, i := range g.APIs() {
		if i.Name == a.name {
			info = i
		}
	}
	render(w, r, "api.html", map[string]any{"API": info, "Ops": ops, "Schemes": schemes})
}
