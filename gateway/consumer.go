package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/causeway/causeway/config"
)

// ConsumerKind is the kind name of API consumers.
const ConsumerKind = "Consumer"

const consumerDoc = `A Consumer is a client of the gateway's APIs: an application, a partner, a team. It holds
API keys, stored only as their SHA-256 hashes (causeway consumers key prints a new key and
the hash to put here), the scopes it is granted, which APIs it may call, and limits that
replace an API's rate limit and quota for it (a plan or tier). A key is revoked by marking it
revoked (or removing it): every node refuses it once the definitions are deployed. A leaked
key can be refused at once, without a deployment: causeway consumers revoke.`

const consumerExample = `apiVersion: causeway/v1
kind: Consumer
metadata:
  name: webshop
  description: The public web shop
spec:
  keys:
    - name: 2026-11
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    - name: 2026-05
      sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
      revoked: true
  scopes: ["orders:read", "orders:write"]
  apis: [orders]
  rateLimit: {requests: 50, per: 1s}`

// ConsumerSpec is the spec of a Consumer.
type ConsumerSpec struct {
	// Keys are the consumer's API keys, as hashes.
	Keys []*ConsumerKey `yaml:"keys" doc:"The consumer's API keys, by SHA-256 hash. Several at once let a key be rotated without downtime."`
	// Subjects are JWT subjects that are this consumer.
	Subjects []string `yaml:"subjects" doc:"Values of a JWT's consumer claim (sub by default) that mean this consumer, so its scopes, limits and usage apply to token holders too."`
	// Scopes are granted to the consumer.
	Scopes []string `yaml:"scopes" doc:"Scopes granted to the consumer, checked against routes' required scopes."`
	// APIs limits the APIs the consumer may call.
	APIs []string `yaml:"apis" doc:"The APIs the consumer may call; all when not set. Others answer it 403."`
	// RateLimit replaces the APIs' rate limits for this consumer.
	RateLimit *RateLimit `yaml:"rateLimit" doc:"Replaces the rate limit of the APIs it calls, for this consumer (a plan)."`
	// Quota replaces the APIs' quotas for this consumer.
	Quota *Quota `yaml:"quota" doc:"Replaces the quota of the APIs it calls, for this consumer (a plan)."`
}

// ConsumerKey is one API key, by hash.
type ConsumerKey struct {
	// Name tells keys apart (for rotation and logs).
	Name string `yaml:"name" required:"true" doc:"A name for the key, shown in logs and metrics instead of the key."`
	// SHA256 is the hex SHA-256 of the key.
	SHA256 string `yaml:"sha256" required:"true" doc:"The key's SHA-256 hash, in hex. The key itself is never stored."`
	// Revoked refuses the key.
	Revoked bool `yaml:"revoked" doc:"Refuse the key (401 key revoked)."`
	// Expires ends the key's validity.
	Expires time.Time `yaml:"expires" doc:"When the key stops being accepted (RFC 3339)."`

	hash [sha256.Size]byte
}

// RegisterConsumer adds the Consumer kind to r.
func RegisterConsumer(r *config.Registry) error {
	return r.Register(config.Kind{Name: ConsumerKind, Doc: consumerDoc, Example: consumerExample, New: func() any { return new(ConsumerSpec) }})
}

// Provision checks the key hashes and the limits.
func (s *ConsumerSpec) Provision(ctx *config.Context) error {
	names := map[string]bool{}
	for i, k := range s.Keys {
		at := fmt.Sprintf("keys[%d]", i)
		if names[k.Name] {
			ctx.Errorf(at+".name", "%q is the name of another key", k.Name)
		}
		names[k.Name] = true
		b, err := hex.DecodeString(strings.ToLower(k.SHA256))
		if err != nil || len(b) != sha256.Size {
			ctx.Errorf(at+".sha256", "not a SHA-256 hash in hex (64 hex digits); causeway consumers key prints one")
			continue
		}
		copy(k.hash[:], b)
	}
	p := &Policies{RateLimit: s.RateLimit, Quota: s.Quota}
	p.provision(ctx, "")
	return ctx.Err()
}

// Validate checks that the APIs named exist and that no key is another consumer's.
func (s *ConsumerSpec) Validate(ctx *config.Context) error {
	for i, name := range s.APIs {
		if _, ok := ctx.Lookup(Kind, name); !ok {
			ctx.Errorf(fmt.Sprintf("apis[%d]", i), "no API %q is defined", name)
		}
	}
	for _, other := range ctx.All(ConsumerKind) {
		if other.Metadata.Name == ctx.Name() {
			continue
		}
		for i, k := range s.Keys {
			for _, ok := range other.Spec.(*ConsumerSpec).Keys {
				if ok.hash == k.hash {
					ctx.Errorf(fmt.Sprintf("keys[%d].sha256", i), "the same key as Consumer %s's key %s", other.Metadata.Name, ok.Name)
				}
			}
		}
		for i, sub := range s.Subjects {
			for _, os := range other.Spec.(*ConsumerSpec).Subjects {
				if os == sub {
					ctx.Errorf(fmt.Sprintf("subjects[%d]", i), "%q is also a subject of Consumer %s", sub, other.Metadata.Name)
				}
			}
		}
	}
	return ctx.Err()
}

// NewKey makes a random API key and its hash for a Consumer definition. Keys carry 256 bits
// of randomness, so a plain SHA-256 is a safe way to store them: there is nothing to guess.
func NewKey() (key, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	key = "cw_" + base64.RawURLEncoding.EncodeToString(b)
	return key, HashKey(key), nil
}

// HashKey is the hash a Consumer definition holds for key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
