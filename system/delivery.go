package system

import (
	"math/rand/v2"
	"time"

	"github.com/causeway/causeway/config"
)

// Delivery is how calls to a system are delivered when it fails.
type Delivery struct {
	// Retry is the retry path of a call that failed transiently.
	Retry *RetryPolicy `yaml:"retry" doc:"How a call that failed transiently is tried again: as a retry message scheduled on the bus, up to maxRetries times, then the errors queue."`
	// WhenOffline is what a delivery does while the system is offline or in maintenance.
	WhenOffline string `yaml:"whenOffline" default:"park" enum:"park,retry,fail" doc:"What a call to the system does while it is offline or in maintenance: park (held without calling or spending retries, released in order when it is back), retry (a transient failure: the retry path), fail (a permanent failure: the errors queue)."`
	// Concurrency bounds the calls to the system in progress at once, per node.
	Concurrency int `yaml:"concurrency" doc:"The most calls to the system in progress at once, on each node; further calls wait their turn. 0: no limit."`
	// RateLimit bounds the calls a second, per node.
	RateLimit *RateLimit `yaml:"rateLimit" doc:"The most calls to the system a second, on each node; further calls wait their turn."`
	// Release is how parked deliveries are let go when the system is back.
	Release *Release `yaml:"release" doc:"How parked deliveries are released when the system is back: in the order they were parked, the rate ramping up so that a recovering system is not flooded."`
}

// RateLimit is a rate of calls.
type RateLimit struct {
	// PerSecond is the sustained rate.
	PerSecond float64 `yaml:"perSecond" required:"true" doc:"Calls a second." example:"20"`
	// Burst is how many calls may go at once after a quiet spell.
	Burst int `yaml:"burst" default:"1" doc:"How many calls may go at once after a quiet spell."`
}

// Release is the rate at which parked deliveries are released.
type Release struct {
	// Rate is the most deliveries released a second, once ramped up.
	Rate float64 `yaml:"rate" default:"50" doc:"The most parked deliveries released a second (per node), once ramped up."`
	// RampUp is how long the rate takes to grow from a tenth of Rate to Rate.
	RampUp time.Duration `yaml:"rampUp" default:"30s" doc:"How long the release rate takes to grow from a tenth of rate to rate. 0 releases at rate from the start."`
}

// Offline modes.
const (
	WhenOfflinePark  = "park"
	WhenOfflineRetry = "retry"
	WhenOfflineFail  = "fail"
)

// DefaultRelease is the release of a system that declares none.
var DefaultRelease = Release{Rate: 50, RampUp: 30 * time.Second}

// OfflineMode returns the system's delivery.whenOffline (park by default).
func (s *Spec) OfflineMode() string {
	if s != nil && s.Delivery != nil && s.Delivery.WhenOffline != "" {
		return s.Delivery.WhenOffline
	}
	return WhenOfflinePark
}

// ReleasePolicy returns the system's release, or DefaultRelease.
func (s *Spec) ReleasePolicy() Release {
	if s != nil && s.Delivery != nil && s.Delivery.Release != nil {
		return *s.Delivery.Release
	}
	return DefaultRelease
}

// RateAt is the release rate a given time after the release began.
func (r Release) RateAt(elapsed time.Duration) float64 {
	if r.RampUp <= 0 || elapsed >= r.RampUp {
		return r.Rate
	}
	return r.Rate * (0.1 + 0.9*float64(elapsed)/float64(r.RampUp))
}

// RetryPolicy says how often and how late a failed delivery is tried again.
type RetryPolicy struct {
	// MaxRetries is how many retry messages a delivery may become.
	MaxRetries int `yaml:"maxRetries" default:"5" doc:"How many times a delivery that failed transiently is tried again (each a retry message with retrycount + 1); then it goes to the errors queue. 0 sends it there at once."`
	// Backoff is exponential or fixed.
	Backoff string `yaml:"backoff" default:"exponential" enum:"exponential,fixed" doc:"exponential: the delay doubles with every retry, from initialDelay up to maxDelay; fixed: every retry waits initialDelay."`
	// InitialDelay is the wait before the first retry.
	InitialDelay time.Duration `yaml:"initialDelay" default:"5s" doc:"The wait before the first retry (whole seconds: the bus schedules to the second)."`
	// MaxDelay caps the wait.
	MaxDelay time.Duration `yaml:"maxDelay" default:"10m" doc:"The longest wait before a retry."`
	// Jitter spreads the waits.
	Jitter float64 `yaml:"jitter" default:"0.2" doc:"A random share of each wait, from 0 to 1, added or taken off, so that messages that failed together are not all retried at the same second."`
}

// DefaultRetry is the retry policy of a system that declares none.
var DefaultRetry = RetryPolicy{MaxRetries: 5, Backoff: "exponential", InitialDelay: 5 * time.Second, MaxDelay: 10 * time.Minute, Jitter: 0.2}

// RetryPolicy returns the system's retry policy, or DefaultRetry.
func (s *Spec) RetryPolicy() RetryPolicy {
	if s != nil && s.Delivery != nil && s.Delivery.Retry != nil {
		return *s.Delivery.Retry
	}
	return DefaultRetry
}

// Delay is the wait before retry number n (1 for the first).
func (p RetryPolicy) Delay(n int) time.Duration {
	d := p.InitialDelay
	if p.Backoff != "fixed" {
		for i := 1; i < n && d < p.MaxDelay; i++ {
			d *= 2
		}
	}
	d = min(d, p.MaxDelay)
	if p.Jitter > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * p.Jitter * float64(d))
	}
	return max(d, time.Second)
}

// validateDelivery checks the delivery policy.
func (s *Spec) validateDelivery(ctx *config.Context) {
	if s.Delivery == nil {
		return
	}
	if r := s.Delivery.Release; r != nil && (r.Rate <= 0 || r.Rate > 100000 || r.RampUp < 0) {
		ctx.Errorf("delivery.release", "rate must be more than 0 and at most 100000 a second, rampUp 0 or more")
	}
	if s.Delivery.Retry != nil {
		CheckRetry(ctx, "delivery.retry", s.Delivery.Retry)
	}
	if s.Delivery.Concurrency < 0 {
		ctx.Errorf("delivery.concurrency", "must be 0 (no limit) or more")
	}
	if r := s.Delivery.RateLimit; r != nil && (r.PerSecond <= 0 || r.Burst < 1) {
		ctx.Errorf("delivery.rateLimit", "perSecond must be more than 0 and burst at least 1")
	}
}

// CheckRetry checks a retry policy written at field.
func CheckRetry(ctx *config.Context, field string, r *RetryPolicy) {
	if r.MaxRetries < 0 || r.MaxRetries > 1000 {
		ctx.Errorf(field+".maxRetries", "must be between 0 and 1000")
	}
	if r.InitialDelay < time.Second {
		ctx.Errorf(field+".initialDelay", "must be at least 1s: the bus schedules retries to the second")
	}
	if r.MaxDelay < r.InitialDelay {
		ctx.Errorf(field+".maxDelay", "must be at least initialDelay")
	}
	if r.Jitter < 0 || r.Jitter > 1 {
		ctx.Errorf(field+".jitter", "must be between 0 and 1")
	}
}
