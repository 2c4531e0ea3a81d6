package daemon

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
)

type flag struct{ atomic.Bool }

func (f *flag) Ready() bool { return f.Load() }

// The start-up gauge appears once the source is ready, with the time since
// start, and not before.
func TestWaitReadyPublishesStartupDuration(t *testing.T) {
	reg := prometheus.NewRegistry()
	src := &flag{}
	start := time.Now().Add(-3 * time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitReady(context.Background(), start, src, func() int { return 7 }, reg, promslog.NewNopLogger(), func() {})
	}()
	time.Sleep(3 * startupPoll)
	if n, _ := testutil.GatherAndCount(reg, "crowsnest_startup_duration_seconds"); n != 0 {
		t.Fatalf("%d start-up series before the source was ready, want none", n)
	}
	src.Store(true)
	<-done
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gathered %v, %v; want the start-up gauge", mfs, err)
	}
	if v := mfs[0].GetMetric()[0].GetGauge().GetValue(); v < 3 || v > 60 {
		t.Errorf("crowsnest_startup_duration_seconds = %v, want the ~3 s since start", v)
	}
}

// waitReady returns when its context ends, ready or not.
func TestWaitReadyStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		waitReady(ctx, time.Now(), &flag{}, func() int { return 0 }, prometheus.NewRegistry(), promslog.NewNopLogger(), func() {})
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waitReady did not return once its context ended")
	}
}
