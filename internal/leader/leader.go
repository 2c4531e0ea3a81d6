// Package leader elects one leader among replicas with a coordination.k8s.io
// Lease, with client-go's tools/leaderelection and its LeaseLock: a holder
// renews its Lease; a Lease not renewed for its duration, as observed
// locally, may be taken; a leader that stops releases it by clearing the
// holder, so another replica takes it at its next try.
//
// This package only adapts client-go's elector to crowsnest: durations
// checked with the flags' names, its logs on the caller's logger, the
// callbacks run in order, and no goroutine left behind when Run returns.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// NewRESTLeases returns a Leases client of the API server of c. The
// Lease's namespace is Config.Namespace; namespace is not used.
func NewRESTLeases(c *rest.Config, _ string) (coordinationv1client.LeasesGetter, error) {
	cs, err := coordinationv1client.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("lease client: %w", err)
	}
	return cs, nil
}

// Config is one replica's candidacy.
type Config struct {
	Leases    coordinationv1client.LeasesGetter
	Name      string // the Lease
	Namespace string // the Lease's
	Identity  string // this replica, unique among the candidates
	// LeaseDuration is how long others wait, from the last renewal they
	// saw, before taking the Lease (whole seconds: the Lease counts
	// seconds); the leader gives up when it could not renew for
	// RenewDeadline; everyone retries every RetryPeriod (a candidate,
	// jittered up to 2.2 times that).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// OnStarted and OnStopped are called when this replica starts and
	// stops leading, in turn, from a goroutine Run waits for.
	OnStarted, OnStopped func()
	// Logger gets client-go's elector's logs (its V(4) is Debug).
	Logger *slog.Logger
}

// Elector runs one candidacy, one Run at a time.
type Elector struct {
	cfg  Config
	lock *lock
	le   *leaderelection.LeaderElector
	log  logr.Logger
	// stopped is closed when the current Run's term, if it won one, has
	// called OnStopped. Set by Run before client-go can start the term.
	stopped chan struct{}
}

// New returns an elector. It checks the durations as client-go does,
// naming the flags they come from.
func New(cfg Config) (*Elector, error) {
	switch {
	case cfg.Leases == nil || cfg.Name == "" || cfg.Namespace == "" || cfg.Identity == "":
		return nil, errors.New("leader election: a Lease client, name, namespace and identity are required")
	case cfg.OnStarted == nil || cfg.OnStopped == nil:
		return nil, errors.New("leader election: OnStarted and OnStopped are required")
	case cfg.LeaseDuration < time.Second || cfg.LeaseDuration%time.Second != 0:
		return nil, fmt.Errorf("leader election: --leader-elect.lease-duration %s must be whole seconds, at least one (a Lease counts whole seconds)", cfg.LeaseDuration)
	case cfg.RetryPeriod <= 0:
		return nil, fmt.Errorf("leader election: --leader-elect.retry-period %s must be positive", cfg.RetryPeriod)
	case cfg.LeaseDuration <= cfg.RenewDeadline:
		return nil, fmt.Errorf("leader election: the renew deadline %s must be shorter than --leader-elect.lease-duration %s", cfg.RenewDeadline, cfg.LeaseDuration)
	case cfg.RenewDeadline <= time.Duration(leaderelection.JitterFactor*float64(cfg.RetryPeriod)):
		return nil, fmt.Errorf("leader election: the renew deadline %s (from --leader-elect.lease-duration %s) must be longer than %v times --leader-elect.retry-period %s: lengthen the one or shorten the other",
			cfg.RenewDeadline, cfg.LeaseDuration, leaderelection.JitterFactor, cfg.RetryPeriod)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Elector{
		cfg: cfg,
		lock: &lock{LeaseLock: resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
			Client:     cfg.Leases,
			LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
		}},
		log: logr.FromSlogHandler(cfg.Logger.Handler()),
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          e.lock,
		Name:          cfg.Namespace + "/" + cfg.Name,
		LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: e.term,
			OnStoppedLeading: func() {}, // called even without a term: the term calls OnStopped
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	e.le = le
	return e, nil
}

// Run campaigns until it wins the Lease, leads while it renews it, and
// returns when it could not renew within the renew deadline or ctx ended
// (then, leading, it releases the Lease so another replica takes it at its
// next try). It calls OnStopped whenever it had called OnStarted, and
// returns only after both.
func (e *Elector) Run(ctx context.Context) {
	e.lock.won.Store(false)
	stopped := make(chan struct{})
	e.stopped = stopped
	e.le.Run(klog.NewContext(ctx, e.log))
	if e.lock.won.Load() {
		<-stopped
	}
}

// term is client-go's OnStartedLeading, which it starts in a goroutine of
// its own once this replica holds the Lease; ctx ends when ctx of Run
// does (at once: the gate closes while the Lease is released) or the
// Lease could not be renewed.
func (e *Elector) term(ctx context.Context) {
	defer close(e.stopped)
	e.cfg.OnStarted()
	<-ctx.Done()
	e.cfg.OnStopped()
}

// lock is client-go's LeaseLock, noting when this replica writes itself
// in as the holder: client-go then starts OnStartedLeading in a goroutine
// of its own, without saying so, and Run must wait for it.
type lock struct {
	resourcelock.LeaseLock
	won atomic.Bool // since Run began
}

// Create implements resourcelock.Interface.
func (l *lock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.LeaseLock.Create(ctx, r)
	l.note(r, err)
	return err
}

// Update implements resourcelock.Interface.
func (l *lock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.LeaseLock.Update(ctx, r)
	l.note(r, err)
	return err
}

func (l *lock) note(r resourcelock.LeaderElectionRecord, err error) {
	if err == nil && r.HolderIdentity == l.Identity() {
		l.won.Store(true)
	}
}
