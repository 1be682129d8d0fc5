package gateway

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/causeway/causeway/catalog"
	"github.com/causeway/causeway/config"
)

// Policies are the rules a request passes before its route runs. An API's policies apply to
// every route; a route's policies replace the API's one by one (a route that sets rateLimit
// has its own bucket and keeps the API's auth).
type Policies struct {
	// Auth says who may call.
	Auth *Auth `yaml:"auth" doc:"Who may call: none (said explicitly), apiKey (a Consumer's key) or jwt (a bearer token). Every API says which."`
	// Scopes are required of the caller.
	Scopes []string `yaml:"scopes" doc:"Scopes the caller must have: a Consumer's scopes, or a JWT's scope/scp claim; 403 when one is missing."`
	// RateLimit bounds the rate of requests per caller.
	RateLimit *RateLimit `yaml:"rateLimit" doc:"A token bucket per caller, shared by every node through the bus; over it, 429 with Retry-After. Declared on the API, one bucket serves all its routes; on a route, the route has its own."`
	// Quota bounds the requests per caller per day or month.
	Quota *Quota `yaml:"quota" doc:"Requests per caller per calendar day or month (UTC), persisted on the bus and shared by every node; over it, 429."`
	// IP allows and denies client addresses.
	IP *IPPolicy `yaml:"ip" doc:"Client address allow and deny lists (CIDR)."`
	// CORS answers browsers' cross-origin checks.
	CORS *CORS `yaml:"cors" doc:"Cross-origin resource sharing for browser clients."`
	// Cache keeps GET answers.
	Cache *Cache `yaml:"cache" doc:"Keep successful GET answers for a while, per caller and URL."`
	// Validate checks request bodies.
	Validate *Validation `yaml:"validate" doc:"Check request bodies against a JSON Schema and bound their nesting and size."`
	// Headers says which client headers reach the backend.
	Headers *HeaderPolicy `yaml:"headers" doc:"Which of the client's headers the backend sees. By default none but Idempotency-Key and the trace context, and never credentials."`
}

// Auth is an authentication policy: exactly one of its fields.
type Auth struct {
	// None says the API is open, on purpose.
	None bool `yaml:"none" doc:"No authentication: anyone may call. Written out so an open API is a decision, not an omission."`
	// APIKey authenticates Consumers by key.
	APIKey *APIKeyAuth `yaml:"apiKey" doc:"A Consumer's API key, in a header or a query parameter."`
	// JWT authenticates bearer tokens.
	JWT *JWTAuth `yaml:"jwt" doc:"A JSON Web Token in Authorization: Bearer, checked against an issuer's key set."`
}

// APIKeyAuth reads a Consumer's key from the request.
type APIKeyAuth struct {
	// Header carries the key.
	Header string `yaml:"header" default:"X-Api-Key" doc:"The header that carries the key."`
	// Query carries the key when the header is absent.
	Query string `yaml:"query" doc:"A query parameter that may carry the key instead, for clients that cannot set headers; keys in URLs end up in logs, so prefer the header."`
}

// JWTAuth checks bearer tokens.
type JWTAuth struct {
	// Issuer is the required iss.
	Issuer string `yaml:"issuer" required:"true" doc:"The issuer the token's iss claim must name." example:"https://login.example.com/"`
	// Audiences are accepted aud values.
	Audiences []string `yaml:"audiences" required:"true" doc:"The token's aud claim must hold one of these."`
	// JWKSURL is the issuer's key set.
	JWKSURL string `yaml:"jwksURL" required:"true" doc:"The issuer's JSON Web Key Set; fetched when first needed, kept for its Cache-Control max-age (5 minutes otherwise) and fetched again when a token names a key it does not hold (key rotation)." example:"https://login.example.com/.well-known/jwks.json"`
	// ClockSkew tolerates clocks that differ.
	ClockSkew time.Duration `yaml:"clockSkew" default:"30s" doc:"How far exp, nbf and iat may be off."`
	// Claims are required claim values.
	Claims map[string]string `yaml:"claims" doc:"Claims the token must carry with these values (strings, or arrays holding the value)."`
	// CacheSize bounds the verified-token cache.
	CacheSize int `yaml:"cacheSize" default:"10000" doc:"How many verified tokens are kept, so that a client's next request with the same token skips the signature check (tens of microseconds); a kept token is still refused once it expires or its key leaves the issuer's key set. A quarter as many refusals are kept apart, so that a token sent again after it was refused for good (malformed, expired, wrong issuer or audience, a signature the keys in use refuse) is refused without a check. 0 turns both caches off."`
	// ConsumerClaim names the caller.
	ConsumerClaim string `yaml:"consumerClaim" default:"sub" doc:"The claim that names the caller, for rate limits and quotas; a Consumer listing that value in its subjects is that consumer."`
}

