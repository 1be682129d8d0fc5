package requests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Callbacks.
//
// A callback URL is a request to make from inside the network on a client's behalf, so it
// is checked twice: when the request is accepted (Check: the URL's form, the allow-list,
// and the addresses its host resolves to), and again on every connection, against the
// address actually dialled. The second check is what counts: a host may resolve to a
// public address when checked and to an internal one when called (DNS rebinding), and
// only the dialled address cannot change after it is checked. Redirects are not
// followed, since they would lead to a URL nobody checked, and no proxy from the
// environment is used, since the connection checked would then be the proxy's.

// ErrCallbackRefused is a callback URL the policy does not allow.
var ErrCallbackRefused = errors.New("callback URL refused")

// The outcomes of a callback.
const (
	// CallbackDelivered is a callback the client's server answered with a 2xx status.
	CallbackDelivered = "delivered"
	// CallbackFailed is a callback that was refused, answered otherwise, or not answered
	// in any of its attempts.
	CallbackFailed = "failed"
)

// The callback's limits.
const (
	maxCallbackAttempts = 5
	callbackTimeout     = 10 * time.Second
	maxCallbackURL      = 2048
)

// CallbackPolicy says which callback URLs are allowed.
type CallbackPolicy struct {
	// Allow are the URL prefixes callbacks may go to, such as
	// "https://partner.example.com/hooks/": the scheme, host and port must be the
	// prefix's, and the path must start with its path (at a '/' boundary when the prefix
	// does not end with one). None allows no callbacks at all.
	Allow []string `json:"allow,omitempty"`
	// AllowPrivate allows hosts on loopback, private, shared (100.64.0.0/10),
	// unspecified, multicast and broadcast addresses: for tests and on-premises setups.
	AllowPrivate bool `json:"allowPrivate,omitempty"`
	// AllowLinkLocal allows link-local hosts (169.254.0.0/16, fe80::/10) and the cloud
	// metadata addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200). Those in
	// private ranges also need AllowPrivate.
	AllowLinkLocal bool `json:"allowLinkLocal,omitempty"`
}

// CallbackOutcome is how a request's callback went.
type CallbackOutcome struct {
	// State is CallbackDelivered or CallbackFailed.
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	// StatusCode is the last HTTP status the callback got, if any.
	StatusCode int `json:"statusCode,omitempty"`
	// LastError says why the last attempt failed; it never holds the answer's body.
	LastError string    `json:"lastError,omitempty"`
	At        time.Time `json:"at"`
}

// Check reports whether a callback URL is allowed: an http or https URL, without user
// information or fragment, under one of the allowed prefixes, whose host is not (and does
// not resolve to) an address the policy refuses. Its errors wrap ErrCallbackRefused.
func (p CallbackPolicy) Check(raw string) error {
	u, err := p.match(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if why := p.refusal(a); why != "" {
			return fmt.Errorf("%w: %s is %s", ErrCallbackRefused, a, why)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: its host %s does not resolve: %w", ErrCallbackRefused, host, err)
	}
	for _, a := range addrs {
		if why := p.refusal(a); why != "" {
			return fmt.Errorf("%w: its host %s resolves to %s, which is %s", ErrCallbackRefused, host, a, why)
		}
	}
	return nil
}

// Validate checks the allow-list's prefixes.
func (p CallbackPolicy) Validate() error { return p.validate() }

// validate checks the allow-list, so that a mistyped prefix shows on start rather than as
// refused callbacks.
func (p CallbackPolicy) validate() error {
	for _, prefix := range p.Allow {
		if _, err := parsePrefix(prefix); err != nil {
			return err
		}
	}
	return nil
}

// parsePrefix reads an allow-list prefix.
func parsePrefix(prefix string) (*url.URL, error) {
	u, err := url.Parse(prefix)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("callback allow-list: %q is not an http or https URL prefix (scheme, host, optional port and path)", prefix)
	}
	return u, nil
}

