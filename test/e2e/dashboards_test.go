//go:build e2e

package e2e

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/crowsnest/crowsnest/dashboards"
)

// dashboardVars are the values the Grafana variables of dashboards/ take
// when checkDashboardQueries runs their queries: the built-in windows,
// regexes for the multi-value variables (used with =~) and an app of the
// scenario that has a failed sync, drift and a condition, so the
// failure and drift panels have data too. cluster is All (.*): the e2e's
// series carry no cluster label, as one installation's do.
var dashboardVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "1h",
	"cluster":         ".*",
	"env":             ".*",
	"project":         "default",
	"app":             "dev-backend",
}

// checkDashboardQueries runs every Prometheus query of the Grafana
// dashboards of the uids given (panel targets and label_values variables)
// against prom, variables expanded with dashboardVars overridden by vars,
// and fails for each query that errors or returns no samples: proof that
// every panel shows data. Each test checks the dashboards whose data its
// Prometheus has; keep (nil: all) picks the queries. Each is evaluated now,
// or, for panels that have data only at times, at each of ats until one
// evaluation returns samples.
func checkDashboardQueries(t *testing.T, prom *Prometheus, ats []time.Time, vars map[string]string, keep func(dashboards.Query) bool, uids ...string) {
	t.Helper()
	all, err := dashboards.PrometheusQueries("../../dashboards")
	if err != nil {
		t.Fatalf("dashboard queries: %v", err)
	}
	values := maps.Clone(dashboardVars)
	maps.Copy(values, vars)
	var queries []dashboards.Query
	for _, q := range all {
		if slices.Contains(uids, q.Dashboard) && (keep == nil || keep(q)) {
			queries = append(queries, q)
		}
	}
	defer func() {
		if !t.Failed() {
			t.Logf("all %d Prometheus queries of the dashboards returned data", len(queries))
		}
	}()
	if len(queries) == 0 {
		t.Fatalf("no Prometheus queries of the dashboards %v", uids)
	}
	instants := ats
	if len(instants) == 0 {
		instants = []time.Time{{}} // now
	}
	for _, q := range queries {
		expr := dashboards.Expand(q.Expr, values)
		var samples []promSample
		for _, at := range instants {
			if samples, err = prom.QueryAt(expr, at); err != nil || len(samples) > 0 {
				break
			}
		}
		switch {
		case err != nil:
			t.Errorf("dashboard %s, panel %q (%s): %v\n\texpr: %s", q.Dashboard, q.Panel, q.RefID, err, expr)
		case len(samples) == 0:
			t.Errorf("dashboard %s, panel %q (%s): no samples\n\texpr: %s", q.Dashboard, q.Panel, q.RefID, expr)
		}
	}
}
