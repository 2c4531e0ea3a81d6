//go:build e2e

package e2e

import (
	"testing"

	"github.com/crowsnest/crowsnest/dashboards"
)

// dashboardVars are the values the Grafana variables of dashboards/ take
// when checkDashboardQueries runs their queries: the built-in windows,
// regexes for the multi-value variables (used with =~) and an app of the
// scenario that has a failed sync, drift and a condition, so the
// failure and drift panels have data too.
var dashboardVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "1h",
	"env":             ".*",
	"project":         "default",
	"app":             "dev-backend",
}

// checkDashboardQueries runs every Prometheus query of the Grafana
// dashboards (panel targets and label_values variables) against prom,
// variables expanded with dashboardVars, and fails for each query that
// errors or returns no samples: proof that every panel shows data.
func checkDashboardQueries(t *testing.T, prom *Prometheus) {
	t.Helper()
	queries, err := dashboards.PrometheusQueries("../../dashboards")
	if err != nil {
		t.Fatalf("dashboard queries: %v", err)
	}
	if len(queries) == 0 {
		t.Fatal("no Prometheus queries found in dashboards/")
	}
	defer func() {
		if !t.Failed() {
			t.Logf("all %d Prometheus queries of the dashboards returned data", len(queries))
		}
	}()
	for _, q := range queries {
		expr := dashboards.Expand(q.Expr, dashboardVars)
		samples, err := prom.Query(expr)
		switch {
		case err != nil:
			t.Errorf("dashboard %s, panel %q (%s): %v\n\texpr: %s", q.Dashboard, q.Panel, q.RefID, err, expr)
		case len(samples) == 0:
			t.Errorf("dashboard %s, panel %q (%s): no samples\n\texpr: %s", q.Dashboard, q.Panel, q.RefID, expr)
		}
	}
}
