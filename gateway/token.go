package gateway

import (
	"bytes"
	"errors"
	"net/http"
	"strings"

	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/gateway/jwt"
	"github.com/causeway/causeway/problem"
	"github.com/prometheus/client_golang/prometheus"
)

// verifiers makes a token verifier for every jwt policy of the APIs. Each fetches its key set
// when it is first needed, not here, so a node starts while an issuer is unreachable.
func (g *Gateway) verifiers() error {
	g.tokens = map[*JWTAuth]*jwt.Verifier{}
	add := func(p *Policies) error {
		if p == nil || p.Auth == nil || p.Auth.JWT == nil || g.tokens[p.Auth.JWT] != nil {
			return nil
		}
		j := p.Auth.JWT
		size := j.CacheSize
		if size == 0 {
			size = -1 // off, as the definition says; jwt.Config reads 0 as its default
		}
		v, err := jwt.New(jwt.Config{Issuer: j.Issuer, Audiences: j.Audiences, JWKSURL: j.JWKSURL, ClockSkew: j.ClockSkew, CacheSize: size})
		if err != nil {
			return err
		}
		g.tokens[j] = v
		return nil
	}
	for _, a := range g.apis {
		if err := add(a.spec.Policies); err != nil {
			return err
		}
		for _, rt := range a.spec.Routes {
			if err := add(rt.Policies); err != nil {
				return err
			}
		}
	}
	return nil
}

// verifyToken checks the request's bearer token and finds out who the caller is. Answers
// say what is wrong with the token in the words of RFC 6750, never echoing the token.
func (a *api) verifyToken(w http.ResponseWriter, r *http.Request, rt *Route, c *caller) bool {
	pol := rt.policies.Auth.JWT
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		a.g.refused(a, rt, "no-token")
		w.Header().Set("WWW-Authenticate", `Bearer`)
		problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "a bearer token is required")
		return false
	}
	ctx, cancel := verifyCtx(r)
	defer cancel()
	claims, err := a.g.tokens[pol].Verify(ctx, token)
	if errors.Is(err, jwt.ErrKeysUnavailable) {
		a.g.log.Error("the token issuer's key set could not be fetched", "api", a.name, "issuer", pol.Issuer, "err", err)
		w.Header().Set("Retry-After", "5")
		problem.Write(w, r, http.StatusServiceUnavailable, "unavailable", "tokens cannot be checked right now; try again later")
		return false
	}
	if err != nil {
		a.g.refused(a, rt, "bad-token")
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		problem.Write(w, r, http.StatusUnauthorized, "unauthorized", "the bearer token is not valid: "+err.Error())
		return false
	}
	if detail := tokenCaller(a.g, pol, claims, c); detail != "" {
		a.g.refused(a, rt, "claims")
		problem.Write(w, r, http.StatusForbidden, "forbidden", detail)
		return false
	}
	return true
}

// bearer is the token of an Authorization header's value, if it is a bearer token. The
// fast lane reads the header the same way (bearerBytes).
func bearer(value string) (string, bool) {
	scheme, token, _ := strings.Cut(value, " ")
	token = strings.TrimSpace(token)
	return token, strings.EqualFold(scheme, "Bearer") && token != ""
}

// bearerBytes is bearer for the fast lane's header, without copying it.
func bearerBytes(value []byte) ([]byte, bool) {
	scheme, token, _ := bytes.Cut(value, []byte(" "))
	token = bytes.TrimSpace(token)
	return token, bytes.EqualFold(scheme, []byte("Bearer")) && len(token) > 0
}

