package gateway

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/causeway/causeway/connector"
	httpconn "github.com/causeway/causeway/connector/http"
	"github.com/causeway/causeway/expr"
	"github.com/causeway/causeway/gateway/jwt"
	"github.com/causeway/causeway/internal/leanhttp"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/problem"
)

// The fast lane (ADR 0013). Most gateway traffic is a proxy route that passes path
// parameters to one HTTP operation. On the general path each such request is turned into
// net/http's request, routed by the ServeMux, described as a document for the `with`
// template, turned into the connector's map of parameters, and its backend request built
// from that map: about half of the node's own work per request. The fast lane serves such
// routes straight from the lean server's request: the route, the operation's path and
// where each of its parameters comes from are worked out when the gateway is built, and a
// request only fills them in.
//
// It serves a request only when it can give the answer the general path would give, and
// it decides that before it does anything that shows (counting, taking from a limit,
// calling): anything out of the ordinary — a body, a percent-encoded or dotted path, a
// missing or refused key, a system that is down, a POST (which webhooks may share paths
// with) — goes the general way, which answers it as always. What the fast lane does
// itself (the limits, the call, the response mapping, the error answers) is the general
// path's own code; TestFastLaneMatchesGeneral (package platform) compares the two
// answer for answer.

// lane is a route the fast lane serves.
type lane struct {
	a    *api
	rt   *Route
	call *httpconn.Prepared
	// args gives, for each of the operation's placeholders (call.Params), where its value
	// comes from.
	args    []laneArg
	timeout time.Duration
	// raw and noHeaders are what the call asks of the connector, as callAndMap does.
	raw, noHeaders bool
	// passBody says the request's JSON body goes to the call as its body (a route without
	// with), encoded again as the general path does.
	passBody bool
	// forward are the client's headers the route's header policy passes on (canonical
	// names), besides X-Forwarded-*; hop-by-hop headers and, unless the policy says
	// otherwise, credentials are left out when the lane is made.
	forward []string
}

// laneArg is a segment of the request's path (seg ≥ 0) or a constant text.
type laneArg struct {
	seg  int
	text string
}

// maxLaneSegments bounds the path segments the fast lane reads on the stack; longer paths
// go the general way.
const maxLaneSegments = 16

// prepareLanes finds the routes the fast lane can serve, and orders the APIs by base path,
// longest first, as the ServeMux chooses between them.
func (g *Gateway) prepareLanes() {
	g.byBase = append([]*api(nil), g.apis...)
	sort.SliceStable(g.byBase, func(i, j int) bool { return len(g.byBase[i].spec.BasePath) > len(g.byBase[j].spec.BasePath) })
	if g.opts.Prepare == nil {
		return
	}
	for _, a := range g.apis {
		for _, rt := range a.spec.Routes {
			l, why := a.planLane(rt)
			if l == nil {
				g.log.Debug("route served on the general path only", "api", a.name, "route", rt.Match, "reason", why)
				continue
			}
			if a.lanes == nil {
				a.lanes = map[*Route]*lane{}
				a.fast = g.fast.WithLabelValues(a.name)
			}
			a.lanes[rt] = l
			g.lanes++
		}
	}
}

