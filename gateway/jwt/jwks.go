package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// fetchTimeout bounds one fetch even when the configured client has no
	// timeout of its own, so that a hung identity provider cannot hold the
	// single in-flight fetch, and every caller waiting on it, forever.
	fetchTimeout = 30 * time.Second
	// maxKeySetSize bounds the JWKS response body; real sets are a few
	// kilobytes.
	maxKeySetSize = 1 << 20
	// The RSA modulus sizes accepted. RFC 7518 section 3.3 requires at
	// least 2048 bits; the upper bound keeps verification cost bounded.
	minRSABits = 2048
	maxRSABits = 8192
)

// Stats describes the key set fetches, for metrics and health checks.
type Stats struct {
	// Fetches counts fetch attempts, successful or not.
	Fetches uint64
	// FetchErrors counts failed attempts: network errors, statuses other
	// than 200, bodies that are not a key set, and sets without a usable key.
	FetchErrors uint64
	// LastFetch is when the latest attempt started; zero before the first.
	LastFetch time.Time
	// LastSuccess is when keys were last fetched successfully.
	LastSuccess time.Time
	// LastError says why the latest attempt failed; empty if it succeeded.
	// It names the JWKS URL but never a token.
	LastError string
	// CacheHits counts tokens answered from the verified-token cache, and
	// CacheMisses those checked in full although the cache is on (first
	// seen, forgotten, expired, or checked by a key no longer in the set);
	// CachedTokens is how many tokens the cache holds now.
	CacheHits, CacheMisses uint64
	CachedTokens           int
	// RefusedHits counts tokens refused again from the refused-token cache,
	// without a check; RefusedTokens is how many refusals it holds now.
	RefusedHits   uint64
	RefusedTokens int
	// Keys is the number of usable keys in the cached set.
	Keys int
	// SkippedKeys is the number of keys in the last fetched set that were
	// ignored: encryption keys, unknown key types or curves, private keys,
	// and keys that do not parse.
	SkippedKeys int
}

// Stats returns a snapshot of the fetch and cache counters.
func (v *Verifier) Stats() Stats {
	v.mu.Lock()
	s := v.stats
	v.mu.Unlock()
	if c := v.cache; c != nil {
		s.CacheHits, s.CacheMisses, s.CachedTokens = c.hits.Load(), c.misses.Load(), c.size()
	}
	if c := v.refusals; c != nil {
		s.RefusedHits, s.RefusedTokens = c.hits.Load(), c.size()
	}
	return s
}

// keySet is one parsed key set. It is never changed once stored, which is
// what lets Verify read it without a lock.
type keySet struct {
	byKid   map[string][]*key
	all     []*key
	expires time.Time
}

// key is one usable verification key.
type key struct {
	kid string
	kty string
	crv string
	alg string // the JWK's alg member; empty if it had none
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// fits reports whether a token signed with alg may be checked with k.
func (k *key) fits(alg string) bool {
	return (k.alg == "" || k.alg == alg) && algFitsKey(alg, k.kty, k.crv)
}

// algFitsKey ties each algorithm to its key type and, for ECDSA, to its one
// curve (RFC 7518 section 3.4), so a key can never be used with an
// algorithm it was not made for.
func algFitsKey(alg, kty, crv string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return kty == "RSA"
	case "ES256":
		return kty == "EC" && crv == "P-256"
	case "ES384":
		return kty == "EC" && crv == "P-384"
	case "ES512":
		return kty == "EC" && crv == "P-521"
	case "EdDSA":
		return kty == "OKP" && crv == "Ed25519"
	}
	return false
}

// lookup finds the key for a token's kid and alg. A token without kid is
// accepted only when the set holds a single key, because otherwise the
// verifier would have to guess.
func (s *keySet) lookup(kid, alg string) (*key, error) {
	candidates := s.byKid[kid]
	if kid == "" {
		if len(s.all) != 1 {
			return nil, fail(ErrUnknownKey, "token has no kid and the key set holds several keys")
		}
		candidates = s.all
	}
	if len(candidates) == 0 {
		return nil, fail(ErrUnknownKey, "no key with the token's kid")
	}
	for _, k := range candidates {
		if k.fits(alg) {
			return k, nil
		}
	}
	return nil, fail(ErrAlgorithm, "the token's alg does not fit its key")
}

// fetchCall is one fetch that concurrent callers can wait for.
type fetchCall struct {
	done chan struct{}
	err  error // set before done is closed
}

