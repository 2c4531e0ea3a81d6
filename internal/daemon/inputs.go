package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
)

// inputs builds the sources the options name and adds them to the group:
// the Applications' (returned: /readyz and the start-up time follow it)
// and, with the Kubernetes source, the workloads, the AppProjects and
// ApplicationSets, and the tick that opens and closes sync windows.
func (d *daemon) inputs(track *tracker.Tracker) (source.Source, error) {
	src, err := d.source(source.NewSourceMetrics(d.reg))
	if err != nil {
		return nil, err
	}
	shard := d.shard()
	if ks, ok := src.(*source.KubeSource); ok {
		ks.SetShard(shard)              // other shards' apps: metadata only
		track.SetOnRelease(ks.Released) // finished operations' results leave the cache
	}
	d.actors = append(d.actors, actor{"source", stageInputs, func(ctx context.Context) error { return src.Run(ctx, shard.Sink(track)) }})
	if !d.o.kubernetes() {
		return src, nil
	}
	kinds, err := source.ParseWorkloadKinds(d.o.WorkloadKinds)
	if err != nil {
		return nil, err
	}
	if len(kinds) > 0 {
		workloads, err := d.kube.workloads(kinds, d.o.ArgoCD.Tracking)
		if err != nil {
			return nil, err
		}
		d.actors = append(d.actors, actor{"workloads", stageInputs, func(ctx context.Context) error { return workloads.Run(ctx, track) }})
		if err := d.spokes(kinds, track); err != nil {
			return nil, err
		}
	}
	client, err := d.kube.argoClient()
	if err != nil {
		return nil, err
	}
	projects := source.NewProjects(client, d.log)
	d.actors = append(d.actors,
		actor{"projects", stageInputs, func(ctx context.Context) error { return projects.Run(ctx, track) }},
		actor{"windows", stageInputs, func(ctx context.Context) error { tickWindows(ctx, track); return nil }})
	return src, nil
}

// tickWindows lets the tracker see sync windows open and close on their
// schedules, which send no event, until ctx ends.
func tickWindows(ctx context.Context, track *tracker.Tracker) {
	tick := time.NewTicker(tracker.DefaultWindowTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			track.Tick()
		}
	}
}

// source builds the source of Applications the options name.
func (d *daemon) source(m *source.SourceMetrics) (source.Source, error) {
	switch d.o.Source {
	case SourceArgoCDAPI:
		a := d.o.ArgoCD
		if a.Server == "" || a.TokenFile == "" {
			return nil, errors.New("--source=argocd-api needs --argocd.server and --argocd.token-file")
		}
		if _, err := os.Stat(a.TokenFile); err != nil {
			return nil, fmt.Errorf("--argocd.token-file: %w", err)
		}
		if a.CAFile != "" {
			if _, err := os.Stat(a.CAFile); err != nil {
				return nil, fmt.Errorf("--argocd.ca-file: %w", err)
			}
		}
		cfg := a.sourceConfig()
		cfg.Namespaces, cfg.ResyncPeriod = d.o.Namespaces, a.ResyncPeriod
		return source.NewArgoCDAPISource(cfg, m, d.log), nil
	case SourceReplay:
		r := d.o.Replay
		if r.Data != nil {
			open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(r.Data)), nil }
			return source.NewReplaySource(r.Name, open, r.Speed, m, d.log), nil
		}
		if r.File == "" {
			return nil, errors.New("--source=replay needs --replay.file")
		}
		if _, err := os.Stat(r.File); err != nil {
			return nil, fmt.Errorf("replay file: %w", err)
		}
		open := func() (io.ReadCloser, error) { return os.Open(r.File) }
		return source.NewReplaySource(r.File, open, r.Speed, m, d.log), nil
	default:
		client, err := d.kube.argoClient()
		if err != nil {
			return nil, err
		}
		return source.NewKubeSource(client, d.o.Namespaces, m, d.log), nil
	}
}

// sourceConfig is the Argo CD API connection the options describe.
func (a ArgoCDOptions) sourceConfig() source.ArgoCDAPIConfig {
	return source.ArgoCDAPIConfig{
		Address: a.Server, TokenFile: a.TokenFile, CAFile: a.CAFile,
		PlainText: a.PlainText, Insecure: a.Insecure, GRPCWeb: a.GRPCWeb,
	}
}
