package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/crowsnest/crowsnest/internal/collect"
	"github.com/crowsnest/crowsnest/internal/events"
	"github.com/crowsnest/crowsnest/internal/trace"
)

// leadership says whether this replica sends traces, Loki events and
// pages. Without --leader-elect it always does; with it, only while it
// holds the Lease. Every replica tracks and serves /metrics either way, so
// a new leader has the state at once, and deterministic trace ids keep a
// handover from producing two different traces of one operation.
type leadership struct {
	leading atomic.Bool
	gauge   prometheus.Gauge
}

func (l *leadership) set(v bool) {
	l.leading.Store(v)
	if l.gauge != nil {
		if v {
			l.gauge.Set(1)
		} else {
			l.gauge.Set(0)
		}
	}
}

// gatedOps hands operations on only while leading.
type gatedOps struct {
	l     *leadership
	inner collect.OperationSink
}

func (g gatedOps) Finished(op trace.Operation) {
	if g.l.leading.Load() {
		g.inner.Finished(op)
	}
}

// gatedFacts sends facts on only while leading.
type gatedFacts struct {
	l     *leadership
	inner collect.FactSink
}

func (g gatedFacts) Send(e events.Event) {
	if g.l.leading.Load() {
		g.inner.Send(e)
	}
}

// runLeaderElection campaigns for the Lease until ctx ends, keeping l up
// to date. It releases the Lease on shutdown, so a graceful stop hands
// over at once; a crashed leader's Lease expires after leaseDuration.
func (c *cli) runLeaderElection(ctx context.Context, rc *rest.Config, l *leadership, logger *slog.Logger) error {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
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
		LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: *c.leaderLease},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   *c.leaderLeaseDuration,
		RenewDeadline:   *c.leaderLeaseDuration * 2 / 3,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            "crowsnest",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				logger.Info("leading: sending traces, events and pages", "identity", id, "lease", ns+"/"+*c.leaderLease)
				l.set(true)
			},
			OnStoppedLeading: func() {
				logger.Info("no longer leading", "identity", id)
				l.set(false)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	go func() {
		// Run returns when leadership is lost; campaign again until
		// shutdown.
		for ctx.Err() == nil {
			le.Run(ctx)
		}
	}()
	return nil
}
