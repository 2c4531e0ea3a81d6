package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
)

// A reload of an unchanged file applies nothing; a changed one applies once;
// a broken one keeps the running configuration.
func TestReloadAppliesOnlyChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crowsnest.yml")
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("default_env: one\n")
	r := NewReloader(path, nil, prometheus.NewRegistry(), promslog.NewNopLogger())
	if _, err := r.Load(); err != nil {
		t.Fatal(err)
	}
	var applied []string
	r.OnReload(func(c *Config) { applied = append(applied, c.DefaultEnv) })
	for i := 0; i < 3; i++ {
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if len(applied) != 0 {
		t.Fatalf("unchanged file applied %d times, want none", len(applied))
	}
	write("default_env: two\n")
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	write("default_env: [broken\n")
	if err := r.Reload(); err == nil {
		t.Error("a broken file reloaded without error")
	}
	write("default_env: two\n")
	if err := r.Reload(); err != nil { // the running one: nothing to apply
		t.Fatal(err)
	}
	if len(applied) != 1 || applied[0] != "two" {
		t.Errorf("applied %v, want the one change", applied)
	}
}
