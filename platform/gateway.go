package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/system"
)

// newGateway prepares the APIs: their calls go through the node's connectors and feed the
// systems' breakers; a system offline or in maintenance answers 503 with Retry-After; rate
// limits and quotas are shared with the other nodes through the CW_LIMITS bucket.
func (p *Platform) newGateway(ctx context.Context) (*gateway.Gateway, error) {
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
	return gateway.New(gateway.Options{Config: p.cfg, Logger: p.log, Registerer: p.reg, Invoke: p.flows.Invoke, Limits: limits,
		Answer: func(ctx context.Context, name string, sys *system.Spec, op string, with map[string]any, info connector.CallInfo) (*connector.Outcome, error) {
			out, err := p.conns.Answer(ctx, name, sys, op, with, info)
			if ctx.Err() == nil {
				p.status.Observe(name, err)
			}
			return out, err
		},
		Unavailable: func(name string) (bool, time.Time) {
			s, ok := p.status.Get(name)
			return ok && !s.Available(), s.Until
		}})
}
