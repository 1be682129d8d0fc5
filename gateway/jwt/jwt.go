// Package jwt verifies JWT bearer tokens for the API gateway's jwt
// authentication policy.
//
// A Verifier checks a token's signature against the public keys an identity
// provider publishes as a JSON Web Key Set (JWKS), then checks the issuer,
// the audience and the token's validity period, and hands back the claims so
// that a policy can demand scopes or particular claim values. The key set is
// fetched on first use, cached, refreshed in the background when it goes
// stale, refetched when a token names a key the cache does not know (which is
// how a provider's key rotation shows up), and kept in use while the provider
// cannot be reached, so that a short outage of the identity provider does not
// turn into an outage of every API behind the gateway.
//
// Only asymmetric algorithms are accepted. A verifier that trusted HMAC
// algorithms next to a public key set could be fooled into using a public key
// as an HMAC secret, so HS256, HS384, HS512 and "none" are refused always.
//
// Errors returned by Verify wrap one of the sentinel errors below, so that a
// caller can pick its answer with errors.Is. Their messages never repeat the
// token, any part of it or any key material, because they end up in 401
// answers and logs; they name at most the claim at fault and the expected
// issuer or audience from the configuration.
package jwt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// The sentinel errors. Every error Verify returns matches exactly one of them
// with errors.Is.
var (
	// ErrMalformed means the token is not a well-formed signed JWT: wrong
	// number of segments, bad base64url, bad JSON, a missing alg header, a
	// registered claim of the wrong type, or a critical header extension.
	ErrMalformed = errors.New("jwt: malformed token")
	// ErrAlgorithm means the token's alg is not allowed, either by the
	// configuration or by the key it names.
	ErrAlgorithm = errors.New("jwt: signing algorithm not allowed")
	// ErrUnknownKey means no key in the key set fits the token, even after a
	// refetch of the set.
	ErrUnknownKey = errors.New("jwt: unknown signing key")
	// ErrSignature means the signature does not verify with the named key.
	ErrSignature = errors.New("jwt: invalid signature")
	// ErrExpired means the token is past its exp claim plus the clock skew,
	// or has no exp claim at all: a token without an end is never accepted.
	ErrExpired = errors.New("jwt: token expired")
	// ErrNotYetValid means the token's nbf or iat claim lies further in the
	// future than the clock skew allows.
	ErrNotYetValid = errors.New("jwt: token not yet valid")
	// ErrIssuer means the iss claim is missing or not the configured issuer.
	ErrIssuer = errors.New("jwt: wrong issuer")
	// ErrAudience means the aud claim is missing or names none of the
	// configured audiences.
	ErrAudience = errors.New("jwt: wrong audience")
	// ErrKeysUnavailable means the key set could not be fetched and no keys
	// are cached. Unlike the others it is the verifier's fault rather than
	// the token's, so a caller may prefer to answer it with 503.
	ErrKeysUnavailable = errors.New("jwt: signing keys unavailable")
)

// Defaults for Config fields left zero, and the bound on Cache-Control.
const (
	// DefaultClockSkew is the default tolerance for exp, nbf and iat.
	DefaultClockSkew = 30 * time.Second
	// DefaultRefresh is how long fetched keys stay fresh when the response
	// says nothing about it.
	DefaultRefresh = 5 * time.Minute
	// DefaultMinRefresh is the default least time between two fetches.
	DefaultMinRefresh = 10 * time.Second
	// MaxRefresh bounds the freshness a JWKS response may claim through
	// Cache-Control, so that a rotated-out key is dropped within a day.
	MaxRefresh = 24 * time.Hour
)

// maxTokenLen bounds the tokens Verify looks at. Real tokens stay in the low
// kilobytes even with many group claims; anything far larger is refused
// before any base64 or JSON decoding is spent on it.
const maxTokenLen = 64 << 10

