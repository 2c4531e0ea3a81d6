// Package retry holds the backoff crowsnest's sinks (Loki, CloudEvents)
// retry their pushes with.
package retry

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// backoffJitter is the spread of each wait around its interval: ±1/3 of
// 1.5·d is [d, 2d], the range loki-client-go's backoff drew from.
const backoffJitter = 1.0 / 3

// NewBackOff returns the waits between attempts: the n-th wait
// (n = 0, 1, ...) is drawn from [lo·2ⁿ, lo·2ⁿ⁺¹], and no wait is shorter
// than lo or longer than hi: the waits begin at MinBackoff and double up to
// MaxBackoff, with jitter.
func NewBackOff(lo, hi time.Duration) backoff.BackOff {
	return &boundedBackOff{
		ExponentialBackOff: backoff.ExponentialBackOff{
			InitialInterval:     lo * 3 / 2,
			RandomizationFactor: backoffJitter,
			Multiplier:          2,
			MaxInterval:         hi * 3 / 4, // drawn from [hi/2, hi] once there
		},
		lo: lo,
		hi: hi,
	}
}

// boundedBackOff is an ExponentialBackOff whose waits are clamped to
// [lo, hi]: the library caps the interval, not the randomized wait, and
// does not cap the first interval.
type boundedBackOff struct {
	backoff.ExponentialBackOff
	lo, hi time.Duration
}

// NextBackOff implements backoff.BackOff.
func (b *boundedBackOff) NextBackOff() time.Duration {
	return min(max(b.ExponentialBackOff.NextBackOff(), b.lo), b.hi)
}
