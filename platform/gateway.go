package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/gateway/requests"
	"github.com/causeway/causeway/message"
	"github.com/causeway/causeway/system"
	"github.com/causeway/causeway/tracking"
)

// newGateway prepares the APIs: their calls go through the node's connectors and feed the
// systems' breakers; a system offline or in maintenance answers 503 with Retry-After; rate
// limits and quotas are shared with the other nodes through the CW_LIMITS bucket.
func (p *Platform) newGateway(ctx context.Context, webhooks []string) (*gateway.Gateway, error) {
	var limits jetstream.KeyValue
	if len(p.cfg.ByKind(gateway.Kind)) > 0 {
		// Quotas are counted per month at most, so two months of age loses nothing that
		// still counts. The counts are re-derivable in the sense that matters: a lost
		// count after a power loss admits a little more, never less.
		kv, err := p.bus.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: gateway.LimitsBucket, Description: "Causeway: the gateway's rate limits and quotas, shared by every node",
			History: 1, TTL: 62 * 24 * time.Hour, Storage: jetstream.FileStorage, Replicas: max(p.bus.Replicas(), 1),
		})
		if err != nil {
			return nil, fmt.Errorf("gateway limits bucket: %w", err)
		}
		limits = kv
	}
	var revocations *gateway.Revocations
	if len(p.cfg.ByKind(gateway.Kind)) > 0 {
		r, err := gateway.OpenRevocations(ctx, p.bus.JetStream(), p.bus.Replicas(), p.log)
		if err != nil {
			return nil, err
		}
		revocations = r
		p.revocations = r
	}
	var store *requests.Store
	if len(p.cfg.ByKind(gateway.Kind)) > 0 {
		st, err := requests.Open(ctx, requests.Options{Bus: p.bus, Node: p.opts.Node, Logger: p.log, Registerer: p.reg,
			Available: func(name string) (bool, time.Duration) {
				s, ok := p.status.Get(name)
				if !ok || s.Available() {
					return true, 0
				}
				if s.Until.IsZero() {
					return false, 0
				}
				return false, time.Until(s.Until)
			}})
		if err != nil {
			return nil, fmt.Errorf("gateway requests: %w", err)
		}
		store = st
		p.requests = store
	}
	// Without the fast lane no route is made ready for it.
	prepare := p.conns.PrepareHTTP
	if p.opts.NoFastLane || (p.opts.HTTPServer != "" && p.opts.HTTPServer != EngineLean) {
		prepare = nil
	}
	return gateway.New(gateway.Options{Config: p.cfg, Logger: p.log, Registerer: p.reg, Invoke: p.flows.InvokeFrom, Limits: limits,
		Requests: store, Revocations: revocations,
		Publish: func(ctx context.Context, ev *message.Event, header map[string]string) error {
			_, err := p.bus.PublishWith(ctx, ev, p.opts.Node, header)
			return err
		},
		Track: func(ctx context.Context, id, event, detail string) {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			ev := tracking.Event{MessageID: id, Event: event, Time: time.Now().UTC(), Node: p.opts.Node, Detail: detail}
			if err := tracking.Publish(tctx, p.bus.JetStream(), ev); err != nil {
				p.log.Warn("gateway: tracking event not stored", "message", id, "event", event, "err", err)
			}
		},
		Answer: func(ctx context.Context, name string, sys *system.Spec, op string, with map[string]any, info connector.CallInfo) (*connector.Outcome, error) {
			out, err := p.conns.Answer(ctx, name, sys, op, with, info)
			// A failure after the caller's deadline passed is not the system's; a success
			// is one whenever it came.
			if err == nil || ctx.Err() == nil {
				p.status.Observe(name, err)
			}
			return out, err
		},
		Prepare: prepare, Webhooks: webhooks,
		Observe: p.status.Observe,
		Unavailable: func(name string) (bool, time.Time) {
			s, ok := p.status.Get(name)
			return ok && !s.Available(), s.Until
		}})
}

// startRequests runs this node's share of the gateway's queue of requests waiting for their
// systems, until the store is closed.
func (p *Platform) startRequests() {
	if p.requests == nil {
		return
	}
	go func() {
		if err := p.requests.Work(context.Background(), p.gateway.Run); err != nil {
			p.log.Error("gateway queue worker stopped", "err", err)
		}
	}()
}
