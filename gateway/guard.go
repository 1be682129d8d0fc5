package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/causeway/causeway/problem"
)

// caller is who made a request, as the policies found out.
type caller struct {
	// name identifies the caller for limits and metrics: a Consumer's name, a token's
	// subject, or the client address.
	name string
	// consumer is the Consumer, when the caller is one.
	consumer *consumer
	// scopes are the caller's scopes.
	scopes []string
	// addr is the client's address.
	addr netip.Addr
}

// consumer is a Consumer as the gateway uses it.
type consumer struct {
	name string
	spec *ConsumerSpec
	apis map[string]bool // nil: all
}

// keyEntry is an API key by hash.
type keyEntry struct {
	consumer *consumer
	key      *ConsumerKey
}

// clientAddr is the client's address: the peer's, or, when the peer is a trusted proxy, the
// last address in X-Forwarded-For that is not a trusted proxy.
func clientAddr(r *http.Request, ip *IPPolicy) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, _ := netip.ParseAddr(host)
	return resolveClient(addr.Unmap(), ip, func() []string { return r.Header.Values("X-Forwarded-For") })
}

// resolveClient is clientAddr for a peer's address, with forwardedFor giving the request's
// X-Forwarded-For fields when the peer is a trusted proxy; the fast lane reads them from
// its own request.
func resolveClient(addr netip.Addr, ip *IPPolicy, forwardedFor func() []string) netip.Addr {
	if ip == nil || len(ip.trusted) == 0 || !contains(ip.trusted, addr) {
		return addr
	}
	hops := strings.Split(strings.Join(forwardedFor(), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		a = a.Unmap()
		if !contains(ip.trusted, a) {
			return a
		}
		addr = a
	}
	return addr
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// guard applies a route's policies before it runs. It answers the request itself and
// returns false when a policy refuses it.
func (a *api) guard(w http.ResponseWriter, r *http.Request, rt *Route) (*caller, bool) {
	pol := rt.policies
	c := &caller{addr: clientAddr(r, pol.IP)}
	if ip := pol.IP; ip != nil {
		if contains(ip.deny, c.addr) || (len(ip.allow) > 0 && !contains(ip.allow, c.addr)) {
			a.g.refused(a, rt, "ip")
			problem.Write(w, r, http.StatusForbidden, "forbidden", "requests from this address are not allowed")
			return nil, false
		}
	}
	if pol.CORS != nil {
		pol.CORS.annotate(w.Header(), r.Header.Get("Origin"))
	}
	if !a.authenticate(w, r, rt, c) {
		return nil, false
	}
	for _, s := range pol.Scopes {
		if !slices.Contains(c.scopes, s) {
			a.g.refused(a, rt, "scope")
			problem.Write(w, r, http.StatusForbidden, "insufficient-scope", "this route needs the scope "+s)
			return nil, false
		}
	}
	return c, a.limit(w, r, rt, c)
}

// authenticate finds out who the caller is, per the route's auth policy.
func (a *api) authenticate(w http.ResponseWriter, r *http.Request, rt *Route, c *caller) bool {
	auth := rt.policies.Auth
	switch {
	case auth.APIKey != nil:
		key := ""
		if h := auth.APIKey.Header; h != "" {
			key = r.Header.Get(h)
		}
		if key == "" && auth.APIKey.Query != "" {
			key = r.URL.Query().Get(auth.APIKey.Query)
		}
		if key == "" {
			a.g.refused(a, rt, "no-key")
			w.Header().Set("WWW-Authenticate", `ApiKey header="`+auth.APIKey.Header+`"`)
			problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "an API key is required")
			return false
		}
		e, why := a.g.checkKey(key)
		switch why {
		case "wrong-key":
			a.g.refused(a, rt, why)
			problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "the API key is not valid")
			return false
		case "revoked-key":
			a.g.refused(a, rt, why)
			problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "the API key has been revoked")
			return false
		case "expired-key":
			a.g.refused(a, rt, why)
			problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "the API key has expired")
			return false
		}
		c.consumer, c.name, c.scopes = e.consumer, e.consumer.name, e.consumer.spec.Scopes
	case auth.JWT != nil:
		if !a.verifyToken(w, r, rt, c) {
			return false
		}
	default:
		c.name = c.addr.String()
		return true
	}
	if c.consumer != nil && c.consumer.apis != nil && !c.consumer.apis[a.name] {
		a.g.refused(a, rt, "api-not-allowed")
		problem.Write(w, r, http.StatusForbidden, "forbidden", "this consumer may not call this API")
		return false
	}
	return true
}

// checkKey finds the Consumer key a request presents, or says why it is refused:
// wrong-key, revoked-key or expired-key.
func (g *Gateway) checkKey(key string) (*keyEntry, string) {
	e := g.lookupKey(key)
	switch {
	case e == nil:
		return nil, "wrong-key"
	case e.key.Revoked || g.opts.Revocations.revoked(e.key.hash):
		return nil, "revoked-key"
	case !e.key.Expires.IsZero() && time.Now().After(e.key.Expires):
		return nil, "expired-key"
	}
	return e, ""
}

// lookupKey finds a key by its hash. The map lookup compares hashes, not keys, so it gives
// nothing away by timing about a key; the final compare is constant-time all the same.
func (g *Gateway) lookupKey(key string) *keyEntry {
	sum := sha256.Sum256([]byte(key))
	e := g.keys[sum]
	if e == nil || subtle.ConstantTimeCompare(e.key.hash[:], sum[:]) != 1 {
		return nil
	}
	return e
}

