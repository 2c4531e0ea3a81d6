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

// runRecord writes the Application watch events to --out until interrupted
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
	logger.Info("recording Application and AppProject events", "out", *c.recordOut)
	// Both watches run until ctx ends; each is joined before returning.
	projectsDone := make(chan error, 1)
	go func() { projectsDone <- projects.Run(ctx, rec) }()
	err = src.Run(ctx, rec)
	if perr := <-projectsDone; err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	return rec.Err()
}
