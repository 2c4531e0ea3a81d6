package daemon

import (
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

func noEnv(string) string { return "" }

// The soft memory limit is the ratio of the container's limit; GOMEMLIMIT,
// a ratio of 0 and a container without a limit leave Go's default (none);
// a limit that cannot be read is no reason not to start. (Reading the
// cgroup v1 and v2 files is automemlimit's, tested there.)
func TestMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(orig)
	const mi = 1 << 20
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		desc     string
		ratio    float64
		env      string
		provider memlimit.Provider
		want     int64
	}{
		{"0.9 of 512 MiB", 0.9, "", memlimit.Limit(512 * mi), 483183820},
		{"all of 256 MiB", 1, "", memlimit.Limit(256 * mi), 256 * mi},
		{"no container limit", 0.9, "", func() (uint64, error) { return 0, memlimit.ErrNoLimit }, math.MaxInt64},
		{"not in a cgroup", 0.9, "", func() (uint64, error) { return 0, errors.New("no cgroup") }, math.MaxInt64},
		{"GOMEMLIMIT set", 0.9, "100MiB", memlimit.Limit(512 * mi), math.MaxInt64},
		{"turned off", 0, "", memlimit.Limit(512 * mi), math.MaxInt64},
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		t.Setenv("GOMEMLIMIT", tc.env)
		if err := setMemoryLimit(tc.ratio, tc.provider, logger); err != nil {
			t.Errorf("%s: %v", tc.desc, err)
		}
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("%s: GOMEMLIMIT %d, want %d", tc.desc, got, tc.want)
		}
	}
}

// --runtime.gogc applies once the initial list is handled, with Go's
// default of 100 until then if it is lower; a GOGC variable wins.
func TestSetGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	logger := slog.New(slog.DiscardHandler)
	for _, c := range []struct{ flag, startup int }{{50, 100}, {200, 200}, {-1, -1}} {
		ready := setGCPercent(c.flag, noEnv, logger)
		if got := debug.SetGCPercent(7); got != c.startup {
			t.Errorf("--runtime.gogc=%d: GOGC %d until ready, want %d", c.flag, got, c.startup)
		}
		ready()
		if got := debug.SetGCPercent(100); got != c.flag {
			t.Errorf("--runtime.gogc=%d: GOGC %d once ready", c.flag, got)
		}
	}
	gogc := func(name string) string {
		if name == "GOGC" {
			return "200"
		}
		return ""
	}
	setGCPercent(50, gogc, logger)()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC %d with GOGC=200 in the environment, want the runtime's own (100 here)", got)
	}
}