// planLane makes a route's lane, or says why the route has none.
func (a *api) planLane(rt *Route) (*lane, string) {
	p, pol := rt.Proxy, rt.policies
	switch {
	case p == nil:
		return nil, "not a proxy route"
	case rt.method == http.MethodPost && a.sharesWebhookPaths():
		return nil, "POST requests share the API's paths with webhooks"
	case pol.Auth == nil:
		return nil, "no authentication policy"
	case pol.Auth.JWT != nil && pol.Auth.JWT.CacheSize == 0:
		// The lane serves only tokens the general path verified and cached.
		return nil, "JWT authentication without the token cache"
	case pol.Auth.APIKey != nil && pol.Auth.APIKey.Header == "":
		return nil, "an API key in the query only"
	}
	for _, name := range forwardList(pol) {
		switch name {
		case "Host", "Cookie", "Content-Type", "Content-Length", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host":
			// The lean server keeps these apart from the other headers, or the gateway
			// sets them itself: the general path passes them on as it always has.
			return nil, "the header policy forwards " + name
		}
	}
	call, err := a.g.opts.Prepare(p.system, a.g.systems[p.system], p.op)
	if err != nil {
		return nil, err.Error()
	}
	seg := map[string]int{}
	for i, s := range rt.segments {
		if s.param != "" {
			seg[s.param] = i
		}
	}
	// from says where each parameter of the call comes from, as HTTPCall would place it:
	// every key must be a placeholder of the operation's path (others go into the query
	// or are the body or headers), and every placeholder must be given.
	from := map[string]laneArg{}
	if p.with == nil {
		// Without with, the path parameters are passed by name.
		for name, i := range seg {
			from[name] = laneArg{seg: i}
		}
	} else {
		fields, ok := p.with.Object()
		if !ok {
			return nil, "with is not an object"
		}
		for k, v := range fields {
			switch v := v.(type) {
			case string:
				from[k] = laneArg{seg: -1, text: v}
			case *expr.Template:
				prog, ok := v.Whole()
				if !ok {
					return nil, "with has a template that is not one expression"
				}
				keys, ok := prog.KeyPath()
				i, isParam := seg[lastKey(keys)]
				if !ok || len(keys) != 2 || keys[0] != "path" || !isParam {
					return nil, "with reads more than the path's parameters"
				}
				from[k] = laneArg{seg: i}
			default:
				return nil, "with has a value that is not a string"
			}
		}
	}
	names := call.Params()
	used := map[string]bool{}
	l := &lane{a: a, rt: rt, call: call, timeout: a.spec.Timeout}
	for _, name := range names {
		arg, ok := from[name]
		if !ok {
			return nil, "the operation's parameter " + name + " is not given"
		}
		l.args = append(l.args, arg)
		used[name] = true
	}
	for k := range from {
		if !used[k] || k == "body" || k == "query" || k == "headers" {
			return nil, "with has " + k + ", which is not a parameter of the operation's path"
		}
	}
	if rt.Timeout > 0 {
		l.timeout = rt.Timeout
	}
	l.raw = p.wantsRaw()
	l.noHeaders = !l.raw && !p.Response.readsHeaders
	l.forward = forwardList(pol)
	l.passBody = p.with == nil
	return l, ""
}

// sharesWebhookPaths reports whether a webhook takes POST requests under the API's base
// path: the ServeMux would give those to the webhook.
func (a *api) sharesWebhookPaths() bool {
	for _, p := range a.g.opts.Webhooks {
		if p == a.spec.BasePath || strings.HasPrefix(p, a.spec.BasePath+"/") {
			return true
		}
	}
	return false
}

