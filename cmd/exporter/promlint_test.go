package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestMetricsLint runs client_golang's promlint (the checks of
// `promtool check metrics`) over the demo's /metrics: names, units,
// suffixes and help as Prometheus' conventions want them.
func TestMetricsLint(t *testing.T) {
	d := startDemo(t)
	_, body := d.get(t, "/metrics")
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("lint /metrics: %v", err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	// The linter reads this exposition: a counter without _total added
	// to it is found.
	bad := body + "# HELP crowsnest_lint_probe a probe.\n# TYPE crowsnest_lint_probe counter\ncrowsnest_lint_probe 1\n"
	if problems, err := promlint.New(strings.NewReader(bad)).Lint(); err != nil || len(problems) != 1 {
		t.Errorf("a counter without _total: problems %v (%v), want one", problems, err)
	}
}
