package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Go's garbage collector knows nothing of the container's memory limit: by
// default it lets the heap grow to twice what is live, and a pod near its
// limit is OOM-killed rather than collected. A soft limit (GOMEMLIMIT) a
// little below the container's makes it collect harder as the limit
// nears. crowsnest derives it from the cgroup at start, so the chart needs
// no env entry that could drift from resources.limits.memory.

// unlimited is the least cgroup v1 value that means no limit (it reports
// the largest page-aligned int64).
const unlimited = 1 << 62

// setGCPercent applies --runtime.gogc, unless the GOGC environment
// variable is set (getenv): it returns what to call once the initial list
// is handled (waitReady), and logs what it did once. Until then the
// collector runs at least at Go's default of 100: the start-up's garbage
// (every app's JSON as decoded) is large and short-lived, and collecting it
// at 50 cost 1.8 s more CPU for 10,000 apps, the ready time's budget on 2
// cores (docs/scale.md). After it, the heap is crowsnest's cache.
func setGCPercent(percent int, getenv func(string) string, logger *slog.Logger) (ready func(), err error) {
	if env := getenv("GOGC"); env != "" {
		logger.Info("garbage collector from GOGC", "gogc", env)
		return func() {}, nil
	}
	if percent < -1 {
		return nil, fmt.Errorf("--runtime.gogc: %d is neither a percentage nor -1 (off)", percent)
	}
	startup := percent
	if percent >= 0 && percent < 100 {
		startup = 100
	}
	debug.SetGCPercent(startup)
	logger.Info("garbage collector set", "gogc", percent, "gogc_until_ready", startup)
	return func() { debug.SetGCPercent(percent) }, nil
}

// setMemoryLimit sets the Go runtime's soft memory limit to ratio of the
// cgroup's memory limit, unless GOMEMLIMIT is set, ratio is 0 or there is
// no limit; it logs what it did once.
func (c *cli) setMemoryLimit(logger *slog.Logger) error {
	limit, cgroup, file, err := memoryLimit(*c.memLimitRatio, "/", os.Getenv)
	switch {
	case err != nil:
		return err
	case limit > 0:
		debug.SetMemoryLimit(limit)
		logger.Info("Go memory limit set from the container's", "gomemlimit_bytes", limit, "container_limit_bytes", cgroup, "ratio", *c.memLimitRatio, "file", file)
	case os.Getenv("GOMEMLIMIT") != "":
		logger.Info("Go memory limit from GOMEMLIMIT", "gomemlimit", os.Getenv("GOMEMLIMIT"))
	default:
		logger.Debug("no Go memory limit: no container memory limit found, or --runtime.gomemlimit-ratio=0")
	}
	return nil
}

// memoryLimit returns the soft memory limit to set: ratio of the memory
// limit of the cgroup this process runs in, read from the file system
// under root, with the limit and the file it came from; 0 when GOMEMLIMIT
// is set (getenv), ratio is 0 or no limit is found.
func memoryLimit(ratio float64, root string, getenv func(string) string) (limit, cgroup int64, file string, err error) {
	if ratio < 0 || ratio > 1 {
		return 0, 0, "", fmt.Errorf("--runtime.gomemlimit-ratio: %v is not between 0 and 1", ratio)
	}
	if ratio == 0 || getenv("GOMEMLIMIT") != "" {
		return 0, 0, "", nil
	}
	cgroup, file, err = cgroupMemoryLimit(root)
	if err != nil || cgroup == 0 {
		return 0, 0, "", err
	}
	return int64(float64(cgroup) * ratio), cgroup, file, nil
}

// cgroupMemoryLimit reads the memory limit of this process's cgroup under
// root: cgroup v2's memory.max, else v1's memory.limit_in_bytes, of the
// cgroup /proc/self/cgroup names, else of the mount's root (a container
// sees its own cgroup there). It returns 0 for no limit.
func cgroupMemoryLimit(root string) (int64, string, error) {
	v2Path, v1Path, err := selfCgroups(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0, "", err
	}
	var candidates []string
	if v2Path != "" {
		candidates = append(candidates,
			filepath.Join(root, "sys/fs/cgroup", v2Path, "memory.max"),
			filepath.Join(root, "sys/fs/cgroup/memory.max"))
	}
	if v1Path != "" {
		candidates = append(candidates,
			filepath.Join(root, "sys/fs/cgroup/memory", v1Path, "memory.limit_in_bytes"),
			filepath.Join(root, "sys/fs/cgroup/memory/memory.limit_in_bytes"))
	}
	for _, f := range candidates {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", fmt.Errorf("read the container's memory limit: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, f, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, "", fmt.Errorf("read the container's memory limit: %s: %w", f, err)
		}
		if n <= 0 || n >= unlimited {
			return 0, f, nil
		}
		return n, f, nil
	}
	return 0, "", nil
}

// selfCgroups reads /proc/self/cgroup: the cgroup v2 path (the "0::" line)
// and the cgroup v1 path of the memory controller; "" for none. A missing
// file (not Linux) is no error.
func selfCgroups(path string) (v2, v1 string, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read the container's memory limit: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case containsController(parts[1], "memory"):
			v1 = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("read the container's memory limit: %w", err)
	}
	return v2, v1, nil
}

func containsController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
