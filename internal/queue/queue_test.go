package queue

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// worker records the batches it is handed, at the (fake) time it gets them;
// block makes Deliver wait for its context to end.
type worker struct {
	mu      sync.Mutex
	batches [][]int
	at      []time.Duration
	start   time.Time
	block   bool
	flushed int
}

func (w *worker) Deliver(ctx context.Context, batch []int) {
	if w.block {
		<-ctx.Done()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.batches = append(w.batches, slices.Clone(batch))
	w.at = append(w.at, time.Since(w.start))
}

func (w *worker) Flush(ctx context.Context) error {
	w.flushed++
	return ctx.Err()
}

func (w *worker) got() [][]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.batches)
}

func newQueue(t *testing.T, cfg Config[int]) *Queue[int] {
	t.Helper()
	if cfg.Dropped == nil {
		cfg.Dropped = NewDropCounter("test", "Test items dropped.", "push_failed")
	}
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func dropped(q *Queue[int], reason string) float64 {
	return testutil.ToFloat64(q.cfg.Dropped.WithLabelValues(reason))
}

// Batches close at MaxItems, at MaxBytes, or Wait after their first item,
// whichever comes first.
func TestBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config[int]{Size: 100, MaxItems: 3, MaxBytes: 10, Bytes: func(v int) int { return v }, Wait: time.Second, FlushTimeout: time.Second})
		w := &worker{start: time.Now()}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- q.Run(ctx, w) }()
		for _, v := range []int{1, 1, 1, 2, 9, 4} { // 3 items; 11 bytes > 10 before 9; 9+4 > 10
			q.Send(v)
		}
		synctest.Wait()
		time.Sleep(time.Second) // the last batch waits a second
		synctest.Wait()
		want := [][]int{{1, 1, 1}, {2}, {9}, {4}}
		if got := w.got(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("batches %v, want %v", got, want)
		}
		if w.at[2] != 0 || w.at[3] != time.Second {
			t.Errorf("delivered at %v, want the last batch after Wait (1s) and the others at once", w.at)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if w.flushed != 1 {
			t.Errorf("flushed %d times, want once", w.flushed)
		}
	})
}

// Send never blocks: a full queue drops, counted; so does a stopped one.
// A replica that does not lead neither queues nor counts.
func TestSendNeverBlocks(t *testing.T) {
	leading := false
	q := newQueue(t, Config[int]{Size: 2, Weight: func(v int) int { return v }, Gate: func() bool { return leading }, FlushTimeout: time.Second})
	q.Send(5)
	if q.Len() != 0 || dropped(q, ReasonQueueFull)+dropped(q, ReasonShutdown) != 0 {
		t.Fatalf("not leading: %d queued, drops counted", q.Len())
	}
	leading = true
	for _, v := range []int{1, 2, 3, 4} {
		q.Send(v)
	}
	if q.Len() != 2 || dropped(q, ReasonQueueFull) != 7 {
		t.Errorf("%d queued and %v dropped queue_full, want 2 and 3+4 (weighed)", q.Len(), dropped(q, ReasonQueueFull))
	}
	q.close()
	q.Send(6)
	if dropped(q, ReasonShutdown) != 6 {
		t.Errorf("dropped shutdown %v after close, want 6", dropped(q, ReasonShutdown))
	}
}

// When Run's context ends, what is queued is still delivered, and Run
// returns once it is.
func TestRunFlushesOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config[int]{Size: 10, FlushTimeout: time.Second})
		for v := range 5 {
			q.Send(v)
		}
		w := &worker{start: time.Now()}
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // stopped before the worker ran at all
		if err := q.Run(ctx, w); err != nil {
			t.Fatal(err)
		}
		if got := w.got(); len(got) != 5 || time.Since(w.start) != 0 {
			t.Errorf("delivered %v in %v, want the 5 queued at once", got, time.Since(w.start))
		}
		if dropped(q, ReasonShutdown) != 0 {
			t.Errorf("dropped %v at shutdown, want none", dropped(q, ReasonShutdown))
		}
	})
}

// A worker that cannot deliver (a Loki that does not answer) holds the
// flush for FlushTimeout, not longer; what is left is dropped, reason
// shutdown.
func TestFlushTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config[int]{Size: 10, FlushTimeout: 3 * time.Second})
		w := &worker{block: true}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- q.Run(ctx, w) }()
		for v := range 4 {
			q.Send(v)
		}
		synctest.Wait() // the worker blocks on the first item
		start := time.Now()
		cancel()
		<-done
		if took := time.Since(start); took != 3*time.Second {
			t.Errorf("flush took %v, want the flush timeout, 3s", took)
		}
		if d := dropped(q, ReasonShutdown); d != 3 {
			t.Errorf("dropped %v at shutdown, want the 3 never handed to the worker", d)
		}
	})
}

func TestNewChecksItsConfig(t *testing.T) {
	if _, err := New(Config[int]{Size: 0, Dropped: NewDropCounter("x", "x")}); err == nil {
		t.Error("size 0 accepted")
	}
	if _, err := New(Config[int]{Size: 1}); err == nil {
		t.Error("no drop counter accepted")
	}
}
