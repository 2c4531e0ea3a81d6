package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/leader"
)

// leaderGate says whether this replica sends traces, Loki events,
// CloudEvents and pages, and saves the checkpoint. Without --leader-elect
// it always does; with it, only while it holds the Lease. Every replica
// tracks and serves /metrics either way, so a new leader has the state at
// once, and deterministic trace ids keep a handover from producing two
// different traces of one operation. Its leading method is handed to each
// output's queue (internal/queue gates Send), the pager and the
// checkpoint: one gate, applied where things leave the process.
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

// leaderElection adds the campaign for the Lease to the group, with
// --leader-elect: it keeps the gate up to date and returns only once it
// has released the Lease, so a graceful stop hands over at once (another
// replica takes it within 1 to 2.2 times --leader-elect.retry-period,
// client-go's jitter); a crashed leader's
// Lease expires after --leader-elect.lease-duration.
func (d *daemon) leaderElection() error {
	if !d.o.Leader.Elect {
		return nil
	}
	rc, err := d.kube.config()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	id := host + "_" + hex.EncodeToString(suffix)
	ns, name := d.o.ownNamespace(), d.o.perShard(d.o.Leader.LeaseName)
	leases, err := leader.NewRESTLeases(rc, ns)
	if err != nil {
		return fmt.Errorf("leader election client: %w", err)
	}
	log := d.log.With("component", "leader-election")
	le, err := leader.New(leader.Config{
		Leases: leases, Name: name, Namespace: ns, Identity: id,
		LeaseDuration: d.o.Leader.LeaseDuration,
		RenewDeadline: d.o.Leader.LeaseDuration * 2 / 3,
		RetryPeriod:   d.o.Leader.RetryPeriod,
		OnStarted: func() {
			log.Info("leading: sending traces, events and pages", "identity", id, "lease", ns+"/"+name)
			d.gate.set(true)
		},
		OnStopped: func() {
			log.Info("no longer leading", "identity", id)
			d.gate.set(false)
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	// In the last stage: the Lease is released once the outputs have
	// flushed, so what they send at shutdown is still the leader's.
	d.actors = append(d.actors, actor{"leader-election", stageLease, func(ctx context.Context) error {
		// Run returns when leadership is lost (after releasing the Lease
		// if ctx ended); campaign again until shutdown.
		for ctx.Err() == nil {
			le.Run(ctx)
		}
		return nil
	}})
	return nil
}
