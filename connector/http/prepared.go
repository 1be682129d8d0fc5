package httpconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/telemetry"
)

// Prepared is an operation made ready once for a caller on a hot path (the gateway's fast
// lane, ADR 0013): its path is split into literal pieces and placeholders when it is
// prepared, so that a call fills the placeholders by position, with no map of parameters,
// no template scan and no URL parse per call. A call goes through the same exchange,
// headers, authentication, error sorting, answer checks and metrics as Do.
type Prepared struct {
	c      *Client
	name   string
	opName string
	sys    *system.HTTP
	op     *system.HTTPOperation
	sc     *sysClient
	// base is the base URL without its trailing slash; pieces alternate literal path
	// text and placeholders.
	base   string
	pieces []piece
	params []string
	// calls are the operation's call metrics.
	calls *telemetry.Call
}

// piece is literal path text, or a placeholder (param ≥ 0: the index of its value).
type piece struct {
	text  string
	param int
}

// Forwarded are the X-Forwarded-For, -Proto and -Host fields a gateway passes on to a
// backend. They come first among the request's headers, as Call.Forward does: every other
// header of the system, the operation or the call wins over them.
type Forwarded struct {
	For, Proto, Host string
}

// PreparedCall is one call of a prepared operation.
type PreparedCall struct {
	// Forwarded are the X-Forwarded-* fields to send.
	Forwarded Forwarded
	// Forward are more headers passed on from a gateway's client (name, value), with the
	// precedence of Call.Forward.
	Forward [][2]string
	// Body is sent as the request's body, as JSON, when it is not nil: already encoded,
	// as Do would encode Call.Body.
	Body []byte
	// IdempotencyKey and Traceparent are sent as in Call.
	IdempotencyKey, Traceparent string
	// NewTrace, with no Traceparent, sends a new trace's traceparent (as
	// message.NewTraceparent makes it), written straight into the request.
	NewTrace bool
	// Deadline, when not zero, ends the call as a deadline of its context would (the
	// sooner of the two counts): a caller whose deadline is its only reason for a context
	// spares making one.
	Deadline time.Time
	// Raw and NoHeaders ask for the answer as in Call.
	Raw, NoHeaders bool
}

// Prepare makes operation opName of the system named name ready for PreparedCall calls.
// Only what needs no more than path parameters can be prepared: an operation with a query
// of its own, or a system that follows redirects or is reached through a proxy from the
// environment, is called with Do; the error says which.
func (c *Client) Prepare(name string, sys *system.Spec, opName string) (*Prepared, error) {
	op, ok := sys.Operation(opName)
	if !ok || op.HTTP == nil || sys.HTTP == nil {
		return nil, errors.New("no such HTTP operation")
	}
	h := op.HTTP
	switch {
	case len(h.Query) > 0:
		return nil, errors.New("the operation has a query of its own")
	case strings.ContainsAny(sys.HTTP.BaseURL, "?#"):
		return nil, errors.New("the base URL has a query or a fragment")
	}
	sc := c.client(name, sys.HTTP)
	if !sc.fast {
		return nil, errors.New("the system follows redirects or is reached through a proxy")
	}
	p := &Prepared{c: c, name: name, opName: opName, sys: sys.HTTP, op: h, sc: sc, base: strings.TrimSuffix(sys.HTTP.BaseURL, "/"),
		calls: c.metrics.Call("http", name, opName)}
	// The same scan as buildURL's, once.
	rest := h.Path
	for {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest[max(i, 0):], '}')
		if i < 0 || j < 0 {
			if rest != "" {
				p.pieces = append(p.pieces, piece{text: rest, param: -1})
			}
			break
		}
		j += i
		if i > 0 {
			p.pieces = append(p.pieces, piece{text: rest[:i], param: -1})
		}
		p.pieces = append(p.pieces, piece{text: rest[i+1 : j], param: len(p.params)})
		p.params = append(p.params, rest[i+1:j])
		rest = rest[j+1:]
	}
	return p, nil
}

// Params names the path's placeholders, in the order a call gives their values. A name
// that appears twice is named twice.
func (p *Prepared) Params() []string { return p.params }

// Do makes one call, with params the values of the path's placeholders in the order Params
// names them. They are an argument of their own, not a field of call, so that a caller's
// array of them can stay on its stack: the call's body is kept by the request, and escape
// analysis does not tell one field of a struct from another.
func (p *Prepared) Do(ctx context.Context, params []string, call *PreparedCall) (*Result, error) {
	start := time.Now()
	res, err := p.do(ctx, params, call)
	took := time.Since(start)
	p.calls.Observe(outcomeOf(err), took)
	if res != nil {
		res.Duration = took
	}
	return res, err
}

func (p *Prepared) do(ctx context.Context, params []string, pc *PreparedCall) (*Result, error) {
	switch {
	case len(params) < len(p.params):
		return nil, &Error{System: p.name, Operation: p.opName, Err: fmt.Errorf("the path %s needs the parameter %s", p.op.Path, strings.Join(p.params[len(params):], ", "))}
	case len(params) > len(p.params):
		return nil, &Error{System: p.name, Operation: p.opName, Err: fmt.Errorf("the path %s has %d parameters, the call gave %d", p.op.Path, len(p.params), len(params))}
	}
	n := len(p.base)
	for _, pc := range p.pieces {
		n += len(pc.text)
	}
	var b strings.Builder
	b.Grow(n + 16)
	b.WriteString(p.base)
	for _, pi := range p.pieces {
		if pi.param < 0 {
			b.WriteString(pi.text)
			continue
		}
		v := params[pi.param]
		if v == "." || v == ".." {
			// As in buildURL: a server resolves dots, which percent-encoding leaves alone.
			return nil, &Error{System: p.name, Operation: p.opName, Err: fmt.Errorf("the path %s: parameter %s may not be . or ..", p.op.Path, pi.text)}
		}
		b.WriteString(url.PathEscape(v))
	}
	if !pc.Deadline.IsZero() && (p.sys.Auth != nil || p.op.ResponseMapping() != nil) {
		// Fetching credentials and the operation's response mapping end with the
		// context: it gets the deadline.
		if d, ok := ctx.Deadline(); !ok || pc.Deadline.Before(d) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, pc.Deadline)
			defer cancel()
		}
	}
	timeout, deadline, _ := callDeadline(ctx, pc.Deadline, p.sys, p.op)
	call := Call{IdempotencyKey: pc.IdempotencyKey, Traceparent: pc.Traceparent, Raw: pc.Raw, NoHeaders: pc.NoHeaders}
	x := exchange{method: p.op.Method, url: b.String(), body: pc.Body, call: call, fwd: pc.Forwarded, forwarded: true, fwdMore: pc.Forward, sys: p.sys, op: p.op, limit: responseLimit(p.sys), deadline: deadline,
		newTrace: pc.NewTrace && pc.Traceparent == ""}
	ans, err := p.c.fastExchange(ctx, p.name, p.sc, &x)
	if err != nil {
		return nil, exchangeError(ctx, p.name, p.opName, timeout, x.limit, err)
	}
	return finish(ctx, p.name, p.opName, &x, &ans)
}