// forwardList is the headers forwardHeaders passes on for a policy, but for those a
// request's Connection header names.
func forwardList(pol *Policies) []string {
	h := pol.Headers
	if h == nil {
		return nil
	}
	skip := map[string]bool{}
	for _, name := range hopByHop {
		skip[name] = true
	}
	if !h.ForwardCredentials {
		for _, name := range credentials {
			skip[name] = true
		}
		if pol.Auth != nil && pol.Auth.APIKey != nil && pol.Auth.APIKey.Header != "" {
			skip[http.CanonicalHeaderKey(pol.Auth.APIKey.Header)] = true
		}
	}
	var out []string
	add := func(name string) {
		if !skip[name] && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, name := range h.Forward {
		add(http.CanonicalHeaderKey(name))
	}
	if h.ForwardCredentials {
		for _, name := range credentials {
			add(name)
		}
	}
	return out
}

func lastKey(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return keys[len(keys)-1]
}

// ServeFast serves a request on the fast lane when it can, and reports whether it did.
// When it returns false it has written and counted nothing, and the request is served as
// usual.
func (g *Gateway) ServeFast(c *fasthttp.RequestCtx) bool {
	// A chunked request goes the general way (-1); fasthttp has read any other body whole
	// by now.
	if g.lanes == 0 || c.Request.Header.ContentLength() == -1 {
		return false
	}
	path := c.Request.Header.RequestURI()
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if !plainPath(path) {
		return false
	}
	for _, a := range g.byBase {
		base := a.spec.BasePath
		if len(path) > len(base) && string(path[:len(base)]) == base && path[len(base)] == '/' {
			if a.lanes == nil {
				return false
			}
			return a.serveFast(c, path, path[len(base):])
		}
	}
	return false
}

// plainPath reports whether a request's path is one the fast lane takes: it starts with a
// slash and has nothing to decode or clean (no percent-encoding, no character outside
// letters, digits and -._~:@).
func plainPath(p []byte) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for _, b := range p {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '/' || b == '-' || b == '.' || b == '_' || b == '~' || b == ':' || b == '@':
		default:
			return false
		}
	}
	return true
}

// serveFast serves a request of the API whose path under the base path is rest.
func (a *api) serveFast(c *fasthttp.RequestCtx, path, rest []byte) bool {
	method := c.Method()
	if string(method) == http.MethodHead || string(method) == http.MethodOptions ||
		(string(method) == http.MethodGet && string(rest) == documentPath) {
		return false
	}
	var buf [maxLaneSegments][]byte
	segs, ok := laneSegments(rest, &buf)
	if !ok {
		return false
	}
	rt := a.matchBytes(string(method), segs)
	if rt == nil || a.lanes[rt] == nil {
		return false
	}
	return a.lanes[rt].serve(c, path, segs)
}

// laneSegments splits a plain path under the base path ("/a/b") into buf, as splitPath
// would (FuzzLaneSegments compares them); ok is false for an empty or dot segment, or more
// segments than buf holds, which the general path then deals with.
func laneSegments(rest []byte, buf *[maxLaneSegments][]byte) ([][]byte, bool) {
	if len(rest) < 2 || rest[0] != '/' {
		return nil, false
	}
	segs := buf[:0]
	for rest = rest[1:]; ; {
		i := bytes.IndexByte(rest, '/')
		seg := rest
		if i >= 0 {
			seg = rest[:i]
		}
		if len(seg) == 0 || string(seg) == "." || string(seg) == ".." || len(segs) == maxLaneSegments {
			return nil, false
		}
		segs = append(segs, seg)
		if i < 0 {
			return segs, true
		}
		rest = rest[i+1:]
	}
}

// matchBytes is match for a path the fast lane split: the same routes in the same order.
func (a *api) matchBytes(method string, segs [][]byte) *Route {
	for _, rt := range a.byMethod[method] {
		if len(rt.segments) != len(segs) {
			continue
		}
		ok := true
		for i, s := range rt.segments {
			if s.param == "" && s.literal != string(segs[i]) {
				ok = false
				break
			}
		}
		if ok {
			return rt
		}
	}
	return nil
}

