package daemon

import (
	"log/slog"

	"github.com/crowsnest/crowsnest/internal/model"
)

// factLogger writes one structured log line per tracker fact, with the
// app's identity and, for operations, the trace id: Loki-style events from
// the logs alone. It is the tracker's fact subscriber that is always on.
type factLogger struct{ logger *slog.Logger }

// Fact logs f at info level.
func (l factLogger) Fact(f *model.Fact) {
	args := make([]any, 0, 14+len(f.Attrs))
	args = append(args, "event", f.Name, "app", f.App, "project", f.Project, "env", f.Env)
	if f.Dest != "" {
		args = append(args, "dest_cluster", f.Dest)
	}
	args = append(args, "at", f.Time)
	args = append(args, f.Attrs...)
	if f.TraceID != "" {
		args = append(args, "trace_id", f.TraceID)
	}
	l.logger.Info(f.Message(), args...)
}
