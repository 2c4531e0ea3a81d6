package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/deploy"
	"github.com/crowsnest/crowsnest/internal/model"
)

// leaderGate says whether this replica sends traces, Loki events and
// pages. Without --leader-elect it always does; with it, only while it
// holds the Lease. Every replica tracks and serves /metrics either way, so
// a new leader has the state at once, and deterministic trace ids keep a
// handover from producing two different traces of one operation. It is
// applied once, where the tracker's subscribers are wired.
type leaderGate struct {
	on    atomic.Bool
	gauge prometheus.Gauge // nil without leader election
}

// newLeaderGate returns a gate open for good without election, else
// closed until the Lease is won, with crowsnest_leader registered on reg.
func newLeaderGate(elect bool, reg prometheus.Registerer) *leaderGate {
	g := &leaderGate{}
	if !elect {
		g.on.Store(true)
		return g
	}
	g.gauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowsnest_leader", Help: "1 while this replica holds the leader Lease and sends traces, events and pages."})
	reg.MustRegister(g.gauge)
	g.set(false)
	return g
}

func (g *leaderGate) set(v bool) {
	g.on.Store(v)
	if g.gauge != nil {
		if v {
			g.gauge.Set(1)
		} else {
			g.gauge.Set(0)
		}
	}
}

// leading reports whether the gate is open.
func (g *leaderGate) leading() bool { return g.on.Load() }

// operations gates an operation subscriber.
func (g *leaderGate) operations(s tracker.OperationSubscriber) tracker.OperationSubscriber {
	return gatedOps{g: g, inner: s}
}

// facts gates a fact subscriber.
func (g *leaderGate) facts(s tracker.FactSubscriber) tracker.FactSubscriber {
	return gatedFacts{g: g, inner: s}
}

// records gates a deployment record sink.
func (g *leaderGate) records(s deploy.RecordSink) deploy.RecordSink {
	return gatedRecords{g: g, inner: s}
}

type gatedRecords struct {
	g     *leaderGate
	inner deploy.RecordSink
}

func (r gatedRecords) Send(rec *model.DeploymentRecord) {
	if r.g.leading() {
		r.inner.Send(rec)
	}
}

type gatedOps struct {
	g     *leaderGate
	inner tracker.OperationSubscriber
}

func (o gatedOps) Finished(op *model.Operation) {
	if o.g.leading() {
		o.inner.Finished(op)
	}
}

type gatedFacts struct {
	g     *leaderGate
	inner tracker.FactSubscriber
}

func (f gatedFacts) Fact(fact *model.Fact) {
	if f.g.leading() {
		f.inner.Fact(fact)
	}
}

// newLeaderElection returns a function that campaigns for the Lease until
// its context ends, keeping g up to date, and returns only once it has
// released the Lease: a graceful stop hands over at once (another replica
// takes it within --leader-elect.retry-period); a crashed leader's Lease
// expires after --leader-elect.lease-duration.
func (c *cli) newLeaderElection(rc *rest.Config, g *leaderGate, logger *slog.Logger) (func(context.Context), error) {
	client, err := coordinationv1.NewForConfig(rc) // only the Lease API: the whole clientset is 200 more packages
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	id := host + "_" + hex.EncodeToString(suffix)
	ns := *c.leaderNamespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		ns = "default"
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: c.leaseName()},
		Client:     client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   *c.leaderLeaseDuration,
		RenewDeadline:   *c.leaderLeaseDuration * 2 / 3,
		RetryPeriod:     *c.leaderRetryPeriod,
		ReleaseOnCancel: true,
		Name:            "crowsnest",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				logger.Info("leading: sending traces, events and pages", "identity", id, "lease", ns+"/"+c.leaseName())
				g.set(true)
			},
			OnStoppedLeading: func() {
				logger.Info("no longer leading", "identity", id)
				g.set(false)
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return func(ctx context.Context) {
		// Run returns when leadership is lost (after releasing the Lease
		// if ctx ended); campaign again until shutdown.
		for ctx.Err() == nil {
			le.Run(ctx)
		}
	}, nil
}
