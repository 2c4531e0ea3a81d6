package leader

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// memLeases is one namespace's Leases in memory, with the API server's
// optimistic concurrency: an update of an older resourceVersion conflicts.
type memLeases struct {
	mu     sync.Mutex
	leases map[string]*coordinationv1.Lease
	rv     int
	down   atomic.Bool // every call fails, as an unreachable API server
}

var leaseResource = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (m *memLeases) Get(_ context.Context, name string) (*coordinationv1.Lease, error) {
	if m.down.Load() {
		return nil, apierrors.NewServiceUnavailable("down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[name]
	if !ok {
		return nil, apierrors.NewNotFound(leaseResource, name)
	}
	return l.DeepCopy(), nil
}

func (m *memLeases) Create(_ context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	if m.down.Load() {
		return nil, apierrors.NewServiceUnavailable("down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.leases[l.Name]; ok {
		return nil, apierrors.NewAlreadyExists(leaseResource, l.Name)
	}
	m.rv++
	c := l.DeepCopy()
	c.ResourceVersion = string(rune('a' + m.rv))
	m.leases[l.Name] = c
	return c.DeepCopy(), nil
}

func (m *memLeases) Update(_ context.Context, l *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	if m.down.Load() {
		return nil, apierrors.NewServiceUnavailable("down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.leases[l.Name]
	if !ok || cur.ResourceVersion != l.ResourceVersion {
		return nil, apierrors.NewConflict(leaseResource, l.Name, nil)
	}
	m.rv++
	c := l.DeepCopy()
	c.ResourceVersion = string(rune('a' + m.rv))
	m.leases[l.Name] = c
	return c.DeepCopy(), nil
}

func (m *memLeases) holder() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.leases["crowsnest"]; ok && l.Spec.HolderIdentity != nil {
		return *l.Spec.HolderIdentity
	}
	return ""
}

// candidate runs an elector for id on leases until its context ends.
type candidate struct {
	leading atomic.Bool
	starts  atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func campaign(t *testing.T, leases Leases, id string) *candidate {
	t.Helper()
	c := &candidate{done: make(chan struct{})}
	e, err := New(Config{Leases: leases, Name: "crowsnest", Identity: id, LeaseDuration: 600 * time.Millisecond,
		RenewDeadline: 400 * time.Millisecond, RetryPeriod: 50 * time.Millisecond,
		OnStarted: func() { c.leading.Store(true); c.starts.Add(1) }, OnStopped: func() { c.leading.Store(false) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			e.Run(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One leader at a time; a stopping leader hands over at once; a leader
// that cannot renew steps down, and its Lease is taken once it expires.
func TestOneLeaderHandsOver(t *testing.T) {
	leases := &memLeases{leases: map[string]*coordinationv1.Lease{}}
	a := campaign(t, leases, "a")
	waitFor(t, "a leading", a.leading.Load)
	b := campaign(t, leases, "b")
	time.Sleep(800 * time.Millisecond) // more than a lease duration: a renews
	if b.leading.Load() || leases.holder() != "a" {
		t.Fatalf("b leads (%v) or holder %q while a renews", b.leading.Load(), leases.holder())
	}
	// a stops: it releases, b takes over within a few retry periods, well
	// before the Lease would have expired.
	stopped := time.Now()
	a.cancel()
	<-a.done
	if a.leading.Load() {
		t.Error("a still says it leads after stopping")
	}
	waitFor(t, "b leading", b.leading.Load)
	if took := time.Since(stopped); took > 400*time.Millisecond {
		t.Errorf("b took over %v after a released, want a few retry periods", took)
	}
	if l, _ := leases.Get(context.Background(), "crowsnest"); *l.Spec.LeaseTransitions != 1 {
		t.Errorf("lease transitions %d, want 1", *l.Spec.LeaseTransitions)
	}
	// The API server goes away: b steps down within its renew deadline.
	leases.down.Store(true)
	waitFor(t, "b stepping down", func() bool { return !b.leading.Load() })
	leases.down.Store(false)
	waitFor(t, "b leading again", b.leading.Load)
	if b.starts.Load() != 2 {
		t.Errorf("b started leading %d times, want 2", b.starts.Load())
	}
}

// A crashed leader (no release) is replaced once its Lease expired, not
// before.
func TestExpiredLeaseIsTaken(t *testing.T) {
	leases := &memLeases{leases: map[string]*coordinationv1.Lease{}}
	id, secs := "crashed", int32(1)
	leases.leases["crowsnest"] = &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs}}
	leases.leases["crowsnest"].Name, leases.leases["crowsnest"].ResourceVersion = "crowsnest", "x"
	start := time.Now()
	b := campaign(t, leases, "b")
	waitFor(t, "b leading", b.leading.Load)
	if took := time.Since(start); took < time.Second {
		t.Errorf("b took the Lease after %v, before its 1 s expired", took)
	}
}

func TestNewChecksDurations(t *testing.T) {
	if _, err := New(Config{Leases: &memLeases{}, Name: "n", Identity: "i", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond}); err == nil {
		t.Error("a renew deadline longer than the lease duration was accepted")
	}
}