// keys returns the cached key set. With none cached yet it waits for a
// fetch; with a stale one it starts a fetch in the background and goes on
// with the stale keys, so that refreshing never delays a request and a
// failed refresh leaves the keys in use.
func (v *Verifier) keys(ctx context.Context) (*keySet, error) {
	now := v.cfg.Now()
	if s := v.set.Load(); s != nil {
		if now.Before(s.expires) {
			return s, nil
		}
		if now.UnixNano() >= v.nextFetch.Load() {
			v.startFetch()
		}
		return s, nil
	}
	if c := v.startFetch(); c != nil {
		if err := await(ctx, c); err != nil && ctx.Err() != nil {
			return nil, &verifyError{kind: ErrKeysUnavailable, detail: "gave up waiting for the key set", cause: ctx.Err()}
		}
	}
	if s := v.set.Load(); s != nil {
		return s, nil
	}
	return nil, fail(ErrKeysUnavailable, "the key set could not be fetched")
}

// refetch fetches the key set again because a token named a key that seen,
// the set the caller looked in, does not hold. It returns the newest set,
// which is seen itself when MinRefresh forbids a fetch or the fetch fails.
func (v *Verifier) refetch(ctx context.Context, seen *keySet) (*keySet, error) {
	if s := v.set.Load(); s != seen {
		return s, nil // someone else fetched meanwhile
	}
	if c := v.startFetch(); c != nil {
		if err := await(ctx, c); err != nil && ctx.Err() != nil {
			return nil, &verifyError{kind: ErrUnknownKey, detail: "gave up waiting for the key set", cause: ctx.Err()}
		}
	}
	return v.set.Load(), nil
}

func await(ctx context.Context, c *fetchCall) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFetch returns the fetch in flight, or starts one unless the last one
// started less than MinRefresh ago, in which case it returns nil. The fetch
// runs on its own goroutine with its own deadline, so that a caller whose
// request is cancelled does not cancel the fetch for the others waiting.
func (v *Verifier) startFetch() *fetchCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.inflight != nil {
		return v.inflight
	}
	now := v.cfg.Now()
	if !v.stats.LastFetch.IsZero() && now.Sub(v.stats.LastFetch) < v.cfg.MinRefresh {
		return nil
	}
	c := &fetchCall{done: make(chan struct{})}
	v.inflight = c
	v.stats.Fetches++
	v.stats.LastFetch = now
	v.nextFetch.Store(now.Add(v.cfg.MinRefresh).UnixNano())
	go v.runFetch(c)
	return c
}

func (v *Verifier) runFetch(c *fetchCall) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	set, skipped, err := v.load(ctx)
	v.mu.Lock()
	if err != nil {
		v.stats.FetchErrors++
		v.stats.LastError = err.Error()
	} else {
		v.set.Store(set)
		v.stats.LastSuccess = v.cfg.Now()
		v.stats.LastError = ""
		v.stats.Keys = len(set.all)
		v.stats.SkippedKeys = skipped
	}
	v.inflight = nil
	v.mu.Unlock()
	c.err = err
	close(c.done)
}

// load fetches and parses the key set.
func (v *Verifier) load(ctx context.Context) (*keySet, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch key set: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("fetch key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("fetch key set from %s: status %d", v.cfg.JWKSURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetSize+1))
	if err != nil {
		return nil, 0, fmt.Errorf("fetch key set from %s: %w", v.cfg.JWKSURL, err)
	}
	if len(body) > maxKeySetSize {
		return nil, 0, fmt.Errorf("key set from %s is larger than %d bytes", v.cfg.JWKSURL, maxKeySetSize)
	}
	set, skipped, err := parseKeySet(body)
	if err != nil {
		return nil, skipped, fmt.Errorf("key set from %s: %w", v.cfg.JWKSURL, err)
	}
	set.expires = v.cfg.Now().Add(v.freshness(resp.Header))
	return set, skipped, nil
}

// freshness is how long a fetched set stays fresh: the response's max-age
// if it has one, bounded so that a misconfigured provider can neither make
// the gateway fetch constantly nor keep a rotated-out key for long.
func (v *Verifier) freshness(h http.Header) time.Duration {
	age, ok := maxAge(h.Values("Cache-Control"))
	if !ok {
		return v.cfg.Refresh
	}
	return min(max(age, v.cfg.MinRefresh), MaxRefresh)
}

// maxAge reads max-age from Cache-Control; no-cache and no-store count as
// zero.
func maxAge(values []string) (time.Duration, bool) {
	age, found := time.Duration(0), false
	for _, value := range values {
		for _, d := range strings.Split(value, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "no-cache" || d == "no-store" {
				return 0, true
			}
			if rest, ok := strings.CutPrefix(d, "max-age="); ok && !found {
				n, err := strconv.ParseInt(strings.Trim(rest, `"`), 10, 64)
				if errors.Is(err, strconv.ErrRange) && n > 0 {
					err = nil // too large to count, so as long as allowed
				}
				if err != nil || n < 0 {
					continue
				}
				n = min(n, int64(MaxRefresh/time.Second))
				age, found = time.Duration(n)*time.Second, true
			}
		}
	}
	return age, found
}

// defaultClient gives up after 5 seconds and follows redirects only within
// the configured host and scheme, so that whoever controls a redirect
// cannot substitute a key set from elsewhere.
func defaultClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			first := via[0].URL
			if !strings.EqualFold(req.URL.Host, first.Host) {
				return errors.New("redirect to another host refused")
			}
			if first.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("redirect from https to http refused")
			}
			return nil
		},
	}
}