// defaultAlgorithms are the asymmetric JWS algorithms of RFC 7518 and 8037.
var defaultAlgorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// Config configures a Verifier.
type Config struct {
	// Issuer is required; the token's iss claim must equal it.
	Issuer string
	// Audiences is required and must hold at least one name; the token's aud
	// claim (a string or an array) must contain one of them.
	Audiences []string
	// JWKSURL is the http or https URL of the issuer's key set; it is
	// required. Use https outside tests: the keys decide who gets in.
	JWKSURL string
	// ClockSkew is the tolerance applied to exp, nbf and iat, for clocks
	// that disagree a little. Zero means DefaultClockSkew.
	ClockSkew time.Duration
	// Algorithms lists the allowed alg values; empty means all the
	// asymmetric ones (RS*, PS*, ES*, EdDSA). HS* and none are refused here
	// because, next to a public key set, they would allow algorithm
	// confusion.
	Algorithms []string
	// Refresh is how long fetched keys stay fresh when the JWKS response
	// gives no Cache-Control max-age. Zero means DefaultRefresh. A max-age,
	// when given, wins, bounded between MinRefresh and MaxRefresh.
	Refresh time.Duration
	// MinRefresh is the least time between two fetches of the key set,
	// including refetches for unknown key ids, so that tokens with made-up
	// key ids cannot turn the gateway against the identity provider. Zero
	// means DefaultMinRefresh.
	MinRefresh time.Duration
	// Client fetches the key set. Nil means a client with a 5 second timeout
	// that follows redirects only within the same host.
	Client *http.Client
	// CacheSize bounds the verified-token cache: how many tokens that
	// passed every check are kept, so that a client's next request with the
	// same token skips the signature check (see tokenCache). Zero means
	// DefaultCacheSize; a negative size turns the cache off.
	CacheSize int
	// Now tells the time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Verifier verifies tokens of one issuer. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	allowed []string
	parser  *gojwt.Parser

	// set is read without a lock on every Verify; fetches replace it whole.
	set atomic.Pointer[keySet]

	// nextFetch is the earliest time, in Unix nanoseconds, that MinRefresh
	// lets another fetch start. Verify checks it without a lock before
	// asking for a background refresh of stale keys, so that requests do
	// not queue on mu while the identity provider is down.
	nextFetch atomic.Int64

	// mu guards the fetch state below; Verify takes it only when it needs a
	// fetch.
	mu       sync.Mutex
	inflight *fetchCall
	stats    Stats

	// cache keeps verified tokens; nil when Config.CacheSize turns it off.
	cache *tokenCache
	// refusals keeps refusals the token's text decides; nil with the cache off.
	refusals *refusedCache
}

