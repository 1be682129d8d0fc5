package gateway

import (
	"net/http"
	"strconv"

	"github.com/causeway/causeway/gateway/openapi"
)

// documentPath is where, under its base path, an API serves its OpenAPI document.
const documentPath = "/openapi.json"

// document builds an API's OpenAPI 3.1 document from its definition, once: it always
// matches what is deployed.
func (a *api) document(description string) ([]byte, error) {
	doc := openapi.API{Name: a.name, Description: description, Version: a.spec.Version, BasePath: a.spec.BasePath,
		Security: schemes(a.spec.Policies.Auth)}
	for _, rt := range a.spec.Routes {
		r := openapi.Route{Method: rt.method, Path: rt.path(), Description: rt.Description, Scopes: rt.policies.Scopes,
			RateLimited: rt.policies.RateLimit != nil || rt.policies.Quota != nil || rt.policies.Auth.APIKey != nil}
		if rt.Policies != nil && rt.Policies.Auth != nil {
			s := schemes(rt.Policies.Auth)
			r.Security = &s
		}
		if v := rt.policies.Validate; v != nil && v.typ != nil {
			r.RequestSchema = v.typ.Schema
		}
		r.Queued = rt.WhenOffline == "queue"
		switch {
		case rt.Flow != nil:
			r.Kind = openapi.KindFlow
		case rt.Publish != nil:
			r.Kind = openapi.KindPublish
			if typ, ok := a.g.types.Lookup(rt.Publish.Type); ok && rt.Publish.Data == "" && r.RequestSchema == nil {
				// Without a data mapping the body is the message's data.
				r.RequestSchema = typ.Schema
			}
		default:
			r.Kind = openapi.KindProxy
			if rt.Proxy.Response != nil && rt.Proxy.Response.Status != 0 {
				r.SuccessStatus = rt.Proxy.Response.Status
			}
		}
		doc.Routes = append(doc.Routes, r)
	}
	return openapi.Document(doc)
}

// schemes describes an auth policy for the document.
func schemes(auth *Auth) []openapi.Scheme {
	switch {
	case auth == nil || auth.None:
		return []openapi.Scheme{{Type: openapi.SchemeNone}}
	case auth.APIKey != nil:
		var s []openapi.Scheme
		if auth.APIKey.Header != "" {
			s = append(s, openapi.Scheme{Type: openapi.SchemeAPIKey, In: "header", Name: auth.APIKey.Header})
		}
		if auth.APIKey.Query != "" {
			s = append(s, openapi.Scheme{Type: openapi.SchemeAPIKey, In: "query", Name: auth.APIKey.Query})
		}
		return s
	default:
		return []openapi.Scheme{{Type: openapi.SchemeJWT, Issuer: auth.JWT.Issuer}}
	}
}

// path is the route's path under the base path, with its {parameters}.
func (rt *Route) path() string {
	if len(rt.segments) == 0 {
		return "/"
	}
	return rt.shapeNamed()
}

// serveDocument answers GET {basePath}/openapi.json.
func (a *api) serveDocument(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(a.doc)))
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.doc)
}
