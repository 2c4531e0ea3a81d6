// Package leader elects one leader among replicas with a coordination.k8s.io
// Lease, as client-go's tools/leaderelection does with its LeaseLock: the
// same Lease fields, the same rules (a holder renews its Lease; a Lease not
// renewed for its duration, as observed locally, may be taken; a leader
// that stops releases it by clearing the holder), so replicas running
// either can share a Lease during an upgrade.
//
// Why not client-go's: its resourcelock package imports the whole typed
// clientset and its informers, 232 packages, a fifth of crowsnest's build,
// for three calls on one Lease.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/crowsnest/crowsnest/internal/restjson"
)

// Leases reads and writes Leases of one namespace.
type Leases interface {
	Get(ctx context.Context, name string) (*coordinationv1.Lease, error)
	Create(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error)
	Update(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error)
}

// Config is one replica's candidacy.
type Config struct {
	Leases    Leases
	Name      string // the Lease
	Identity  string // this replica, unique among the candidates
	Namespace string // for logs
	// LeaseDuration is how long others wait, from the last renewal they
	// saw, before taking the Lease; the leader gives up when it could not
	// renew for RenewDeadline; everyone retries every RetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// OnStarted and OnStopped are called when this replica starts and
	// stops leading.
	OnStarted, OnStopped func()
	Logger               *slog.Logger
}

// Elector runs one candidacy.
type Elector struct {
	cfg Config
	// observed is the Lease's spec last seen and observedAt when it was
	// first seen so (the local clock: replicas' clocks may differ).
	observed   coordinationv1.LeaseSpec
	observedAt time.Time
	now        func() time.Time
}

// New returns an elector; it checks the durations as client-go does.
func New(cfg Config) (*Elector, error) {
	switch {
	case cfg.Leases == nil || cfg.Name == "" || cfg.Identity == "":
		return nil, errors.New("leader election: a Lease client, name and identity are required")
	case cfg.RetryPeriod <= 0 || cfg.RenewDeadline <= cfg.RetryPeriod || cfg.LeaseDuration <= cfg.RenewDeadline:
		return nil, fmt.Errorf("leader election: want retry period %s < renew deadline %s < lease duration %s", cfg.RetryPeriod, cfg.RenewDeadline, cfg.LeaseDuration)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Elector{cfg: cfg, now: time.Now}, nil
}

// Run campaigns until it wins the Lease, leads while it renews it, and
// returns when it could not renew within the renew deadline or ctx ended
// (then, leading, it releases the Lease so another replica takes it at
// once). It calls OnStopped whenever it had called OnStarted.
func (e *Elector) Run(ctx context.Context) {
	if !e.acquire(ctx) {
		return
	}
	e.cfg.OnStarted()
	defer e.cfg.OnStopped()
	e.renew(ctx)
	if ctx.Err() != nil {
		e.release()
	}
}

// acquire tries every retry period until it holds the Lease or ctx ends.
func (e *Elector) acquire(ctx context.Context) bool {
	t := time.NewTicker(e.cfg.RetryPeriod)
	defer t.Stop()
	for {
		if e.tryAcquireOrRenew(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// renew renews every retry period; it returns when a renewal did not
// succeed within the renew deadline, or ctx ended.
func (e *Elector) renew(ctx context.Context) {
	t := time.NewTicker(e.cfg.RetryPeriod)
	defer t.Stop()
	last := e.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
		ok := e.tryAcquireOrRenew(rctx)
		cancel()
		if ok {
			last = e.now()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if e.now().Sub(last) >= e.cfg.RenewDeadline {
			e.cfg.Logger.Warn("could not renew the leader Lease in time; no longer leading", "lease", e.cfg.Namespace+"/"+e.cfg.Name)
			return
		}
	}
}

// tryAcquireOrRenew takes or renews the Lease, if it is free, expired or
// ours; it reports whether this replica holds it now.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := e.now()
	mnow := metav1.NewMicroTime(now)
	secs := int32((e.cfg.LeaseDuration + time.Second - 1) / time.Second) // whole seconds, at least one
	lease, err := e.cfg.Leases.Get(ctx, e.cfg.Name)
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: e.cfg.Name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &e.cfg.Identity, LeaseDurationSeconds: &secs,
				AcquireTime: &mnow, RenewTime: &mnow, LeaseTransitions: new(int32(0))},
		}
		created, err := e.cfg.Leases.Create(ctx, lease)
		if err != nil {
			e.cfg.Logger.Debug("create the leader Lease", "err", err)
			return false
		}
		e.observe(created.Spec, now)
		return true
	}
	if err != nil {
		e.cfg.Logger.Debug("read the leader Lease", "err", err)
		return false
	}
	old := lease.Spec
	if !sameSpec(old, e.observed) {
		e.observe(old, now)
	}
	holder := deref(old.HolderIdentity)
	ours := holder == e.cfg.Identity
	if holder != "" && !ours {
		d := time.Duration(deref(old.LeaseDurationSeconds)) * time.Second
		if e.observedAt.Add(d).After(now) {
			return false // held, and renewed within its duration
		}
	}
	spec := old
	spec.HolderIdentity, spec.LeaseDurationSeconds, spec.RenewTime = &e.cfg.Identity, &secs, &mnow
	if !ours {
		transitions := deref(old.LeaseTransitions) + 1 // as client-go counts: any change of holder
		spec.AcquireTime, spec.LeaseTransitions = &mnow, &transitions
	}
	lease.Spec = spec
	updated, err := e.cfg.Leases.Update(ctx, lease) // fails on a concurrent write (resourceVersion)
	if err != nil {
		e.cfg.Logger.Debug("update the leader Lease", "err", err)
		return false
	}
	e.observe(updated.Spec, now)
	return true
}