// RateLimit is a token bucket per caller.
type RateLimit struct {
	// Requests per Per.
	Requests int `yaml:"requests" required:"true" doc:"Requests allowed per period, on average."`
	// Per is the period.
	Per time.Duration `yaml:"per" default:"1s" doc:"The period requests counts over."`
	// Burst is the bucket's size.
	Burst int `yaml:"burst" doc:"How many requests may come at once; requests when not set."`
	// By is what a bucket belongs to.
	By string `yaml:"by" default:"consumer" doc:"consumer: a bucket per authenticated caller (the client address for open APIs); ip: a bucket per client address."`
}

// Quota bounds requests per calendar period.
type Quota struct {
	// Requests per period.
	Requests int64 `yaml:"requests" required:"true" doc:"Requests allowed per period."`
	// Per is day or month.
	Per string `yaml:"per" default:"day" doc:"day or month, in UTC."`
}

// IPPolicy filters client addresses.
type IPPolicy struct {
	// Allow lists the addresses allowed; empty allows all.
	Allow []string `yaml:"allow" doc:"Addresses (CIDR or single) allowed; when set, every other address gets 403."`
	// Deny lists addresses refused.
	Deny []string `yaml:"deny" doc:"Addresses (CIDR or single) refused with 403, even when allowed."`
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trustedProxies" doc:"Proxies (CIDR) in front of Causeway whose X-Forwarded-For names the client; from anyone else the header is ignored."`

	allow, deny, trusted []netip.Prefix
}

// CORS is cross-origin resource sharing.
type CORS struct {
	// Origins allowed.
	Origins []string `yaml:"origins" required:"true" doc:"Origins allowed (scheme://host[:port]), or * for any (not with credentials)."`
	// Headers the browser may send.
	Headers []string `yaml:"headers" doc:"Request headers the browser may send beyond the simple ones."`
	// Expose lists headers the browser may read.
	Expose []string `yaml:"expose" doc:"Answer headers scripts may read beyond the simple ones."`
	// Credentials allows cookies and authorization.
	Credentials bool `yaml:"credentials" doc:"Whether browsers may send credentials."`
	// MaxAge is how long a preflight answer may be kept.
	MaxAge time.Duration `yaml:"maxAge" default:"10m" doc:"How long browsers may keep a preflight answer."`
}

// Cache keeps GET answers.
type Cache struct {
	// TTL is how long an answer is kept.
	TTL time.Duration `yaml:"ttl" required:"true" doc:"How long an answer is kept." example:"30s"`
	// MaxEntries bounds the cache.
	MaxEntries int `yaml:"maxEntries" default:"10000" doc:"The most answers kept per route; the oldest go first."`
}

// Validation checks request bodies.
type Validation struct {
	// MessageType names a type whose schema the body must match.
	MessageType string `yaml:"messageType" doc:"A MessageType whose JSON Schema the body must match."`
	// Schema is an inline schema.
	Schema config.JSON `yaml:"schema" doc:"An inline JSON Schema the body must match; unknown fields are refused where it says additionalProperties: false."`
	// MaxDepth bounds nesting.
	MaxDepth int `yaml:"maxDepth" default:"32" doc:"The deepest nesting of arrays and objects a body may have."`
	// MaxElements bounds the count of values.
	MaxElements int `yaml:"maxElements" default:"10000" doc:"The most values (members and items, counted through the whole body) a body may have."`

	typ *catalog.Type
}

// HeaderPolicy chooses the client headers that reach the backend.
type HeaderPolicy struct {
	// Forward lists client headers to pass on.
	Forward []string `yaml:"forward" doc:"Client headers passed on to the backend (hop-by-hop headers never are)."`
	// ForwardCredentials passes Authorization, Cookie and the API key header on.
	ForwardCredentials bool `yaml:"forwardCredentials" doc:"Pass the client's Authorization, Cookie and API key headers on to the backend. Off by default: a backend authenticates the gateway, not the client."`
}

// merge returns the policies of a route: each of its own, else the API's.
func (p *Policies) merge(route *Policies) *Policies {
	if route == nil {
		return p
	}
	out := *p
	if route.Auth != nil {
		out.Auth = route.Auth
	}
	if route.Scopes != nil {
		out.Scopes = route.Scopes
	}
	if route.RateLimit != nil {
		out.RateLimit = route.RateLimit
	}
	if route.Quota != nil {
		out.Quota = route.Quota
	}
	if route.IP != nil {
		out.IP = route.IP
	}
	if route.CORS != nil {
		out.CORS = route.CORS
	}
	if route.Cache != nil {
		out.Cache = route.Cache
	}
	if route.Validate != nil {
		out.Validate = route.Validate
	}
	if route.Headers != nil {
		out.Headers = route.Headers
	}
	return &out
}

