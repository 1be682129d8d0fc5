package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// answer is a route's answer before it is written, so that it can be kept.
type answer struct {
	status int
	// header may be shared between answers (rawJSONHeader, and a cached answer's): it is
	// read, and copied onto a response, never changed in place.
	header http.Header
	body   []byte
}

// rawJSONHeader is the header of a proxy route's answer that passes the backend's JSON on
// with no status or headers of the route's own.
var rawJSONHeader = http.Header{"Content-Type": jsonType}

// write sends the answer.
func (an *answer) write(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range an.header {
		h[k] = vs
	}
	if an.body != nil {
		h["Content-Length"] = []string{strconv.Itoa(len(an.body))}
	}
	w.WriteHeader(an.status)
	if an.body != nil {
		_, _ = w.Write(an.body)
	}
}

// responseCache keeps a route's successful GET answers per caller and URL. Lookups take no
// lock; an insert into a full cache first drops what has expired, and when nothing has,
// the answer is simply not kept.
type responseCache struct {
	ttl     time.Duration
	max     int64
	entries sync.Map // key → *cachedAnswer
	count   atomic.Int64
	sweep   sync.Mutex
}

type cachedAnswer struct {
	answer
	stored  time.Time
	expires time.Time
}

func newResponseCache(c *Cache) *responseCache {
	return &responseCache{ttl: c.TTL, max: int64(c.MaxEntries)}
}

// cacheKey is who asked for which URL: answers are kept per caller, since a backend may
// answer callers differently.
func cacheKey(c *caller, r *http.Request) string {
	return c.name + "\x00" + r.URL.RequestURI()
}

// get returns a live answer for key.
func (rc *responseCache) get(key string, now time.Time) (*cachedAnswer, bool) {
	v, ok := rc.entries.Load(key)
	if !ok {
		return nil, false
	}
	ca := v.(*cachedAnswer)
	if now.After(ca.expires) {
		if rc.entries.CompareAndDelete(key, v) {
			rc.count.Add(-1)
		}
		return nil, false
	}
	return ca, true
}

// put keeps an answer.
func (rc *responseCache) put(key string, an *answer, now time.Time) {
	if rc.count.Load() >= rc.max {
		rc.sweep.Lock()
		rc.entries.Range(func(k, v any) bool {
			if now.After(v.(*cachedAnswer).expires) && rc.entries.CompareAndDelete(k, v) {
				rc.count.Add(-1)
			}
			return true
		})
		rc.sweep.Unlock()
		if rc.count.Load() >= rc.max {
			return
		}
	}
	if _, loaded := rc.entries.Swap(key, &cachedAnswer{answer: *an, stored: now, expires: now.Add(rc.ttl)}); !loaded {
		rc.count.Add(1)
	}
}

// writeCached sends a kept answer with its age.
func writeCached(w http.ResponseWriter, ca *cachedAnswer, now time.Time) {
	w.Header()["Age"] = []string{strconv.Itoa(int(now.Sub(ca.stored).Seconds()))}
	ca.write(w)
}
