package daemon

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startupPoll is how often waitReady looks at the source's readiness.
const startupPoll = 50 * time.Millisecond

// readiness is what waitReady watches: the source's Ready.
type readiness interface{ Ready() bool }

// waitReady publishes crowsnest_startup_duration_seconds, the time from
// start (when serve began, flags parsed) to the first moment src was ready — every
// Application of the initial list handled, so every app's series rendered
// and served — and logs it once, then calls settle (the collector's
// setting after start-up). It returns when that is done or ctx ends.
//
// Why a poll: a source's readiness is a state (informers synced, API
// server reachable), not an event; 50 ms is well under the resolution
// anyone reads a start-up time with, and costs nothing.
func waitReady(ctx context.Context, start time.Time, src readiness, apps func() int, reg prometheus.Registerer, logger *slog.Logger, settle func()) {
	t := time.NewTicker(startupPoll)
	defer t.Stop()
	for !src.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	took := time.Since(start)
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "crowsnest_startup_duration_seconds",
		Help: "Seconds from crowsnest's start to the first time its source was ready: every Application of the initial list handled and its series served. Absent until then.",
	})
	g.Set(took.Seconds())
	reg.MustRegister(g)
	logger.Info("ready: every Application listed and rendered", "took", took.Round(time.Millisecond), "apps", apps())
	settle()
	// The initial list left garbage of the size of every app's JSON (the
	// decoder's input and what the lean types skipped): hand those pages
	// back to the OS now rather than when the scavenger gets to them, so
	// the resident size after start-up is what crowsnest keeps.
	debug.FreeOSMemory()
}
