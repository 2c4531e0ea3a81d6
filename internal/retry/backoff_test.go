package retry

import (
	"testing"
	"time"
)

// The waits begin at lo (a sink's MinBackoff) and double up to hi: the n-th is
// within [min·2ⁿ, min·2ⁿ⁺¹] and never beyond [min, max], as with
// loki-client-go's backoff.
func TestBackOffSchedule(t *testing.T) {
	for _, tc := range []struct{ lo, hi time.Duration }{
		{500 * time.Millisecond, 30 * time.Second}, // the defaults
		{20 * time.Millisecond, 80 * time.Millisecond},
		{time.Second, time.Second},
		{time.Second, 1500 * time.Millisecond},
	} {
		for range 200 {
			b := NewBackOff(tc.lo, tc.hi)
			b.Reset()
			for n := range 12 {
				got := b.NextBackOff()
				lo, hi := tc.lo<<n, tc.lo<<(n+1)
				if got < tc.lo || got > tc.hi {
					t.Fatalf("min %s, max %s: wait %d is %s, outside [min, max]", tc.lo, tc.hi, n, got)
				}
				if got < min(lo, tc.hi/2) || got > hi {
					t.Fatalf("min %s, max %s: wait %d is %s, want within [%s, %s]", tc.lo, tc.hi, n, got, min(lo, tc.hi/2), min(hi, tc.hi))
				}
			}
		}
	}
}