// tokenCaller finds out who a verified token's holder is, for the policy pol: its scopes,
// and the Consumer its consumer claim names, if any. It returns what refuses the token
// (the detail of a 403 answer), or "".
func tokenCaller(g *Gateway, pol *JWTAuth, claims *jwt.Claims, c *caller) string {
	if claim, ok := claims.Match(pol.Claims); !ok {
		return "the token's claim " + claim + " does not allow this API"
	}
	who := ""
	if v, ok := claims.Raw[pol.ConsumerClaim]; ok {
		who = expr.ToString(v)
	}
	if who == "" {
		return "the token names no caller in its " + pol.ConsumerClaim + " claim"
	}
	c.scopes = claims.Scopes
	if cons := g.subjects[who]; cons != nil {
		c.consumer, c.name = cons, cons.name
		// The claims are shared by every request with this token: a copy gets the
		// consumer's scopes.
		c.scopes = append(c.scopes[:len(c.scopes):len(c.scopes)], cons.spec.Scopes...)
		return ""
	}
	c.name = "jwt:" + who
	return ""
}

// tokenStats exports what the token verifiers count, summed by issuer: APIs and routes
// with policies of their own may check tokens of one issuer with several verifiers.
type tokenStats struct {
	g                                         *Gateway
	hits, misses, cached, fetches, fetchFails *prometheus.Desc
	refusedHits, refused                      *prometheus.Desc
}

func newTokenStats(g *Gateway) *tokenStats {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"issuer"}, nil)
	}
	return &tokenStats{g: g,
		hits:        d("causeway_gateway_jwt_cache_hits_total", "Bearer tokens answered from the verified-token cache, without a signature check, by issuer."),
		misses:      d("causeway_gateway_jwt_cache_misses_total", "Bearer tokens checked in full with the cache on (first seen, forgotten, expired, or their key left the key set), by issuer."),
		cached:      d("causeway_gateway_jwt_cached_tokens", "Verified tokens the cache holds, by issuer."),
		fetches:     d("causeway_gateway_jwks_fetches_total", "Fetches of an issuer's key set (JWKS), successful or not."),
		fetchFails:  d("causeway_gateway_jwks_fetch_errors_total", "Failed fetches of an issuer's key set: network errors, other statuses than 200, bodies that are not a usable key set. The last keys fetched stay in use meanwhile."),
		refusedHits: d("causeway_gateway_jwt_refused_cache_hits_total", "Bearer tokens refused again without a check, from the refused-token cache (malformed, expired, wrong issuer or audience, or a signature the key set in use refused), by issuer."),
		refused:     d("causeway_gateway_jwt_refused_tokens", "Refusals the refused-token cache holds, by issuer."),
	}
}

// Describe implements prometheus.Collector.
func (s *tokenStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.hits, s.misses, s.cached, s.fetches, s.fetchFails, s.refusedHits, s.refused} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *tokenStats) Collect(ch chan<- prometheus.Metric) {
	sums := map[string]*jwt.Stats{}
	for pol, v := range s.g.tokens {
		st := v.Stats()
		sum := sums[pol.Issuer]
		if sum == nil {
			sum = &jwt.Stats{}
			sums[pol.Issuer] = sum
		}
		sum.CacheHits += st.CacheHits
		sum.CacheMisses += st.CacheMisses
		sum.CachedTokens += st.CachedTokens
		sum.Fetches += st.Fetches
		sum.FetchErrors += st.FetchErrors
		sum.RefusedHits += st.RefusedHits
		sum.RefusedTokens += st.RefusedTokens
	}
	for iss, st := range sums {
		ch <- prometheus.MustNewConstMetric(s.hits, prometheus.CounterValue, float64(st.CacheHits), iss)
		ch <- prometheus.MustNewConstMetric(s.misses, prometheus.CounterValue, float64(st.CacheMisses), iss)
		ch <- prometheus.MustNewConstMetric(s.cached, prometheus.GaugeValue, float64(st.CachedTokens), iss)
		ch <- prometheus.MustNewConstMetric(s.fetches, prometheus.CounterValue, float64(st.Fetches), iss)
		ch <- prometheus.MustNewConstMetric(s.fetchFails, prometheus.CounterValue, float64(st.FetchErrors), iss)
		ch <- prometheus.MustNewConstMetric(s.refusedHits, prometheus.CounterValue, float64(st.RefusedHits), iss)
		ch <- prometheus.MustNewConstMetric(s.refused, prometheus.GaugeValue, float64(st.RefusedTokens), iss)
	}
}
