package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/causeway/causeway/problem"
)

// ErrNoConsumer is a consumer that is not defined.
var ErrNoConsumer = errors.New("no such consumer")

// Usage is where a consumer stands with the limits of the APIs it may call.
type Usage struct {
	Consumer string `json:"consumer"`
	// APIs are the APIs the consumer may call, by name.
	APIs []APIUsage `json:"apis"`
}

// APIUsage is a consumer's limits on one API.
type APIUsage struct {
	API      string `json:"api"`
	BasePath string `json:"basePath"`
	// RateLimits are the rate limits that apply, with the routes they cover.
	RateLimits []RateUsage `json:"rateLimits,omitempty"`
	// Quotas are the quotas that apply, with how much of each is used.
	Quotas []QuotaUsage `json:"quotas,omitempty"`
}

// RateUsage is a rate limit and the routes it covers.
type RateUsage struct {
	Routes   []string `json:"routes"`
	Requests int      `json:"requests"`
	Per      string   `json:"per"`
	Burst    int      `json:"burst"`
	By       string   `json:"by"`
}

// QuotaUsage is a quota, the routes it covers and how much of it is used.
type QuotaUsage struct {
	Routes    []string  `json:"routes"`
	Requests  int64     `json:"requests"`
	Per       string    `json:"per"`
	Used      int64     `json:"used"`
	Remaining int64     `json:"remaining"`
	Resets    time.Time `json:"resets"`
	// Error says the count could not be read (the bus did not answer).
	Error string `json:"error,omitempty"`
}

// Usage returns where the consumer name stands with the limits of every API it may call
// with its credentials, counted across all nodes.
func (g *Gateway) Usage(ctx context.Context, name string) (*Usage, error) {
	c := g.consumers[name]
	if c == nil {
		return nil, ErrNoConsumer
	}
	u := &Usage{Consumer: name, APIs: []APIUsage{}}
	for _, a := range g.apis {
		if c.apis != nil && !c.apis[a.name] {
			continue
		}
		au := APIUsage{API: a.name, BasePath: a.spec.BasePath}
		rates := map[string]*RateUsage{}
		quotas := map[string]*QuotaUsage{}
		var rateOrder, quotaOrder []string
		for _, rt := range a.spec.Routes {
			pol := rt.policies
			if pol.Auth == nil || pol.Auth.None {
				// An open route does not know its callers as consumers.
				continue
			}
			if rl := pol.RateLimit; rl != nil {
				if c.spec.RateLimit != nil {
					rl = c.spec.RateLimit
				}
				r := rates[rt.rateScope]
				if r == nil {
					r = &RateUsage{Requests: rl.Requests, Per: rl.Per.String(), Burst: rl.burst(), By: cmpOr(rl.By, "consumer")}
					rates[rt.rateScope] = r
					rateOrder = append(rateOrder, rt.rateScope)
				}
				r.Routes = append(r.Routes, rt.Match)
			}
			if q := pol.Quota; q != nil {
				if c.spec.Quota != nil {
					q = c.spec.Quota
				}
				qu := quotas[rt.quotaScope]
				if qu == nil {
					qu = &QuotaUsage{Requests: q.Requests, Per: q.Per}
					used, resets, err := g.limits.usage(ctx, bucketKey("q", rt.quotaScope, name), q)
					if err != nil {
						qu.Error = "the count could not be read"
						g.log.Warn("consumer usage: quota not read", "consumer", name, "api", a.name, "err", err)
					}
					qu.Used, qu.Remaining, qu.Resets = used, max(q.Requests-used, 0), resets
					quotas[rt.quotaScope] = qu
					quotaOrder = append(quotaOrder, rt.quotaScope)
				}
				qu.Routes = append(qu.Routes, rt.Match)
			}
		}
		for _, k := range rateOrder {
			au.RateLimits = append(au.RateLimits, *rates[k])
		}
		for _, k := range quotaOrder {
			au.Quotas = append(au.Quotas, *quotas[k])
		}
		u.APIs = append(u.APIs, au)
	}
	return u, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ServeUsage answers GET /v1/usage on the http listener: a consumer, authenticated with one
// of its API keys (in X-Api-Key or Authorization: Bearer), sees its own usage and quotas.
func (g *Gateway) ServeUsage(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			key = strings.TrimSpace(v)
		}
	}
	if key == "" {
		w.Header().Set("WWW-Authenticate", `ApiKey header="X-Api-Key"`)
		problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "send one of your API keys in X-Api-Key")
		return
	}
	e := g.lookupKey(key)
	if e == nil || e.key.Revoked || g.opts.Revocations.revoked(e.key.hash) || (!e.key.Expires.IsZero() && time.Now().After(e.key.Expires)) {
		w.Header().Set("WWW-Authenticate", `ApiKey header="X-Api-Key"`)
		problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "the API key is not valid")
		return
	}
	g.writeUsage(w, r, e.consumer.name)
}

// writeUsage answers a consumer's usage as JSON.
func (g *Gateway) writeUsage(w http.ResponseWriter, r *http.Request, name string) {
	u, err := g.Usage(r.Context(), name)
	if errors.Is(err, ErrNoConsumer) {
		problem.Write(w, r, http.StatusNotFound, "not-found", "no Consumer "+name+" is defined")
		return
	}
	data, err := json.Marshal(u)
	if err != nil {
		problem.Write(w, r, http.StatusInternalServerError, "internal", "the usage could not be encoded")
		return
	}
	w.Header()["Content-Type"] = jsonType
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

// ConsumerNames lists the consumers, sorted.
func (g *Gateway) ConsumerNames() []string {
	names := make([]string, 0, len(g.consumers))
	for n := range g.consumers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// apiNamed finds an API by name.
func (g *Gateway) apiNamed(name string) *api {
	i := slices.IndexFunc(g.apis, func(a *api) bool { return a.name == name })
	if i < 0 {
		return nil
	}
	return g.apis[i]
}
