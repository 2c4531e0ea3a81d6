package loki

import (
	"log/slog"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Logger writes one structured log line per tracker fact, with the app's
// identity and, for operations, the trace id: Loki-style events from the
// logs alone. It implements the tracker's fact subscriber.
type Logger struct {
	logger *slog.Logger
}

// NewLogger returns a fact logger writing to logger at info level.
func NewLogger(logger *slog.Logger) *Logger { return &Logger{logger: logger} }

// Fact logs f.
func (l *Logger) Fact(f *model.Fact) {
	args := make([]any, 0, 10+len(f.Attrs))
	args = append(args, "event", f.Name, "app", f.App, "project", f.Project, "env", f.Env, "at", f.Time)
	args = append(args, f.Attrs...)
	if f.TraceID != "" {
		args = append(args, "trace_id", f.TraceID)
	}
	l.logger.Info(f.Message(), args...)
}
