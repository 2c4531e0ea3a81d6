//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
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
	"namespace":       "argocd",
	"dest_cluster":    "in-cluster", // the e2e's Argo CD deploys to the cluster it runs in
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

// logFact names a fact a dashboard log query must return: the line's
// fields that identify it.
type logFact map[string]string

// checkDashboardLogQueries runs every log query of the dashboards of the
// uids given, translated to LogsQL by dashboards.LogsQL, against vl, which
// a crowsnest pushes its facts to (variables expanded as in
// checkDashboardQueries, vars overriding). Each query must return facts
// (polled: pushes batch for a second); every fact returned must satisfy
// each label matcher of the LogQL query, read independently of the
// translation (a missing field is "", as in Loki); and the facts want
// lists for the panel (by title) must be among them.
func checkDashboardLogQueries(ctx context.Context, t *testing.T, vl *VictoriaLogs, vars map[string]string, want map[string][]logFact, uids ...string) {
	t.Helper()
	all, err := dashboards.LogQueries("../../dashboards")
	if err != nil {
		t.Fatalf("dashboard log queries: %v", err)
	}
	values := maps.Clone(dashboardVars)
	maps.Copy(values, vars)
	n := 0
	for _, q := range all {
		if !slices.Contains(uids, q.Dashboard) {
			continue
		}
		n++
		expr := dashboards.Expand(q.Expr, values)
		logsql, err := dashboards.LogsQL(q.Expr, values)
		if err != nil {
			t.Errorf("dashboard %s, panel %q: no LogsQL for %s: %v", q.Dashboard, q.Panel, expr, err)
			continue
		}
		matchers := logQLMatchers(expr)
		var rows []map[string]string
		eventually(t, scenarioTimeout, func() error {
			if rows, err = vl.Query(ctx, logsql); err != nil {
				return err
			}
			if len(rows) == 0 {
				return fmt.Errorf("dashboard %s, panel %q: no facts\n\tLogQL: %s\n\tLogsQL: %s", q.Dashboard, q.Panel, expr, logsql)
			}
			for _, f := range want[q.Panel] {
				if !slices.ContainsFunc(rows, f.in) {
					return fmt.Errorf("dashboard %s, panel %q: %d facts, none %v\n\tLogsQL: %s", q.Dashboard, q.Panel, len(rows), f, logsql)
				}
			}
			return nil
		})
		bad := 0
		for _, r := range rows {
			for _, m := range matchers {
				if !m.matches(r[m.name]) {
					if bad++; bad <= 3 { // the first few tell
						t.Errorf("dashboard %s, panel %q: fact %v fails %s of the LogQL query %s (LogsQL %s)", q.Dashboard, q.Panel, r, m, expr, logsql)
					}
					break
				}
			}
		}
		if bad > 3 {
			t.Errorf("dashboard %s, panel %q: %d of %d facts fail the LogQL query", q.Dashboard, q.Panel, bad, len(rows))
		}
		t.Logf("dashboard %s, panel %q: %d facts from VictoriaLogs for %s", q.Dashboard, q.Panel, len(rows), logsql)
	}
	if n == 0 {
		t.Fatalf("no log queries in the dashboards %v", uids)
	}
}

// in reports whether row has every field of f.
func (f logFact) in(row map[string]string) bool {
	for k, v := range f {
		if row[k] != v {
			return false
		}
	}
	return true
}

// logQLMatcher is one label matcher of a LogQL query: a stream selector's
// or a label filter's after | json.
type logQLMatcher struct{ name, op, value string }

func (m logQLMatcher) String() string { return m.name + m.op + `"` + m.value + `"` }

// matches applies the matcher to a value as Loki does: regexps match the
// whole value.
func (m logQLMatcher) matches(v string) bool {
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	}
	re := regexp.MustCompile("^(?:" + m.value + ")$")
	return re.MatchString(v) == (m.op == "=~")
}

// logQLMatchers reads the matchers of an expanded LogQL query of the
// subset the dashboards use (name op "value", values without escapes).
func logQLMatchers(expr string) []logQLMatcher {
	var out []logQLMatcher
	for _, m := range regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`).FindAllStringSubmatch(expr, -1) {
		out = append(out, logQLMatcher{m[1], m[2], strings.ReplaceAll(m[3], `\\`, `\`)})
	}
	return out
}