// serve answers a request of the lane's route.
func (l *lane) serve(c *fasthttp.RequestCtx, path []byte, segs [][]byte) bool {
	start := time.Now()
	a, rt, p := l.a, l.rt, l.rt.Proxy
	if u := a.g.opts.Unavailable; u != nil {
		if down, _ := u(p.system); down {
			return false
		}
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	pol := rt.policies
	peer := ip.Unmap().WithZone(ta.Zone)
	who := &caller{addr: resolveClient(peer, pol.IP, func() []string {
		var hops []string
		for _, v := range c.Request.Header.PeekAll("X-Forwarded-For") {
			hops = append(hops, string(v))
		}
		return hops
	})}
	if f := pol.IP; f != nil && (contains(f.deny, who.addr) || (len(f.allow) > 0 && !contains(f.allow, who.addr))) {
		return false
	}
	if pol.CORS != nil && len(c.Request.Header.Peek("Origin")) > 0 {
		// A browser's request gets the CORS headers on the general path.
		return false
	}
	// verifier counts a cache hit once the request is the lane's: a token the lane leaves
	// to the general path is counted there.
	var verifier *jwt.Verifier
	switch auth := pol.Auth; {
	case auth.APIKey != nil:
		key := c.Request.Header.Peek(auth.APIKey.Header)
		if len(key) == 0 {
			return false
		}
		e, why := a.g.checkKey(string(key))
		if why != "" {
			return false
		}
		who.consumer, who.name, who.scopes = e.consumer, e.consumer.name, e.consumer.spec.Scopes
	case auth.JWT != nil:
		// Only a token the general path verified before, and still valid: a new, expired
		// or refused token, and one whose key the issuer rotated out, go the general way.
		token, ok := bearerBytes(c.Request.Header.Peek("Authorization"))
		if !ok {
			return false
		}
		verifier = a.g.tokens[auth.JWT]
		claims, ok := verifier.Cached(context.Background(), token)
		if !ok || tokenCaller(a.g, auth.JWT, claims, who) != "" {
			return false
		}
	case rt.policies.RateLimit != nil || rt.cache != nil:
		// Only a limit by caller and the response cache's key read the caller's name; it
		// costs an allocation.
		who.name = who.addr.String()
	}
	if !allowed(a, rt, who) {
		return false
	}
	body, ok := l.body(c)
	if !ok {
		return false
	}
	// From here on the request is this lane's: it counts and takes from the limits.
	if verifier != nil {
		verifier.CountHit()
	}
	h := &c.Response.Header
	status := 0
	o := a.checkLimits(context.Background(), rt, who)
	if o.hasRate {
		// As the general path writes them (rateHeaders), in a buffer on the stack: the
		// names are already canonical, and the numbers need no string of their own.
		var num [20]byte
		h.SetCanonical(ratelimitLimit, strconv.AppendInt(num[:0], o.rate.limit, 10))
		h.SetCanonical(ratelimitRemaining, strconv.AppendInt(num[:0], max(o.rate.remaining, 0), 10))
		h.SetCanonical(ratelimitReset, appendSeconds(num[:0], o.rate.reset))
	}
	var rc *responseCache
	if rt.cache != nil && string(c.Method()) == http.MethodGet {
		rc = rt.cache
	}
	switch {
	case o.refusal != nil:
		h.Set("Retry-After", o.retryAfter)
		status = writeProblem(c, o.refusal, path)
	case rc != nil:
		// As the general path: answers are kept per caller and request URI (a plain path
		// here, so the same text as net/http's RequestURI).
		key := who.name + "\x00" + string(c.Request.Header.RequestURI())
		if ca, ok := rc.get(key, time.Now()); ok {
			h.Set("Age", strconv.Itoa(int(time.Since(ca.stored).Seconds())))
			ca.answer.writeFast(c)
			status = ca.status
			break
		}
		var an *answer
		status, an = l.proxy(c, path, segs, peer, body, start, true)
		if an != nil && an.status == http.StatusOK {
			rc.put(key, an, time.Now())
		}
	default:
		status, _ = l.proxy(c, path, segs, peer, body, start, false)
	}
	consumer := "-"
	if who.consumer != nil {
		consumer = who.consumer.name
	}
	m := a.metrics[rt]
	m.count(consumer, status)
	a.fast.Inc()
	m.latency.Observe(time.Since(start).Seconds())
	return true
}

// The rate limit's header names, canonical.
var (
	ratelimitLimit     = []byte("Ratelimit-Limit")
	ratelimitRemaining = []byte("Ratelimit-Remaining")
	ratelimitReset     = []byte("Ratelimit-Reset")
)

// allowed reports whether the caller may call the route, as far as its Consumer's APIs
// and the route's scopes say.
func allowed(a *api, rt *Route, who *caller) bool {
	if who.consumer != nil && who.consumer.apis != nil && !who.consumer.apis[a.name] {
		return false
	}
	for _, s := range rt.policies.Scopes {
		if !slices.Contains(who.scopes, s) {
			return false
		}
	}
	return true
}

// proxy makes the route's call and answers with its mapped answer, or the problem the
// general path would answer; it returns the status, and, when keep is set, the answer when
// it was not a problem.
func (l *lane) proxy(c *fasthttp.RequestCtx, path []byte, segs [][]byte, peer netip.Addr, body []byte, start time.Time, keep bool) (int, *answer) {
	a, rt := l.a, l.rt
	var buf [8]string
	params := buf[:0]
	for _, arg := range l.args {
		if arg.seg >= 0 {
			params = append(params, string(segs[arg.seg]))
		} else {
			params = append(params, arg.text)
		}
	}
	call := httpconn.PreparedCall{Body: body, Raw: l.raw, NoHeaders: l.noHeaders, Forward: l.forwarded(c),
		IdempotencyKey: string(c.Request.Header.Peek("Idempotency-Key")),
		Forwarded:      httpconn.Forwarded{For: forwardedFor(c, peer), Proto: "http", Host: hostText(c.Host())}}
	if c.IsTLS() {
		call.Forwarded.Proto = "https"
	}
	if tp := c.Request.Header.Peek("Traceparent"); len(tp) > 0 && message.ValidTraceparent(string(tp)) {
		call.Traceparent = string(tp)
	} else {
		call.NewTrace = true
	}
	// The call takes the route's deadline itself; a context with it is made only for what
	// reads one (the route's response mapping, the failure's classification).
	call.Deadline = start.Add(l.timeout)
	res, err := l.call.Do(context.Background(), params, &call)
	// A failure after the route's own deadline passed is not the system's (a success is
	// one whenever it came), as on the general path.
	if observe := a.g.opts.Observe; observe != nil && (err == nil || time.Until(call.Deadline) > 0) {
		observe(rt.Proxy.system, err)
	}
	if err == nil && res.Raw != nil && rt.Proxy.passesRaw() && !keep {
		// mapAnswer's usual proxy answer, without making one that nobody keeps.
		an := answer{status: http.StatusOK, header: rawJSONHeader, body: res.Raw}
		an.writeFast(c)
		return an.status, nil
	}
	ctx := newDeadline(context.Background(), call.Deadline)
	defer ctx.cancel()
	var an *answer
	if err == nil {
		an, err = mapAnswer(ctx, rt, &connector.Outcome{Status: res.Status, Headers: res.Headers, Body: res.Body, Raw: res.Raw})
	}
	if err != nil {
		f := a.classify(ctx, rt, err)
		if f.retryAfter > 0 {
			c.Response.Header.Set("Retry-After", strconv.Itoa(max(int(f.retryAfter.Seconds()), 1)))
		}
		return writeProblem(c, problem.New(f.status, f.typ, f.detail), path), nil
	}
	an.writeFast(c)
	return an.status, an
}

// body checks a request's body as the general path does (validateBody), and returns what
// the call sends: the body decoded and encoded again when the route passes it on, nothing
// otherwise. ok is false for a body the general path refuses (over the API's limit, too
// deep or too many elements, not matching the route's schema, not JSON), which it then
// answers.
func (l *lane) body(c *fasthttp.RequestCtx) (out []byte, ok bool) {
	raw := c.Request.Body()
	v := l.rt.policies.Validate
	if v == nil {
		v = defaultValidation
	}
	if int64(len(raw)) > l.a.spec.MaxBodyBytes || checkShape(raw, v.MaxDepth, v.MaxElements) != nil {
		return nil, false
	}
	if v.typ != nil {
		// As validateBody: no body is validated as nil.
		var data []byte
		if len(raw) > 0 {
			data = raw
		}
		if v.typ.Validate(data) != nil {
			return nil, false
		}
	}
	if len(raw) == 0 {
		return nil, true
	}
	doc, err := expr.DecodeJSON(raw)
	if err != nil {
		return nil, false
	}
	if !l.passBody || doc == nil {
		// A body of null is no body, as in proxy.
		return nil, true
	}
	if out, err = expr.MarshalJSON(doc); err != nil {
		return nil, false
	}
	return out, true
}

// forwarded are the client's headers the route's policy passes on, with their values: as
// forwardHeaders, without those the request's Connection header names.
func (l *lane) forwarded(c *fasthttp.RequestCtx) [][2]string {
	if len(l.forward) == 0 {
		return nil
	}
	var conn []string
	for _, v := range c.Request.Header.PeekAll("Connection") {
		for _, name := range strings.Split(string(v), ",") {
			conn = append(conn, http.CanonicalHeaderKey(strings.TrimSpace(name)))
		}
	}
	var out [][2]string
	for _, name := range l.forward {
		if slices.Contains(conn, name) {
			continue
		}
		for _, v := range c.Request.Header.PeekAll(name) {
			out = append(out, [2]string{name, string(v)})
		}
	}
	return out
}

// forwardedFor is X-Forwarded-For for the backend: the client's, with the peer added.
func forwardedFor(c *fasthttp.RequestCtx, peer netip.Addr) string {
	prior := c.Request.Header.PeekAll("X-Forwarded-For")
	if len(prior) == 0 {
		return peerText(peer)
	}
	var b strings.Builder
	for _, v := range prior {
		b.Write(v)
		b.WriteString(", ")
	}
	b.WriteString(peerText(peer))
	return b.String()
}

// peerNames are the texts of peer addresses written before, one per slot by the address's
// last bytes. A gateway behind a load balancer or a reverse proxy has one or a few peers,
// and a client sends its requests on a kept connection: writing the same address again on
// every request would cost an allocation.
var peerNames [64]atomic.Pointer[peerName]

type peerName struct {
	addr netip.Addr
	text string
}

// lastHost is the Host a request named last: a gateway is called by one or a few names,
// and the name is passed on (X-Forwarded-Host) on every request.
var lastHost atomic.Pointer[string]

// hostText is string(host).
func hostText(host []byte) string {
	if last := lastHost.Load(); last != nil && *last == string(host) {
		return *last
	}
	text := string(host)
	lastHost.Store(&text)
	return text
}

// peerText is peer.String().
func peerText(peer netip.Addr) string {
	b := peer.As16()
	slot := &peerNames[(b[14]^b[15]^b[13]*7)&63]
	if last := slot.Load(); last != nil && last.addr == peer {
		return last.text
	}
	text := peer.String()
	slot.Store(&peerName{addr: peer, text: text})
	return text
}

// writeProblem answers a problem as problem.Write does, and returns its status.
func writeProblem(c *fasthttp.RequestCtx, d *problem.Details, path []byte) int {
	status, body := d.Encode(string(path))
	c.SetStatusCode(status)
	c.Response.Header.SetContentType(problem.ContentType)
	c.Response.Header.Set("X-Content-Type-Options", "nosniff")
	c.Response.SetBodyRaw(body)
	return status
}

// writeFast writes the answer as write does through the lean server's writer.
func (an *answer) writeFast(c *fasthttp.RequestCtx) {
	h := &c.Response.Header
	typed := leanhttp.CopyHeader(c, an.header)
	c.SetStatusCode(an.status)
	switch {
	case typed:
	case len(an.body) > 0:
		h.SetContentType(http.DetectContentType(an.body[:min(len(an.body), 512)]))
	default:
		h.SetNoDefaultContentType(true)
	}
	if an.body != nil {
		c.Response.SetBodyRaw(an.body)
	}
}