// jwk holds the members of a JSON Web Key (RFC 7517) that matter here.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Kid    string   `json:"kid"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"`
}

// parseKeySet parses a JWKS document. Keys that cannot be used are skipped
// and counted rather than failing the whole set, because providers publish
// encryption keys and newer key types next to the signing keys; only a set
// with no usable key at all is an error, and then the cached set stays.
func parseKeySet(body []byte) (*keySet, int, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, 0, errors.New("not a JSON key set")
	}
	set := &keySet{byKid: make(map[string][]*key)}
	skipped := 0
	for _, raw := range doc.Keys {
		k, ok := parseKey(raw)
		if !ok {
			skipped++
			continue
		}
		set.all = append(set.all, k)
		if k.kid != "" {
			set.byKid[k.kid] = append(set.byKid[k.kid], k)
		}
	}
	if len(set.all) == 0 {
		return nil, skipped, errors.New("no usable signing key")
	}
	return set, skipped, nil
}

// parseKey turns one JWK into a verification key, or reports false for a
// key that is not a usable signing key.
func parseKey(raw json.RawMessage) (*key, bool) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, false
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, false
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return nil, false
	}
	// A key whose private part is published proves nothing: anyone can
	// sign with it.
	if j.D != "" {
		return nil, false
	}
	k := &key{kid: j.Kid, kty: j.Kty, crv: j.Crv, alg: j.Alg}
	var err error
	switch j.Kty {
	case "RSA":
		k.pub, err = parseRSA(j.N, j.E)
	case "EC":
		k.pub, err = parseEC(j.Crv, j.X, j.Y)
	case "OKP":
		k.pub, err = parseOKP(j.Crv, j.X)
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	// An alg the key cannot serve (an encryption alg, or one of another key
	// type) marks a key not meant for verifying these tokens.
	if k.alg != "" && !algFitsKey(k.alg, k.kty, k.crv) {
		return nil, false
	}
	return k, true
}

// b64 decodes a base64url member; RFC 7517 has it unpadded, but padding is
// tolerated since it changes nothing.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func parseRSA(n, e string) (*rsa.PublicKey, error) {
	nb, err := b64(n)
	if err != nil {
		return nil, err
	}
	eb, err := b64(e)
	if err != nil {
		return nil, err
	}
	if len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad RSA exponent")
	}
	exp := 0
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, errors.New("bad RSA exponent")
	}
	mod := new(big.Int).SetBytes(nb)
	if mod.BitLen() < minRSABits || mod.BitLen() > maxRSABits {
		return nil, errors.New("RSA modulus size not accepted")
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

func parseEC(crv, x, y string) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	var size int
	switch crv {
	case "P-256":
		curve, size = elliptic.P256(), 32
	case "P-384":
		curve, size = elliptic.P384(), 48
	case "P-521":
		curve, size = elliptic.P521(), 66
	default:
		return nil, errors.New("unsupported curve")
	}
	xb, err := b64(x)
	if err != nil {
		return nil, err
	}
	yb, err := b64(y)
	if err != nil {
		return nil, err
	}
	if len(xb) == 0 || len(yb) == 0 || len(xb) > size || len(yb) > size {
		return nil, errors.New("bad EC coordinate")
	}
	// RFC 7518 wants full-length coordinates, but some encoders drop
	// leading zeros; padding them back is harmless because the parser
	// below still checks that the point lies on the curve.
	point := make([]byte, 1+2*size)
	point[0] = 4 // uncompressed
	copy(point[1+size-len(xb):1+size], xb)
	copy(point[1+2*size-len(yb):], yb)
	return ecdsa.ParseUncompressedPublicKey(curve, point)
}

func parseOKP(crv, x string) (ed25519.PublicKey, error) {
	if crv != "Ed25519" {
		return nil, errors.New("unsupported curve")
	}
	xb, err := b64(x)
	if err != nil {
		return nil, err
	}
	if len(xb) != ed25519.PublicKeySize {
		return nil, errors.New("bad Ed25519 key")
	}
	return ed25519.PublicKey(xb), nil
}
