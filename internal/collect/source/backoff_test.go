package source

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/crowsnest/crowsnest/internal/argocd/client/fake"
)

// logRecorder is a slog.Handler that keeps every record, at every level.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// at returns the records of level.
func (h *logRecorder) at(level slog.Level) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Level == level {
			out = append(out, r)
		}
	}
	return out
}

// attr returns the value of the attribute key of r.
func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

func TestRetryBackOffDoublesUpToMax(t *testing.T) {
	b := newRetryBackOff(retryInitial, retryMax)
	b.Reset()
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := b.NextBackOff(); got != w {
			t.Fatalf("wait %d = %v, want %v", i+1, got, w)
		}
	}
	b.Reset()
	if got := b.NextBackOff(); got != retryInitial {
		t.Errorf("after Reset, wait = %v, want %v", got, retryInitial)
	}
}

func newTestKubeSource(logs *logRecorder) (*KubeSource, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return NewKubeSource(fake.NewSimpleClientset(), nil, NewSourceMetrics(reg), slog.New(logs)), reg
}

func TestKubeRetryRetriesUntilSuccessLoggingOnce(t *testing.T) {
	logs := &logRecorder{}
	src, reg := newTestKubeSource(logs)
	var calls atomic.Int32
	err := src.retry(context.Background(), "", "list", func() error {
		if calls.Add(1) <= 2 {
			return errors.New("connection refused")
		}
		return nil
	})
	if err != nil || calls.Load() != 3 {
		t.Fatalf("retry = %v after %d calls, want nil after 3", err, calls.Load())
	}
	if n := len(logs.at(slog.LevelError)); n != 1 {
		t.Errorf("%d error logs for one outage of two failed calls, want 1", n)
	}
	if up := gathered(t, reg, "crowsnest_source_up", "source", "kubernetes"); up != 1 {
		t.Errorf("crowsnest_source_up = %v after the call succeeded, want 1", up)
	}
}

func TestKubeRetryReturnsErrorsRetryingCannotFix(t *testing.T) {
	src, _ := newTestKubeSource(&logRecorder{})
	gone := apierrors.NewResourceExpired("too old resource version")
	var calls atomic.Int32
	err := src.retry(context.Background(), "", "watch", func() error {
		calls.Add(1)
		return gone
	})
	if !apierrors.IsResourceExpired(err) || calls.Load() != 1 {
		t.Errorf("retry = %v after %d calls, want the 410 Expired after 1", err, calls.Load())
	}
}

func TestKubeRetryStopsWhenContextIsDone(t *testing.T) {
	src, reg := newTestKubeSource(&logRecorder{})
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- src.retry(ctx, "", "list", func() error {
			calls.Add(1)
			return apierrors.NewServiceUnavailable("etcd is away")
		})
	}()
	waitFor(t, "a second call", func() bool { return calls.Load() >= 2 })
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("retry = nil after ctx was cancelled, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("retry did not return after ctx was cancelled")
	}
	if up := gathered(t, reg, "crowsnest_source_up", "source", "kubernetes"); up != 0 {
		t.Errorf("crowsnest_source_up = %v while calls fail, want 0", up)
	}
}
