package daemon

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// setRuntime applies --runtime.gogc and --runtime.gomemlimit-ratio; it
// returns what to call once the initial list is handled (GOGC's setting
// after start-up).
func setRuntime(o Options, logger *slog.Logger) (ready func(), err error) {
	ready = setGCPercent(o.GCPercent, os.Getenv, logger)
	if err := setMemoryLimit(o.MemLimitRatio, memlimit.FromCgroup, logger); err != nil {
		return nil, err
	}
	return ready, nil
}

// setGCPercent applies percent (--runtime.gogc, checked by Validate),
// unless the GOGC environment variable is set (getenv): it returns what to
// call once the initial list is handled (waitReady), and logs what it did
// once. Until then the collector runs at least at Go's default of 100: the
// start-up's garbage (every app's JSON as decoded) is large and
// short-lived, and collecting it at 50 cost 1.8 s more CPU for 10,000
// apps, the ready time's budget on 2 cores (docs/scale.md). After it, the
// heap is crowsnest's cache.
func setGCPercent(percent int, getenv func(string) string, logger *slog.Logger) (ready func()) {
	if env := getenv("GOGC"); env != "" {
		logger.Info("garbage collector from GOGC", "gogc", env)
		return func() {}
	}
	startup := percent
	if percent >= 0 && percent < 100 {
		startup = 100
	}
	debug.SetGCPercent(startup)
	logger.Info("garbage collector set", "gogc", percent, "gogc_until_ready", startup)
	return func() { debug.SetGCPercent(percent) }
}

// setMemoryLimit sets the Go runtime's soft memory limit (GOMEMLIMIT) to
// ratio of the container's memory limit, as limit reports it (cgroup v2
// memory.max or v1 memory.limit_in_bytes of this process's cgroup:
// memlimit.FromCgroup), so the garbage collector works harder before the
// container is OOM-killed; the chart needs no env entry that could drift
// from resources.limits.memory. A GOMEMLIMIT variable wins (and
// AUTOMEMLIMIT, automemlimit's own); ratio 0 turns it off. The cgroup is
// read by github.com/KimMachineGun/automemlimit, the library most Go
// services in Kubernetes use for this, rather than parsed here.
func setMemoryLimit(ratio float64, limit memlimit.Provider, logger *slog.Logger) error {
	if ratio == 0 {
		logger.Debug("no Go memory limit: --runtime.gomemlimit-ratio=0")
		return nil
	}
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		logger.Info("Go memory limit from GOMEMLIMIT", "gomemlimit", env)
		return nil
	}
	container, err := limit()
	switch {
	case err == memlimit.ErrNoLimit || (err == nil && container == 0):
		logger.Debug("no Go memory limit: the container has no memory limit")
		return nil
	case err != nil:
		// Not fatal: outside a container, or a cgroup layout the library
		// does not know; the limit is then Go's default (none).
		logger.Warn("no Go memory limit: the container's memory limit not read", "err", err)
		return nil
	}
	set, err := memlimit.Set(memlimit.WithRatio(ratio), memlimit.WithProvider(memlimit.Limit(container)))
	if err != nil {
		return err
	}
	logger.Info("Go memory limit set from the container's", "gomemlimit_bytes", set, "container_limit_bytes", container, "ratio", ratio)
	return nil
}
