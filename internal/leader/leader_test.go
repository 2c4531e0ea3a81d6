package leader

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
)

// memLeases is Leases in memory, with the API server's optimistic
// concurrency: an update of an older resourceVersion conflicts. (client-go's
// fake clientset does not check resourceVersions.)
type memLeases struct {
	mu     sync.Mutex
	leases map[string]*coordinationv1.Lease // by namespace/name
	rv     int
	down   atomic.Bool // every call fails, as an unreachable API server
}

func newMemLeases() *memLeases { return &memLeases{leases: map[string]*coordinationv1.Lease{}} }

var leaseResource = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

// Leases implements coordinationv1client.LeasesGetter.
func (m *memLeases) Leases(ns string) coordinationv1client.LeaseInterface {
	return memLeaseInterface{m: m, ns: ns}
}

// memLeaseInterface implements the three calls client-go's LeaseLock
// makes; the others are nil and panic.
type memLeaseInterface struct {
	coordinationv1client.LeaseInterface
	m  *memLeases
	ns string
}

func (i memLeaseInterface) Get(_ context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	m := i.m
	if m.down.Load() {
		return nil, apierrors.NewServiceUnavailable("down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[i.ns+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(leaseResource, name)
	}
	return l.DeepCopy(), nil
}

func (i memLeaseInterface) Create(_ context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	m := i.m
	if m.down.Load() {
		return nil, apierrors.NewServiceUnavailable("down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.leases[i.ns+"/"+l.Name]; ok {
		return nil, apierrors.NewAlreadyExists(leaseResource, l.Name)
	}
	return m.store(i.ns, l), nil
}

func (i memLeaseInterface) Update(_ context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	m := i.m
	if m.down.Load() {
		return nil, apierrors.NewServiceUnavailable("down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.leases[i.ns+"/"+l.Name]
	if !ok || cur.ResourceVersion != l.ResourceVersion {
		return nil, apierrors.NewConflict(leaseResource, l.Name, nil)
	}
	return m.store(i.ns, l), nil
}

// store keeps a copy of l with a new resourceVersion; m.mu is held.
func (m *memLeases) store(ns string, l *coordinationv1.Lease) *coordinationv1.Lease {
	m.rv++
	c := l.DeepCopy()
	c.Namespace, c.ResourceVersion = ns, string(rune('a'+m.rv))
	m.leases[ns+"/"+l.Name] = c
	return c.DeepCopy()
}

// lease returns a copy of the test's Lease, nil if there is none.
func (m *memLeases) lease() *coordinationv1.Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leases["ns/crowsnest"].DeepCopy()
}

func (m *memLeases) holder() string {
	if l := m.lease(); l != nil && l.Spec.HolderIdentity != nil {
		return *l.Spec.HolderIdentity
	}
	return ""
}

// The tests' durations, as the flags' defaults: under synctest they take
// no real time.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

// candidate runs an elector for id on leases until its context ends.
type candidate struct {
	leading       atomic.Bool
	starts, stops atomic.Int32
	cancel        context.CancelFunc
	done          chan struct{}
}

func campaign(t *testing.T, leases coordinationv1client.LeasesGetter, id string, onStarted func()) *candidate {
	t.Helper()
	c := &candidate{done: make(chan struct{})}
	e, err := New(Config{Leases: leases, Name: "crowsnest", Namespace: "ns", Identity: id,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		OnStarted: func() {
			if onStarted != nil {
				onStarted()
			}
			c.leading.Store(true)
			c.starts.Add(1)
		},
		OnStopped: func() { c.leading.Store(false); c.stops.Add(1) }})
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

// stop ends c's campaign and waits for it.
func (c *candidate) stop() {
	c.cancel()
	<-c.done
}

// waitFor waits, in the bubble's time, until cond holds.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting %v for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One leader at a time; a stopping leader hands over at once; a leader
// that cannot renew steps down, and leads again when it can.
func TestOneLeaderHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := newMemLeases()
		a := campaign(t, leases, "a", nil)
		waitFor(t, "a leading", time.Second, a.leading.Load)
		b := campaign(t, leases, "b", nil)
		time.Sleep(2 * leaseDuration) // a renews
		if b.leading.Load() || leases.holder() != "a" {
			t.Fatalf("b leads (%v) or holder %q while a renews", b.leading.Load(), leases.holder())
		}
		// a stops: it releases, b takes over at its next try, jittered
		// up to 2.2 retry periods, well before the Lease would expire.
		stopped := time.Now()
		a.stop()
		if a.leading.Load() || a.starts.Load() != 1 || a.stops.Load() != 1 {
			t.Errorf("a stopped: leading %v, started %d and stopped %d times, want false, 1, 1", a.leading.Load(), a.starts.Load(), a.stops.Load())
		}
		waitFor(t, "b leading", leaseDuration, b.leading.Load)
		if took, most := time.Since(stopped), time.Duration((1+leaderelection.JitterFactor)*float64(retryPeriod)); took > most {
			t.Errorf("b took over %v after a released, want at most %v", took, most)
		}
		if l := leases.lease(); *l.Spec.LeaseTransitions != 1 || *l.Spec.LeaseDurationSeconds != 15 {
			t.Errorf("lease transitions %d, duration %ds; want 1, 15", *l.Spec.LeaseTransitions, *l.Spec.LeaseDurationSeconds)
		}
		// The API server goes away: b steps down within its renew
		// deadline (and a retry period).
		leases.down.Store(true)
		lost := time.Now()
		waitFor(t, "b stepping down", renewDeadline+retryPeriod+time.Second, func() bool { return !b.leading.Load() })
		if took := time.Since(lost); took < renewDeadline-retryPeriod {
			t.Errorf("b stepped down %v after the API server went away, before its renew deadline %v", took, renewDeadline)
		}
		leases.down.Store(false)
		waitFor(t, "b leading again", leaseDuration, b.leading.Load)
		if b.starts.Load() != 2 || b.stops.Load() != 1 {
			t.Errorf("b started leading %d times and stopped %d, want 2 and 1", b.starts.Load(), b.stops.Load())
		}
	})
}

// A crashed leader (no release) is replaced once its Lease expired, as
// observed from its first sight, not before.
func TestExpiredLeaseIsTaken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := newMemLeases()
		id, secs := "crashed", int32(3)
		leases.leases["ns/crowsnest"] = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "crowsnest", ResourceVersion: "x"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs}}
		start := time.Now()
		b := campaign(t, leases, "b", nil)
		waitFor(t, "b leading", 2*leaseDuration, b.leading.Load)
		if took := time.Since(start); took < 3*time.Second {
			t.Errorf("b took the Lease after %v, before its 3 s expired", took)
		}
		if l := leases.lease(); *l.Spec.LeaseTransitions != 1 || *l.Spec.HolderIdentity != "b" {
			t.Errorf("lease holder %q, transitions %d; want b, 1", *l.Spec.HolderIdentity, *l.Spec.LeaseTransitions)
		}
	})
}

