// Package daemon builds crowsnest's pipeline from its Options and runs it:
// sources (Applications, AppProjects and ApplicationSets, workloads) feed
// the tracker; the tracker's subscribers are the exposition (served on
// /metrics), the pager, the DORA measurements and the outputs that leave
// the process (Loki, CloudEvents, traces), gated by leadership in one
// place. Every goroutine it starts is an actor of one run.Group, joined
// before Run returns. cmd/exporter parses flags into Options and calls Run;
// the in-process tests start the daemon the same way.
package daemon

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	oklogrun "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"

	"github.com/crowsnest/crowsnest/internal/clusters"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/rules"
)

// ShutdownTimeout bounds the graceful shutdown after SIGTERM or SIGINT:
// the HTTP server's and the outputs' flush.
const ShutdownTimeout = 10 * time.Second

// daemon is one run's wiring: what its parts share while they are built.
type daemon struct {
	o      Options
	stdout io.Writer // the stdout trace exporter's
	log    *slog.Logger
	reg    *prometheus.Registry
	kube   *kube
	gate   *leaderGate
	links  rules.Links
	// aggregated registers the families summed across shards (with a
	// shard label when sharded).
	aggregated prometheus.Registerer

	actors []actor // run in the group

	remote []clusters.Cluster // --clusters.dir's, once loaded
}

// actor is one goroutine of the group: it runs until its stage's context
// ends.
type actor struct {
	name  string
	stage stage
	run   func(ctx context.Context) error
}

// stage orders the shutdown: each stage's context ends once every actor
// of the stage before has returned, so what a stage hands on at its end
// still reaches the next, which flushes it.
type stage int

const (
	// stageInputs: the sources, the tracker's tick, the configuration,
	// the pager; they stop at once.
	stageInputs stage = iota
	// stageDeployments: the deployment worker (its facts and records go
	// to the outputs) and the checkpoint (final once nothing is counted).
	stageDeployments
	// stageOutputs: the queues of Loki, CloudEvents and traces.
	stageOutputs
	// stageLease: the leader election, which releases the Lease once the
	// outputs have flushed, so what they send at shutdown is still the
	// leader's.
	stageLease
	stages
)

// flushTimeout bounds each stage's flush: two stages flush, one after the
// other, within ShutdownTimeout (the Lease's release is bounded by
// client-go's renew deadline).
const flushTimeout = ShutdownTimeout / 2

// Run builds the pipeline o describes and runs it until ctx ends (SIGTERM,
// SIGINT), then flushes the outputs within the shutdown timeout. Logs go
// to logger; the stdout trace exporter writes to stdout. An error is
// returned, not logged.
func Run(ctx context.Context, o Options, stdout io.Writer, logger *slog.Logger) error {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return err
	}
	gcReady, err := setRuntime(o, logger)
	if err != nil {
		return err
	}
	d := &daemon{o: o, stdout: stdout, log: logger, reg: newRegistry(), kube: newKube(o.Kubeconfig, logger)}
	cfg := config.NewReloader(o.ConfigFile, o.BuiltinConfig, d.reg, logger)
	conf, err := cfg.Load()
	if err != nil {
		return err
	}
	d.actors = append(d.actors, actor{"config", stageInputs, cfg.Run})
	d.aggregated = registerShard(d.shard(), d.reg)
	if d.links, err = rules.ParseLinks(o.ArgoCD.URL, o.GrafanaURL); err != nil {
		return err
	}
	d.reg.MustRegister(d.links.Collector())
	d.gate = newLeaderGate(o.Leader.Elect, d.reg)

	out, err := d.outputs(conf, cfg)
	if err != nil {
		return err
	}
	defer out.close()
	track, err := d.tracker(ctx, conf, cfg, out.subs)
	if err != nil {
		return err
	}
	src, err := d.inputs(track)
	if err != nil {
		return err
	}
	srv, err := d.httpServer(out.store, src, cfg)
	if err != nil {
		return err
	}
	d.actors = append(d.actors, actor{"startup", stageInputs, func(ctx context.Context) error {
		waitReady(ctx, start, src, out.store.Len, d.reg, logger, gcReady)
		<-ctx.Done()
		return nil
	}})
	if err := d.leaderElection(); err != nil {
		return err
	}
	logger.Info("crowsnest started", "version", version.Info(), "input", o.sourceName())
	if o.Guide != nil {
		logger.Info("where to look", o.Guide...)
	}
	return d.run(ctx, srv)
}

// newRegistry returns the registry of /metrics with the process's own
// collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		versioncollector.NewCollector("crowsnest"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// run runs the actors and the HTTP server in one group until ctx ends or
// one of them fails; the stages then stop one after the other, the outputs
// flushing what the stages before handed them.
func (d *daemon) run(ctx context.Context, srv *httpServer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ctxs [stages]context.Context
	var ends [stages]context.CancelFunc
	ctxs[stageInputs] = ctx
	for s := stageInputs + 1; s < stages; s++ {
		ctxs[s], ends[s] = context.WithCancel(context.WithoutCancel(ctx))
		defer ends[s]()
	}
	var running [stages]sync.WaitGroup
	for _, a := range d.actors {
		running[a.stage].Add(1)
	}
	var g oklogrun.Group
	// Stop on the signal's context (SIGTERM, SIGINT).
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) { cancel() })
	for _, a := range d.actors {
		g.Add(func() error {
			defer running[a.stage].Done()
			return a.run(ctxs[a.stage])
		}, func(error) { cancel() })
	}
	g.Add(func() error {
		<-ctx.Done()
		for s := stageInputs + 1; s < stages; s++ {
			running[s-1].Wait()
			ends[s]()
		}
		return nil
	}, func(error) { cancel() })
	g.Add(srv.serve, srv.shutdown)
	err := g.Run()
	if err == nil {
		d.log.Info("shutting down")
	}
	return err
}
