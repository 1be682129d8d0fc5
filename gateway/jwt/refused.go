package jwt

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// The refused-token cache. A client that keeps sending a token the gateway refuses (one
// that expired while the client kept it, one for another audience, one whose signature
// does not verify) would otherwise cost a full check on every request: tens of
// microseconds of signature work for a 401. So a refusal that the token's own text decides
// is kept, by that text, and answered again without a check while it still holds:
//   - a malformed token, a refused algorithm, the wrong issuer or audience: for good (the
//     token's text and the policy decide them);
//   - an expired token: while the clock stays past its exp plus the skew (a clock set
//     back sees it checked again);
//   - a signature that does not verify: while the key set that refused it is the one in
//     use (a fetched set, which may map the kid to another key, checks it again; a kept
//     refusal starts the refresh of a stale set, as a check would).
//
// Not kept: a token not yet valid (it will be), one whose key is unknown (the issuer may
// publish it), and one refused because no key set could be fetched. The cache is separate
// from the verified tokens' and smaller (a quarter of their count; tokens over 4 KiB never
// go in), so that what unauthenticated clients send can never take room from valid tokens,
// and made-up tokens, each different, only cycle through it.
type refusedCache struct {
	tokenMap[*refusal]
	// hits counts refusals answered from the cache, for Stats.
	hits atomic.Uint64
}

// refusal is a kept refusal of a token.
type refusal struct {
	err error
	// set, when not nil, is the key set whose key refused the token's signature.
	set *keySet
	// expired, when not zero, is when the token expired, the skew included.
	expired time.Time
}

// maxRefusedTokenLen bounds the tokens the refused-token cache keeps.
const maxRefusedTokenLen = 4 << 10

func newRefusedCache(size int) *refusedCache {
	if size <= 0 {
		return nil
	}
	return &refusedCache{tokenMap: newTokenMap[*refusal](max(size/4, 1))}
}

// refused returns the kept refusal of a token when it still holds.
func (v *Verifier) refused(token string) (error, bool) {
	c := v.refusals
	if c == nil {
		return nil, false
	}
	r := c.get(token)
	if r == nil {
		return nil, false
	}
	if v.set.Load() != nil {
		// As a full check would, a stale key set is fetched again, in the background (with a
		// set in use keys never waits): a signature the new set accepts is then checked
		// again below.
		_, _ = v.keys(context.Background())
	}
	if (r.set != nil && v.set.Load() != r.set) || (!r.expired.IsZero() && v.cfg.Now().Before(r.expired)) {
		c.remove(token, r)
		return nil, false
	}
	c.hits.Add(1)
	return r.err, true
}

// refuse keeps the refusal err of a token, when the token's text decides it; set is the
// key set that checked it, if any, and mc its claims as far as they were read.
func (v *Verifier) refuse(token string, err error, set *keySet, mc gojwt.MapClaims) {
	c := v.refusals
	if c == nil || len(token) > maxRefusedTokenLen {
		return
	}
	r := &refusal{err: err}
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrAlgorithm), errors.Is(err, ErrIssuer), errors.Is(err, ErrAudience):
	case errors.Is(err, ErrExpired):
		exp, e := mc.GetExpirationTime()
		if e != nil || exp == nil {
			return
		}
		r.expired = exp.Add(v.cfg.ClockSkew)
	case errors.Is(err, ErrSignature):
		if set == nil {
			return
		}
		r.set = set
	default:
		return
	}
	c.put(token, r)
}
