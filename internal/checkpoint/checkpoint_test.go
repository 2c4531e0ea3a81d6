package checkpoint

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memStore is a Store in memory that can be made to fail.
type memStore struct {
	mu    sync.Mutex
	data  []byte
	saves int
	fail  error
}

func (m *memStore) Load(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data, nil
}

func (m *memStore) Save(_ context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.data, m.saves = append([]byte(nil), data...), m.saves+1
	return nil
}

func (m *memStore) get() ([]byte, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data, m.saves
}

// snapshots returns a snapshot func whose value the test sets.
type snapshots struct {
	mu  sync.Mutex
	cur string
}

func (s *snapshots) set(v string) { s.mu.Lock(); s.cur = v; s.mu.Unlock() }
func (s *snapshots) get() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []byte(s.cur), nil
}

// TestKeeperSavesChangesWhileLeading: a changed checkpoint is saved at the
// next interval, an unchanged one is not saved again, nothing is saved
// while another replica leads, a failed save is counted and tried again at
// the next interval, and Final saves what changed since the last tick. In
// a synctest bubble: the intervals are exact.
func TestKeeperSavesChangesWhileLeading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, snap := &memStore{}, &snapshots{}
		var lead atomic.Bool
		lead.Store(true)
		k, err := NewKeeper(store, snap.get, lead.Load, 10*time.Second, time.Second, prometheus.NewRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- k.Run(ctx) }()
		// tick waits out one interval and what it does.
		tick := func() { time.Sleep(10 * time.Second); synctest.Wait() }
		want := func(step, data string, saves int) {
			t.Helper()
			if got, n := store.get(); string(got) != data || n != saves {
				t.Errorf("%s: store holds %q after %d saves, want %q after %d", step, got, n, data, saves)
			}
		}
		snap.set("a")
		synctest.Wait()
		want("before the first interval", "", 0)
		tick()
		want("first interval", "a", 1)
		tick()
		tick()
		want("unchanged", "a", 1)

		lead.Store(false)
		snap.set("b")
		tick()
		want("another replica leads", "a", 1)

		lead.Store(true)
		store.mu.Lock()
		store.fail = errors.New("the API server is away")
		store.mu.Unlock()
		tick()
		if got := testutil.ToFloat64(k.saves.WithLabelValues(SaveFailed)); got != 1 {
			t.Errorf("saves_total{failed} = %v, want 1", got)
		}
		store.mu.Lock()
		store.fail = nil
		store.mu.Unlock()
		tick()
		want("tried again", "b", 2)

		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		snap.set("c")
		k.Final(t.Context())
		want("final", "c", 3)
		if got := testutil.ToFloat64(k.saves.WithLabelValues(SaveOK)); got != 3 {
			t.Errorf("saves_total{ok} = %v, want 3", got)
		}
	})
}
