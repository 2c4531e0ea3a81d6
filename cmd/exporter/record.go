package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// runRecord writes the Application, AppProject and workload watch events to
// --out until interrupted
// or --duration has passed.
func (c *cli) runRecord(ctx context.Context, logger *slog.Logger) error {
	var out io.Writer = os.Stdout
	if *c.recordOut != "-" {
		// Recordings hold whole Applications (repo URLs, annotations):
		// readable by their owner only.
		f, err := os.OpenFile(*c.recordOut, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("create recording: %w", err)
		}
		defer f.Close()
		out = f
	}
	client, err := c.argoClient(logger)
	if err != nil {
		return err
	}
	src := source.NewKubeSource(client, c.watchedNamespaces(), source.NewSourceMetrics(prometheus.NewRegistry()), logger)
	rec := source.NewRecorder(out)

	if *c.recordDuration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *c.recordDuration)
		defer cancel()
	}
	projects := source.NewProjects(client, logger)
	workloads, err := c.workloadWatch(logger)
	if err != nil {
		return err
	}
	logger.Info("recording Application, AppProject, ApplicationSet and workload events", "out", *c.recordOut)
	// The watches run until ctx ends or one of them fails, which stops
	// the others; each is joined before returning.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 2)
	go func() {
		err := projects.Run(ctx, rec)
		cancel()
		done <- err
	}()
	go func() {
		err := workloads.Run(ctx, rec)
		cancel()
		done <- err
	}()
	err = src.Run(ctx, rec)
	cancel()
	for range 2 {
		if werr := <-done; err == nil {
			err = werr
		}
	}
	if err != nil {
		return err
	}
	return rec.Err()
}

// workloadWatch returns the watch of every workload kind crowsnest knows,
// for the recording: a replay then shows the workloads and the waves of
// hook Jobs.
func (c *cli) workloadWatch(logger *slog.Logger) (*source.Workloads, error) {
	kinds, err := source.ParseWorkloadKinds(source.DefaultWorkloadKinds)
	if err != nil {
		return nil, err
	}
	return c.workloadsOf(kinds, logger)
}
