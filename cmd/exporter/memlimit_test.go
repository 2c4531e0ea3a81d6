package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// fakeRoot writes files (path → content) under a fresh directory.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func noEnv(string) string { return "" }

func TestMemoryLimit(t *testing.T) {
	const mi = 1 << 20
	v1Self := "12:memory:/kubepods/pod1/ctr\n11:cpu,cpuacct:/kubepods/pod1/ctr\n0::/\n"
	for _, tc := range []struct {
		desc       string
		files      map[string]string
		ratio      float64
		env        string
		want, from int64
		file       string
	}{
		{"cgroup v2 in a cgroup namespace", map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "536870912\n"},
			0.9, "", 483183820, 512 * mi, "sys/fs/cgroup/memory.max"},
		{"cgroup v2, the process's own cgroup", map[string]string{"proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "1073741824", "sys/fs/cgroup/memory.max": "max"},
			0.5, "", 512 * mi, 1024 * mi, "sys/fs/cgroup/kubepods/pod1/ctr/memory.max"},
		{"cgroup v2 without a limit", map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "max\n"},
			0.9, "", 0, 0, ""},
		{"cgroup v1 mounted at the container's cgroup", map[string]string{"proc/self/cgroup": v1Self, "sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n"},
			0.9, "", 241591910, 256 * mi, "sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"cgroup v1, the process's own cgroup", map[string]string{"proc/self/cgroup": v1Self, "sys/fs/cgroup/memory/kubepods/pod1/ctr/memory.limit_in_bytes": "268435456\n"},
			1, "", 256 * mi, 256 * mi, "sys/fs/cgroup/memory/kubepods/pod1/ctr/memory.limit_in_bytes"},
		{"cgroup v1 unlimited", map[string]string{"proc/self/cgroup": v1Self, "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"},
			0.9, "", 0, 0, ""},
		{"GOMEMLIMIT set", map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "536870912\n"},
			0.9, "400MiB", 0, 0, ""},
		{"turned off", map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "536870912\n"},
			0, "", 0, 0, ""},
		{"not Linux", nil, 0.9, "", 0, 0, ""},
	} {
		root := fakeRoot(t, tc.files)
		getenv := func(name string) string {
			if name == "GOMEMLIMIT" {
				return tc.env
			}
			return ""
		}
		limit, cgroup, file, err := memoryLimit(tc.ratio, root, getenv)
		if err != nil {
			t.Errorf("%s: %v", tc.desc, err)
			continue
		}
		if limit != tc.want || cgroup != tc.from || tc.file != "" && file != filepath.Join(root, tc.file) {
			t.Errorf("%s: limit %d of %d from %s, want %d of %d from %s", tc.desc, limit, cgroup, file, tc.want, tc.from, tc.file)
		}
	}
}

func TestMemoryLimitErrors(t *testing.T) {
	if _, _, _, err := memoryLimit(1.5, t.TempDir(), noEnv); err == nil || !strings.Contains(err.Error(), "--runtime.gomemlimit-ratio") {
		t.Errorf("ratio 1.5: %v, want an error naming the flag", err)
	}
	root := fakeRoot(t, map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "lots\n"})
	if _, _, _, err := memoryLimit(0.9, root, noEnv); err == nil || !strings.Contains(err.Error(), "memory.max") {
		t.Errorf("unreadable limit: %v, want an error naming the file", err)
	}
}

// --runtime.gogc applies once the initial list is handled, with Go's
// default of 100 until then if it is lower; a GOGC variable wins; what is
// neither a percentage nor -1 is an error naming the flag.
func TestSetGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	logger := slog.New(slog.DiscardHandler)
	for _, c := range []struct{ flag, startup int }{{50, 100}, {200, 200}, {-1, -1}} {
		ready, err := setGCPercent(c.flag, noEnv, logger)
		if err != nil {
			t.Fatal(err)
		}
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
	ready, err := setGCPercent(50, gogc, logger)
	if err != nil {
		t.Fatal(err)
	}
	ready()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC %d with GOGC=200 in the environment, want the runtime's own (100 here)", got)
	}
	if _, err := setGCPercent(-2, noEnv, logger); err == nil || !strings.Contains(err.Error(), "--runtime.gogc") {
		t.Errorf("--runtime.gogc=-2: error %v, want one naming the flag", err)
	}
}