// limit applies the rate limit and the quota. It answers the request itself and returns
// false when one refuses it.
func (a *api) limit(w http.ResponseWriter, r *http.Request, rt *Route, c *caller) bool {
	o := a.checkLimits(r.Context(), rt, c)
	if o.hasRate {
		setRateHeaders(w.Header(), o.rate)
	}
	if o.refusal != nil {
		w.Header().Set("Retry-After", o.retryAfter)
		o.refusal.Write(w, r)
		return false
	}
	return true
}

// limitOutcome is what the rate limit and the quota decided about a request.
type limitOutcome struct {
	// rate is the decision the RateLimit header fields tell of, when hasRate. It is held
	// by value: the outcome is made for every request of a limited route.
	rate    decision
	hasRate bool
	// refusal, when set, is the answer to a request a limit refused, with Retry-After.
	refusal    *problem.Details
	retryAfter string
}

// checkLimits takes the request from the caller's rate limit and quota. Their state is on
// the bus; when the bus cannot be reached the request is let through (and logged): an
// unreachable limit store must not take every API down with it.
func (a *api) checkLimits(ctx context.Context, rt *Route, c *caller) limitOutcome {
	var o limitOutcome
	pol := rt.policies
	rl, q := pol.RateLimit, pol.Quota
	if c.consumer != nil {
		if c.consumer.spec.RateLimit != nil && rl != nil {
			rl = c.consumer.spec.RateLimit
		}
		if c.consumer.spec.Quota != nil && q != nil {
			q = c.consumer.spec.Quota
		}
	}
	if rl != nil {
		var key string
		if rl.By == "ip" {
			key = bucketKey("r", rt.rateScope, c.addr.String())
		} else {
			key = a.g.limits.key("r", rt.rateScope, c)
		}
		d, err := a.g.limits.rate(ctx, key, rl)
		if err != nil {
			a.g.limitFailed(a, rt, err)
		} else {
			o.rate, o.hasRate = d, true
			if !d.ok {
				a.g.refused(a, rt, "rate-limit")
				o.retryAfter = seconds(d.retryAfter)
				o.refusal = problem.New(http.StatusTooManyRequests, "rate-limited", "too many requests; the limit is "+rl.String())
				return o
			}
		}
	}
	if q != nil {
		d, err := a.g.limits.quota(ctx, a.g.limits.key("q", rt.quotaScope, c), q)
		if err != nil {
			a.g.limitFailed(a, rt, err)
			return o
		}
		if !d.ok {
			a.g.refused(a, rt, "quota")
			o.retryAfter = seconds(d.retryAfter)
			o.refusal = problem.New(http.StatusTooManyRequests, "quota-exceeded",
				"the quota of "+strconv.FormatInt(q.Requests, 10)+" requests per "+q.Per+" is used up")
			return o
		}
		if rl == nil {
			o.rate, o.hasRate = d, true
		}
	}
	return o
}

// setRateHeaders says where the caller stands, in the RateLimit header fields.
func setRateHeaders(h http.Header, d decision) {
	h["Ratelimit-Limit"] = []string{strconv.FormatInt(d.limit, 10)}
	h["Ratelimit-Remaining"] = []string{strconv.FormatInt(max(d.remaining, 0), 10)}
	h["Ratelimit-Reset"] = []string{seconds(d.reset)}
}

// seconds rounds a duration up to whole seconds, at least 1 when it is positive.
func seconds(d time.Duration) string { return string(appendSeconds(nil, d)) }

// appendSeconds appends seconds(d) to b.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d <= 0 {
		return append(b, '0')
	}
	return strconv.AppendInt(b, int64((d+time.Second-1)/time.Second), 10)
}

// limitFailed records a limit that could not be checked.
func (g *Gateway) limitFailed(a *api, rt *Route, err error) {
	g.limitErrors.WithLabelValues(a.name).Inc()
	g.log.Warn("rate limit or quota could not be checked; the request is let through", "api", a.name, "route", rt.Match, "err", err)
}

// refused counts a request a policy refused.
func (g *Gateway) refused(a *api, rt *Route, why string) {
	g.refusals.WithLabelValues(a.name, rt.Match, why).Inc()
}

// annotate adds the CORS answer headers for an origin the policy allows.
func (c *CORS) annotate(h http.Header, origin string) bool {
	if origin == "" {
		return false
	}
	h.Add("Vary", "Origin")
	allowed := ""
	for _, o := range c.Origins {
		if o == "*" && !c.Credentials {
			allowed = "*"
			break
		}
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			allowed = origin
			break
		}
	}
	if allowed == "" {
		return false
	}
	h.Set("Access-Control-Allow-Origin", allowed)
	if c.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.Expose) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.Expose, ", "))
	}
	return true
}

// preflight answers a browser's OPTIONS check for a path whose routes allow methods.
func (c *CORS) preflight(w http.ResponseWriter, r *http.Request, methods []string) {
	h := w.Header()
	if !c.annotate(h, r.Header.Get("Origin")) {
		problem.Write(w, r, http.StatusForbidden, "forbidden", "this origin may not call this API")
		return
	}
	want := r.Header.Get("Access-Control-Request-Method")
	if want != "" && !slices.Contains(methods, want) {
		problem.Write(w, r, http.StatusMethodNotAllowed, "method-not-allowed", want+" is not allowed here")
		return
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	if len(c.Headers) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(c.Headers, ", "))
	}
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge.Seconds())))
	w.WriteHeader(http.StatusNoContent)
}

// verifyCtx bounds a key set fetch made for one request.
func verifyCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 5*time.Second)
}