// hopByHop are the headers of one connection, never passed on (RFC 9110 section 7.6.1).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// provision checks a policy set; at names where it is.
func (p *Policies) provision(ctx *config.Context, at string) {
	if at != "" {
		at += "."
	}
	if a := p.Auth; a != nil {
		n := 0
		if a.None {
			n++
		}
		if a.APIKey != nil {
			n++
			if a.APIKey.Header == "" && a.APIKey.Query == "" {
				ctx.Errorf(at+"auth.apiKey", "give the header or the query parameter that carries the key")
			}
		}
		if j := a.JWT; j != nil {
			n++
			if u, err := url.Parse(j.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				ctx.Errorf(at+"auth.jwt.jwksURL", "%q is not an http(s) URL", j.JWKSURL)
			}
			if len(j.Audiences) == 0 {
				ctx.Errorf(at+"auth.jwt.audiences", "name at least one audience")
			}
			if j.CacheSize < 0 {
				ctx.Errorf(at+"auth.jwt.cacheSize", "a count of tokens, or 0 to turn the cache off")
			}
		}
		if n != 1 {
			ctx.Errorf(at+"auth", "give exactly one of none: true, apiKey and jwt")
		}
	}
	if r := p.RateLimit; r != nil {
		if r.Requests <= 0 {
			ctx.Errorf(at+"rateLimit.requests", "a positive count")
		}
		if r.Per <= 0 {
			ctx.Errorf(at+"rateLimit.per", "a positive duration")
		}
		if r.Burst < 0 {
			ctx.Errorf(at+"rateLimit.burst", "a positive count")
		}
		if r.By != "consumer" && r.By != "ip" {
			ctx.Errorf(at+"rateLimit.by", "%q: consumer or ip", r.By)
		}
	}
	if q := p.Quota; q != nil {
		if q.Requests <= 0 {
			ctx.Errorf(at+"quota.requests", "a positive count")
		}
		if q.Per != "day" && q.Per != "month" {
			ctx.Errorf(at+"quota.per", "%q: day or month", q.Per)
		}
	}
	if ip := p.IP; ip != nil {
		ip.allow = prefixes(ctx, at+"ip.allow", ip.Allow)
		ip.deny = prefixes(ctx, at+"ip.deny", ip.Deny)
		ip.trusted = prefixes(ctx, at+"ip.trustedProxies", ip.TrustedProxies)
	}
	if c := p.CORS; c != nil {
		for _, o := range c.Origins {
			if o == "*" {
				if c.Credentials {
					ctx.Errorf(at+"cors.origins", "* cannot go with credentials: true; list the origins")
				}
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				ctx.Errorf(at+"cors.origins", "%q is not an origin (scheme://host[:port])", o)
			}
		}
	}
	if c := p.Cache; c != nil && c.TTL <= 0 {
		ctx.Errorf(at+"cache.ttl", "a positive duration")
	}
	if v := p.Validate; v != nil {
		if v.MessageType != "" && !v.Schema.IsZero() {
			ctx.Errorf(at+"validate", "give messageType or schema, not both")
		}
		if v.MaxDepth <= 0 || v.MaxElements <= 0 {
			ctx.Errorf(at+"validate", "maxDepth and maxElements are positive")
		}
		if !v.Schema.IsZero() {
			v.typ = catalog.CompileInline(ctx, at+"validate.schema", ctx.Name()+"."+at, v.Schema)
		}
	}
	if h := p.Headers; h != nil {
		for _, name := range h.Forward {
			if slices.ContainsFunc(hopByHop, func(s string) bool { return strings.EqualFold(s, name) }) {
				ctx.Errorf(at+"headers.forward", "%s is a hop-by-hop header, which is never passed on", name)
			}
		}
	}
}

// prefixes parses CIDR or single addresses.
func prefixes(ctx *config.Context, at string, list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			ctx.Errorf(at, "%q is neither an address nor a CIDR prefix", s)
			continue
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out
}

// burst is the bucket's size.
func (r *RateLimit) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Requests
}

// String describes the limit for headers and logs.
func (r *RateLimit) String() string {
	return fmt.Sprintf("%d per %s", r.Requests, r.Per)
}
