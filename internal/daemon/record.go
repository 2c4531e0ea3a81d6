package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// RecordOptions say what `crowsnest record` records, and where to.
type RecordOptions struct {
	Kubeconfig string
	Namespaces []string
	Tracking   source.Tracking // how Argo CD names the app owning a workload
	Out        string          // a file, or - for stdout
	Duration   time.Duration   // 0: until ctx ends
}

// Record writes the Application, AppProject, ApplicationSet and workload
// watch events to o.Out until ctx ends or o.Duration has passed.
func Record(ctx context.Context, o RecordOptions, stdout io.Writer, logger *slog.Logger) error {
	if err := o.Tracking.Validate(); err != nil {
		return err
	}
	out := stdout
	if o.Out != "-" {
		// Recordings hold whole Applications (repo URLs, annotations):
		// readable by their owner only.
		f, err := os.OpenFile(o.Out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("create recording: %w", err)
		}
		defer f.Close()
		out = f
	}
	k := newKube(o.Kubeconfig, logger)
	client, err := k.argoClient()
	if err != nil {
		return err
	}
	src := source.NewKubeSource(client, o.Namespaces, source.NewSourceMetrics(prometheus.NewRegistry()), logger)
	rec := source.NewRecorder(out)

	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	projects := source.NewProjects(client, logger)
	kinds, err := source.ParseWorkloadKinds(source.DefaultWorkloadKinds)
	if err != nil {
		return err
	}
	// Every kind crowsnest knows: a replay then shows the workloads and
	// the waves of hook Jobs.
	workloads, err := k.workloads(kinds, o.Tracking)
	if err != nil {
		return err
	}
	logger.Info("recording Application, AppProject, ApplicationSet and workload events", "out", o.Out)
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