// release gives the Lease up as client-go does: no holder, a one-second
// duration, so the next candidate takes it at its next try.
func (e *Elector) release() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RenewDeadline)
	defer cancel()
	lease, err := e.cfg.Leases.Get(ctx, e.cfg.Name)
	if err != nil || deref(lease.Spec.HolderIdentity) != e.cfg.Identity {
		return
	}
	now := metav1.NewMicroTime(e.now())
	one := int32(1)
	lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime, lease.Spec.AcquireTime = new(""), &one, &now, &now
	if _, err := e.cfg.Leases.Update(ctx, lease); err != nil {
		e.cfg.Logger.Warn("release the leader Lease", "lease", e.cfg.Namespace+"/"+e.cfg.Name, "err", err)
	}
}

func (e *Elector) observe(spec coordinationv1.LeaseSpec, at time.Time) {
	e.observed, e.observedAt = spec, at
}

// sameSpec compares the fields that show a Lease was renewed or changed
// hands.
func sameSpec(a, b coordinationv1.LeaseSpec) bool {
	return deref(a.HolderIdentity) == deref(b.HolderIdentity) && deref(a.LeaseDurationSeconds) == deref(b.LeaseDurationSeconds) &&
		deref(a.LeaseTransitions) == deref(b.LeaseTransitions) && a.RenewTime.Equal(b.RenewTime) && a.AcquireTime.Equal(b.AcquireTime)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// RESTLeases is Leases on the API server of a rest.Config.
type RESTLeases struct {
	rest rest.Interface
	ns   string
}

// NewRESTLeases returns the Leases of namespace on the API server of c.
func NewRESTLeases(c *rest.Config, namespace string) (*RESTLeases, error) {
	rc, err := restjson.NewClient(c, schema.GroupVersion{Group: "coordination.k8s.io", Version: "v1"}, "/apis", &coordinationv1.Lease{}, &coordinationv1.LeaseList{})
	if err != nil {
		return nil, fmt.Errorf("lease client: %w", err)
	}
	return &RESTLeases{rest: rc, ns: namespace}, nil
}

// Get implements Leases.
func (l *RESTLeases) Get(ctx context.Context, name string) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, l.rest.Get().Namespace(l.ns).Resource("leases").Name(name).Do(ctx).Into(out)
}

// Create implements Leases.
func (l *RESTLeases) Create(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, l.rest.Post().Namespace(l.ns).Resource("leases").Body(lease).Do(ctx).Into(out)
}

// Update implements Leases.
func (l *RESTLeases) Update(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out := &coordinationv1.Lease{}
	return out, l.rest.Put().Namespace(l.ns).Resource("leases").Name(lease.Name).Body(lease).Do(ctx).Into(out)
}