// New checks cfg, fills in the defaults and returns a Verifier. It does not
// fetch the key set: that happens on the first Verify, so that a gateway can
// start while the identity provider is down.
func New(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("jwt: issuer is required")
	}
	if len(cfg.Audiences) == 0 {
		return nil, errors.New("jwt: at least one audience is required")
	}
	if slices.Contains(cfg.Audiences, "") {
		return nil, errors.New("jwt: audiences must not be empty strings")
	}
	if err := checkJWKSURL(cfg.JWKSURL); err != nil {
		return nil, err
	}
	if cfg.ClockSkew < 0 || cfg.Refresh < 0 || cfg.MinRefresh < 0 {
		return nil, errors.New("jwt: durations must not be negative")
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.Client == nil {
		cfg.Client = defaultClient()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	allowed := defaultAlgorithms
	if len(cfg.Algorithms) > 0 {
		for _, alg := range cfg.Algorithms {
			if alg == "none" || strings.HasPrefix(alg, "HS") {
				return nil, fmt.Errorf("jwt: algorithm %q is refused: with a public key set it allows forged tokens", alg)
			}
			if !slices.Contains(defaultAlgorithms, alg) {
				return nil, fmt.Errorf("jwt: unsupported algorithm %q", alg)
			}
		}
		allowed = slices.Clone(cfg.Algorithms)
	}
	cfg.Audiences = slices.Clone(cfg.Audiences)
	cfg.Algorithms = allowed
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	v := &Verifier{cfg: cfg, allowed: allowed, cache: newTokenCache(cfg.CacheSize), refusals: newRefusedCache(cfg.CacheSize)}
	v.parser = gojwt.NewParser(
		gojwt.WithValidMethods(allowed),
		gojwt.WithLeeway(cfg.ClockSkew),
		gojwt.WithTimeFunc(cfg.Now),
		gojwt.WithIssuer(cfg.Issuer),
		gojwt.WithAudience(cfg.Audiences...),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		// Strict decoding refuses base64 with stray trailing bits, so that
		// one token has one spelling.
		gojwt.WithStrictDecoding(),
	)
	return v, nil
}

// checkJWKSURL accepts absolute http(s) URLs without credentials; keeping
// credentials out also keeps them out of Stats.LastError.
func checkJWKSURL(raw string) error {
	if raw == "" {
		return errors.New("jwt: JWKS URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("jwt: JWKS URL must be an absolute http or https URL")
	}
	if u.User != nil {
		return errors.New("jwt: JWKS URL must not carry credentials")
	}
	return nil
}

// Claims are the claims of a verified token. The same Claims are returned for
// every request that presents the same token while it is cached: callers read
// them and never change them.
type Claims struct {
	// Subject is the sub claim.
	Subject string
	// Issuer is the iss claim, equal to the configured issuer.
	Issuer string
	// Audience is the aud claim, always as a list.
	Audience []string
	// Scopes come from the space-separated scope claim and from the scp
	// claim, which some issuers send as a string and others as an array.
	Scopes []string
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
	// Raw holds every claim as decoded from JSON (numbers are float64).
	Raw map[string]any
}

// HasScopes reports whether the token grants every required scope. With no
// scopes required it reports true.
func (c *Claims) HasScopes(required ...string) bool {
	for _, s := range required {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// Match checks that each named claim has the required value and returns the
// first claim, in name order, that does not; ok is true when all match. A
// string claim must equal the value, an array claim must contain it as a
// string, and a boolean or number claim must print as it (true, 42, 1.5).
// A missing claim, or one of another type, never matches.
func (c *Claims) Match(required map[string]string) (claim string, ok bool) {
	names := make([]string, 0, len(required))
	for name := range required {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !claimEquals(c.Raw[name], required[name]) {
			return name, false
		}
	}
	return "", true
}

// claimEquals compares one decoded JSON value with a configured string.
func claimEquals(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	case bool:
		return strconv.FormatBool(v) == want
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64) == want
	}
	return false
}

// verifyError is a sentinel with a short explanation. The explanation is
// always written by this package and never quotes the token, which is why
// errors from the JWT library are mapped onto these instead of wrapped: the
// library's messages may quote header values. Cause, when set, is an error
// that is safe to pass on, such as a context's.
type verifyError struct {
	kind   error
	detail string
	cause  error
}

func (e *verifyError) Error() string {
	if e.detail == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.detail
}

func (e *verifyError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func fail(kind error, detail string) error {
	return &verifyError{kind: kind, detail: detail}
}

// Verify checks the token (without the "Bearer " prefix) and returns its
// claims. The context bounds only the wait for a key set fetch; the fetch
// itself is shared by concurrent callers and outlives any one of them. A
// token that passed every check before is answered from the cache, after its
// validity period and its key are checked again (see tokenCache).
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" || len(token) > maxTokenLen {
		return nil, fail(ErrMalformed, "empty or oversized token")
	}
	if c, ok := v.cached(ctx, token); ok {
		return c, nil
	}
	if err, ok := v.refused(token); ok {
		return nil, err
	}
	if v.cache != nil {
		v.cache.misses.Add(1)
	}
	mc := gojwt.MapClaims{}
	var (
		used *key
		set  *keySet
	)
	tok, err := v.parser.ParseWithClaims(token, mc, func(t *gojwt.Token) (any, error) {
		var err error
		used, set, err = v.keyFor(ctx, t)
		if err != nil {
			return nil, err
		}
		return used.pub, nil
	})
	if err != nil {
		err = v.mapError(tok, mc, err)
		v.refuse(token, err, set, mc)
		return nil, err
	}
	c, err := newClaims(mc)
	if err != nil {
		v.refuse(token, err, set, mc)
		return nil, err
	}
	kid, _ := tok.Header["kid"].(string)
	v.remember(token, c, mc, used, kid, tok.Method.Alg(), set)
	return c, nil
}

// keyFor finds the key the token names. The library calls it after the
// token decoded and its alg passed the allowed list, so tokens with a
// refused algorithm never cause a key set fetch.
func (v *Verifier) keyFor(ctx context.Context, t *gojwt.Token) (*key, *keySet, error) {
	// RFC 7515 requires refusing a token whose crit header names extensions
	// the verifier does not understand, and this one understands none.
	if _, ok := t.Header["crit"]; ok {
		return nil, nil, fail(ErrMalformed, "critical header extensions are not supported")
	}
	kid := ""
	if raw, ok := t.Header["kid"]; ok {
		s, ok := raw.(string)
		if !ok {
			return nil, nil, fail(ErrMalformed, "kid header is not a string")
		}
		kid = s
	}
	alg := t.Method.Alg()
	set, err := v.keys(ctx)
	if err != nil {
		return nil, nil, err
	}
	k, err := set.lookup(kid, alg)
	if errors.Is(err, ErrUnknownKey) && kid != "" {
		// The issuer may have rotated its keys since the last fetch.
		set, err = v.refetch(ctx, set)
		if err != nil {
			return nil, nil, err
		}
		k, err = set.lookup(kid, alg)
	}
	if err != nil {
		return nil, nil, err
	}
	return k, set, nil
}

// mapError turns the library's error into one of the sentinels. Errors from
// keyFor are already ours and pass through.
func (v *Verifier) mapError(tok *gojwt.Token, mc gojwt.MapClaims, err error) error {
	var ours *verifyError
	if errors.As(err, &ours) {
		return ours
	}
	switch {
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return fail(ErrMalformed, "not a signed JWT in compact form")
	case errors.Is(err, gojwt.ErrTokenUnverifiable):
		// With a key function always given, the library says this only
		// when the alg header is missing or names no algorithm it knows.
		if tok != nil {
			if _, ok := tok.Header["alg"].(string); ok {
				return fail(ErrAlgorithm, "unsupported alg")
			}
		}
		return fail(ErrMalformed, "alg header missing or not a string")
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		// The library reports an alg outside the allowed list as an invalid
		// signature; tell the two apart.
		if tok != nil && tok.Method != nil && !slices.Contains(v.allowed, tok.Method.Alg()) {
			return fail(ErrAlgorithm, "alg is not in the allowed list")
		}
		return fail(ErrSignature, "")
	case errors.Is(err, gojwt.ErrTokenInvalidClaims):
		return v.claimsError(mc, err)
	}
	return fail(ErrMalformed, "")
}

// claimsError maps a claim validation failure. The library joins all
// failures into one error and reports a missing claim without saying which,
// so the claims themselves are looked at for that. Issuer and audience go
// first, being the more basic mismatch.
func (v *Verifier) claimsError(mc gojwt.MapClaims, err error) error {
	missing := errors.Is(err, gojwt.ErrTokenRequiredClaimMissing)
	switch {
	case errors.Is(err, gojwt.ErrInvalidType):
		return fail(ErrMalformed, "a registered claim has the wrong type")
	case errors.Is(err, gojwt.ErrTokenInvalidIssuer) || missing && !hasIssuer(mc):
		return fail(ErrIssuer, "want "+strconv.Quote(v.cfg.Issuer))
	case errors.Is(err, gojwt.ErrTokenInvalidAudience) || missing && !hasAudience(mc):
		return fail(ErrAudience, "want one of "+quoteAll(v.cfg.Audiences))
	case errors.Is(err, gojwt.ErrTokenExpired):
		return fail(ErrExpired, "")
	case missing:
		return fail(ErrExpired, "the exp claim is required")
	case errors.Is(err, gojwt.ErrTokenNotValidYet):
		return fail(ErrNotYetValid, "nbf is in the future")
	case errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return fail(ErrNotYetValid, "iat is in the future")
	}
	return fail(ErrMalformed, "invalid claims")
}

func hasIssuer(mc gojwt.MapClaims) bool {
	iss, err := mc.GetIssuer()
	return err == nil && iss != ""
}

func hasAudience(mc gojwt.MapClaims) bool {
	aud, err := mc.GetAudience()
	return err == nil && len(aud) > 0 && !(len(aud) == 1 && aud[0] == "")
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// newClaims copies the registered claims out of a verified token.
func newClaims(mc gojwt.MapClaims) (*Claims, error) {
	c := &Claims{Raw: mc}
	var ok bool
	if raw, present := mc["sub"]; present {
		// A subject of another type could be read differently by
		// different consumers, so it is refused rather than guessed at.
		if c.Subject, ok = raw.(string); !ok {
			return nil, fail(ErrMalformed, "sub claim is not a string")
		}
	}
	c.Issuer, _ = mc["iss"].(string)
	c.Audience, _ = mc.GetAudience()
	if exp, err := mc.GetExpirationTime(); err == nil && exp != nil {
		c.ExpiresAt = exp.Time
	}
	if s, ok := mc["scope"].(string); ok {
		c.Scopes = append(c.Scopes, strings.Fields(s)...)
	}
	switch scp := mc["scp"].(type) {
	case string:
		c.Scopes = append(c.Scopes, strings.Fields(scp)...)
	case []any:
		for _, e := range scp {
			if s, ok := e.(string); ok && s != "" {
				c.Scopes = append(c.Scopes, s)
			}
		}
	}
	return c, nil
}