// client-go calls OnStartedLeading in a goroutine of its own: Run waits
// for it, and OnStopped follows OnStarted even when the term ends first.
func TestRunWaitsForOnStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := newMemLeases()
		a := campaign(t, leases, "a", func() { time.Sleep(time.Minute) })
		waitFor(t, "a holding the Lease", time.Second, func() bool { return leases.holder() == "a" })
		a.stop() // while OnStarted sleeps
		if a.leading.Load() || a.starts.Load() != 1 || a.stops.Load() != 1 {
			t.Errorf("a stopped: leading %v, started %d and stopped %d times, want false, 1, 1", a.leading.Load(), a.starts.Load(), a.stops.Load())
		}
		if h := leases.holder(); h != "" {
			t.Errorf("holder %q after a stopped, want the Lease released", h)
		}
	})
}

// A candidate that never led is not told it stopped leading (client-go
// calls OnStoppedLeading whenever Run returns).
func TestNoStopWithoutStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		leases := newMemLeases()
		leases.down.Store(true)
		a := campaign(t, leases, "a", nil)
		time.Sleep(leaseDuration)
		a.stop()
		if a.starts.Load() != 0 || a.stops.Load() != 0 {
			t.Errorf("a started %d and stopped %d times, want 0", a.starts.Load(), a.stops.Load())
		}
	})
}

// New refuses what client-go would, naming the flags, and what client-go
// would accept but not honour (a Lease counts whole seconds).
func TestNewChecksDurations(t *testing.T) {
	for _, c := range []struct {
		lease, renew, retry time.Duration
		want                string
	}{
		{time.Second, 2 * time.Second, 100 * time.Millisecond, "shorter than --leader-elect.lease-duration"},
		{3 * time.Second, 2 * time.Second, 2 * time.Second, "1.2 times --leader-elect.retry-period"},
		{1500 * time.Millisecond, time.Second, 100 * time.Millisecond, "--leader-elect.lease-duration 1.5s must be whole seconds"},
		{600 * time.Millisecond, 400 * time.Millisecond, 100 * time.Millisecond, "--leader-elect.lease-duration 600ms must be whole seconds"},
		{3 * time.Second, 2 * time.Second, 0, "--leader-elect.retry-period 0s must be positive"},
	} {
		_, err := New(Config{Leases: newMemLeases(), Name: "n", Namespace: "ns", Identity: "i",
			LeaseDuration: c.lease, RenewDeadline: c.renew, RetryPeriod: c.retry, OnStarted: func() {}, OnStopped: func() {}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(lease %v, renew %v, retry %v): %v, want %q", c.lease, c.renew, c.retry, err, c.want)
		}
	}
	if _, err := New(Config{Leases: newMemLeases(), Name: "n", Namespace: "ns", Identity: "i",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 500 * time.Millisecond, OnStarted: func() {}, OnStopped: func() {}}); err != nil {
		t.Errorf("the flags' defaults: %v", err)
	}
}