// match checks a URL's form and the allow-list, without resolving its host.
func (p CallbackPolicy) match(raw string) (*url.URL, error) {
	refuse := func(why string) error { return fmt.Errorf("%w: %s", ErrCallbackRefused, why) }
	if len(raw) > maxCallbackURL {
		return nil, refuse(fmt.Sprintf("longer than %d characters", maxCallbackURL))
	}
	if strings.Contains(raw, "#") {
		return nil, refuse("it has a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refuse("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, refuse("it must be http or https")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, refuse("it has no host")
	}
	if u.User != nil {
		return nil, refuse("it must not carry a user name or password")
	}
	// A path that climbs out of the allowed prefix once the server resolves it must not
	// pass as under the prefix.
	if strings.Contains(u.Path, `\`) || slices.ContainsFunc(strings.Split(u.Path, "/"), func(seg string) bool { return seg == "." || seg == ".." }) {
		return nil, refuse("its path has '.' or '..' segments or backslashes")
	}
	for _, prefix := range p.Allow {
		a, err := parsePrefix(prefix)
		if err == nil && under(u, a) {
			return u, nil
		}
	}
	return nil, refuse("it is not under an allowed prefix")
}

// under reports whether u is under the allowed prefix a.
func under(u, a *url.URL) bool {
	if u.Scheme != a.Scheme || !strings.EqualFold(u.Hostname(), a.Hostname()) || port(u) != port(a) {
		return false
	}
	path := a.Path
	switch {
	case path == "" || path == "/":
		return true
	case strings.HasSuffix(path, "/"):
		return strings.HasPrefix(u.Path, path)
	}
	return u.Path == path || strings.HasPrefix(u.Path, path+"/")
}

// port is a URL's port, its scheme's default when it has none.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Addresses the policy knows by name.
var (
	metadataAddrs = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"),
		netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("100.100.100.200"),
	}
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	broadcast   = netip.MustParseAddr("255.255.255.255")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	v4Compat    = netip.MustParsePrefix("::/96")
)

// refusal says why the policy refuses an address, or "" when it does not.
func (p CallbackPolicy) refusal(a netip.Addr) string {
	a = a.Unmap()
	if !a.IsValid() {
		return "not an address"
	}
	if a.Zone() != "" {
		return "a scoped IPv6 address"
	}
	// An IPv4 address carried in an IPv6 one reaches the IPv4 host through a translator.
	if v4, ok := embeddedIPv4(a); ok {
		if why := p.refusal(v4); why != "" {
			return why + " (carried in " + a.String() + ")"
		}
	}
	if !p.AllowLinkLocal {
		switch {
		case slices.Contains(metadataAddrs, a):
			return "a cloud metadata address"
		case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
			return "link-local"
		}
	}
	if !p.AllowPrivate {
		switch {
		case a.IsLoopback():
			return "loopback"
		case a.IsUnspecified() || thisNetwork.Contains(a):
			return "unspecified"
		case a.IsMulticast() || a == broadcast:
			return "multicast or broadcast"
		case a.IsPrivate() || sharedSpace.Contains(a):
			return "private"
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address of a NAT64, 6to4 or IPv4-compatible address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case v4Compat.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:16])), true
	}
	return netip.Addr{}, false
}

// policyKey carries, in a delivery's context, the policy its record was accepted under.
type policyKey struct{}

// control checks, on every connection, the address actually dialled, under the policy of
// the delivery that dials (the store's when it carries none).
func (p CallbackPolicy) control(ctx context.Context, _, address string, _ syscall.RawConn) error {
	if rp, ok := ctx.Value(policyKey{}).(*CallbackPolicy); ok && rp != nil {
		p = *rp
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check the address %q", ErrCallbackRefused, address)
	}
	if why := p.refusal(ap.Addr()); why != "" {
		return fmt.Errorf("%w: the callback host's address %s is %s", ErrCallbackRefused, ap.Addr(), why)
	}
	return nil
}

// callbackClient posts callbacks.
type callbackClient struct {
	http      *http.Client
	transport *http.Transport
}

// newClient returns the client that posts callbacks under the policy.
func (p CallbackPolicy) newClient() *callbackClient {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, ControlContext: p.control}
	// Proxy stays nil: see the comment on callbacks.
	tr := &http.Transport{
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  callbackTimeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &callbackClient{transport: tr, http: &http.Client{
		Transport: tr,
		Timeout:   callbackTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

func (c *callbackClient) close() { c.transport.CloseIdleConnections() }

// post sends one callback and returns the status it got.
func (c *callbackClient) post(ctx context.Context, target, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("the callback URL cannot be requested")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Causeway")
	req.Header.Set(HeaderRequestID, id)
	resp, err := c.http.Do(req)
	if err != nil {
		// The URL is left out of the error: its query may hold the client's secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return 0, err
	}
	// The answer's body is read, to reuse the connection, and thrown away: it is the
	// client's, and is never logged or stored.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, fmt.Errorf("the callback answered HTTP %d (redirects are not followed)", resp.StatusCode)
	}
	return resp.StatusCode, fmt.Errorf("the callback answered HTTP %d", resp.StatusCode)
}

// final reports whether another attempt cannot go better: a refused address, a redirect,
// or a client error other than a timeout or a request to slow down.
func final(code int, err error) bool {
	if errors.Is(err, ErrCallbackRefused) {
		return true
	}
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return code >= 300 && code < 500
}

// callBack starts the delivery of a request's callback, unless the store is closing.
func (s *Store) callBack(rec *Record) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.log.Warn("store closing; callback not delivered", "request", rec.ID)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.deliver(s.ctx, rec)
	}()
}

// deliver posts the request's status to its callback URL, trying up to five times, and
// records the outcome. When ctx ends first (the node stops), the callback is dropped
// without an outcome.
func (s *Store) deliver(ctx context.Context, rec *Record) {
	log := s.log.With("request", rec.ID)
	out := CallbackOutcome{State: CallbackFailed}
	outcome := "failed"
	pol := s.policy(rec)
	ctx = context.WithValue(ctx, policyKey{}, &pol)
	if _, err := pol.match(rec.Callback); err != nil {
		// The policy changed since the request was accepted.
		out.LastError, outcome = err.Error(), "refused"
	} else if body, err := s.callbackBody(ctx, rec.ID); err != nil {
		out.LastError = err.Error()
	} else {
		for n := 1; n <= maxCallbackAttempts; n++ {
			out.Attempts = n
			code, err := s.client.post(ctx, rec.Callback, rec.ID, body)
			out.StatusCode = code
			if err == nil {
				out.State, out.LastError, outcome = CallbackDelivered, "", "delivered"
				break
			}
			out.LastError = err.Error()
			if errors.Is(err, ErrCallbackRefused) {
				outcome = "refused"
			}
			if ctx.Err() != nil {
				log.Warn("store closing; callback dropped", "attempt", n)
				return
			}
			if final(code, err) || n == maxCallbackAttempts {
				break
			}
			wait := s.cbBackoff << (n - 1)
			log.Info("callback attempt failed; trying again", "attempt", n, "in", wait, "err", err)
			if !sleep(ctx, wait) {
				log.Warn("store closing; callback dropped", "attempt", n)
				return
			}
		}
	}
	out.At = time.Now().UTC()
	s.metrics.callbacks.WithLabelValues(outcome).Inc()
	if out.State == CallbackDelivered {
		log.Info("callback delivered", "attempts", out.Attempts, "status", out.StatusCode)
	} else {
		log.Warn("callback failed", "attempts", out.Attempts, "status", out.StatusCode, "err", out.LastError)
	}
	data, err := json.Marshal(out)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = s.js.Publish(rctx, subject(rec.ID, "callback"), data, jetstream.WithExpectStream(Stream))
		cancel()
	}
	if err != nil {
		log.Warn("callback outcome not recorded", "err", err)
	}
}

// policy is the callback policy of a record: its own, or the store's.
func (s *Store) policy(rec *Record) CallbackPolicy {
	if rec.CallbackPolicy != nil {
		return *rec.CallbackPolicy
	}
	return s.opts.Callbacks
}

// callbackBody is what a callback posts: the request's status, as GET shows it.
func (s *Store) callbackBody(ctx context.Context, id string) ([]byte, error) {
	st, err := s.Status(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the status to send: %w", err)
	}
	return json.Marshal(st)
}
