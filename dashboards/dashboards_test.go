package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// noUnitTypes are the panel types whose content is not a number, so a
// unit makes no sense: text, logs, traces and layout panels.
var noUnitTypes = map[string]bool{
	"row": true, "text": true, "logs": true, "traces": true, "nodeGraph": true,
	"news": true, "dashlist": true, "alertlist": true, "annolist": true,
}

// noUnitDatasources are the datasource types whose results are not numbers
// (a Tempo trace list, Loki log lines), whatever panel shows them.
var noUnitDatasources = map[string]bool{"tempo": true, "loki": true}

// requiredDatasourceVars are the datasource template variables every
// dashboard has, with the plugin type each selects.
var requiredDatasourceVars = map[string]string{"prometheus": "prometheus", "tempo": "tempo", "loki": "loki"}

// dsVariable is the form every panel and target datasource uid takes.
var dsVariable = regexp.MustCompile(`^\$\{[A-Za-z0-9_]+\}$`)

// rangeFuncs are the PromQL functions over a range vector whose window
// must follow the dashboard: $__rate_interval or $__range.
var rangeFuncs = regexp.MustCompile(`\b(rate|irate|increase|delta|idelta|deriv|changes|resets)\s*\(`)

// rangeSelector matches a range or subquery window, e.g. [5m] or [$__range].
var rangeSelector = regexp.MustCompile(`\[([^\]]*)\]`)

// crowsnestSeries matches a crowsnest metric (crowsnest_...) or a series
// recorded by crowsnest's rules (crowsnest:...).
var crowsnestSeries = regexp.MustCompile(`\bcrowsnest[_:]`)

// loadAll parses the dashboards the builders render (which
// TestRenderedFiles keeps equal to the files).
func loadAll(t *testing.T) map[string]*Dashboard {
	t.Helper()
	files, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Parse(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("want 3 dashboards, got %d", len(ds))
	}
	return ds
}

func TestDashboardsLint(t *testing.T) {
	uids := map[string]string{}
	for file, d := range loadAll(t) {
		t.Run(file, func(t *testing.T) {
			want := strings.TrimSuffix(file, ".json")
			if d.UID != want {
				t.Errorf("uid %q, want the file name without .json: %q", d.UID, want)
			}
			if other, dup := uids[d.UID]; dup {
				t.Errorf("uid %q also used by %s", d.UID, other)
			}
			uids[d.UID] = file
			if d.Title == "" {
				t.Error("no title")
			}
			if d.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d, want >= 36 (Grafana 10/11)", d.SchemaVersion)
			}
			lintVariables(t, d)
			lintAnnotations(t, d)
			ids := map[int]bool{}
			for _, p := range d.AllPanels() {
				if ids[p.ID] {
					t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
				}
				ids[p.ID] = true
				lintPanel(t, p)
			}
		})
	}
}

// lintAnnotations: every annotation query but Grafana's built-in one has a
// name, a ${...} datasource and a query, linted as a panel's would be.
func lintAnnotations(t *testing.T, d *Dashboard) {
	t.Helper()
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 {
			continue
		}
		if a.Name == "" || a.Datasource == nil || !dsVariable.MatchString(a.Datasource.UID) || strings.TrimSpace(a.Expr) == "" {
			t.Errorf("annotation %q: want a name, a ${...} datasource and a query: %+v", a.Name, a)
			continue
		}
		if a.Datasource.Type == "prometheus" {
			lintPromQL(t, "annotation "+a.Name, Target{RefID: "Anno", Expr: a.Expr})
		}
	}
}

func lintVariables(t *testing.T, d *Dashboard) {
	t.Helper()
	seen := map[string]Variable{}
	for _, v := range d.Templating.List {
		seen[v.Name] = v
		if v.Datasource != nil && !dsVariable.MatchString(v.Datasource.UID) {
			t.Errorf("variable %s: datasource uid %q is not a ${...} variable", v.Name, v.Datasource.UID)
		}
		if v.Type != "query" || v.Name == "cluster" {
			continue
		}
		for _, p := range clusterProblems(v.QueryString()) {
			t.Errorf("variable %s: %s", v.Name, p)
		}
	}
	c, ok := seen["cluster"]
	// One installation on the application dashboard (an app is of one;
	// two may have apps of one namespace and name), any on the others.
	multi := d.UID != uidApp
	if !ok || c.QueryString() != "label_values(crowsnest_build_info, cluster)" || c.Multi != multi || !c.IncludeAll || c.AllValue != ".*" {
		t.Errorf("want a cluster variable label_values(crowsnest_build_info, cluster), multi %v, with All as .*: %+v", multi, c)
	}
	if a, ok := seen["argocd_url"]; !ok || a.Hide != 2 || !strings.HasPrefix(a.QueryString(), "label_values(crowsnest_links_info{") {
		t.Errorf("want a hidden argocd_url variable from crowsnest_links_info: %+v", a)
	}
	for name, typ := range requiredDatasourceVars {
		v, ok := seen[name]
		if !ok {
			t.Errorf("no %q datasource variable", name)
			continue
		}
		if v.Type != "datasource" || v.QueryString() != typ {
			t.Errorf("variable %s: type %q query %q, want a datasource variable of %q", name, v.Type, v.QueryString(), typ)
		}
	}
}

func lintPanel(t *testing.T, p Panel) {
	t.Helper()
	if p.Type == "row" {
		if p.Title == "" {
			t.Errorf("row %d has no title", p.ID)
		}
		return
	}
	name := p.Title
	if name == "" {
		t.Errorf("panel %d has no title", p.ID)
	}
	if strings.TrimSpace(p.Description) == "" {
		t.Errorf("panel %q: no description", name)
	}
	if p.Datasource == nil || !dsVariable.MatchString(p.Datasource.UID) {
		t.Errorf("panel %q: datasource %+v is not a ${...} variable", name, p.Datasource)
		return
	}
	if len(p.Targets) == 0 && p.Type != "text" {
		t.Errorf("panel %q: no targets", name)
	}
	lintExemplars(t, p)
	lintTableLinks(t, p)
	needsUnit := !noUnitTypes[p.Type] && !noUnitDatasources[p.Datasource.Type]
	if needsUnit && (p.FieldConfig.Defaults.Unit == nil || *p.FieldConfig.Defaults.Unit == "") {
		t.Errorf("panel %q (%s): no fieldConfig.defaults.unit", name, p.Type)
	}
	for _, tg := range p.Targets {
		ds := tg.Datasource
		if ds == nil {
			ds = p.Datasource
		}
		if !dsVariable.MatchString(ds.UID) {
			t.Errorf("panel %q target %s: datasource uid %q is not a ${...} variable", name, tg.RefID, ds.UID)
		}
		if tg.RefID == "" {
			t.Errorf("panel %q: target without refId", name)
		}
		switch ds.Type {
		case "prometheus":
			lintPromQL(t, name, tg)
		case "loki":
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s: empty LogQL", name, tg.RefID)
			}
		case "tempo":
			if strings.TrimSpace(tg.Query) == "" {
				t.Errorf("panel %q target %s: empty TraceQL", name, tg.RefID)
			}
		}
	}
}

func lintPromQL(t *testing.T, panel string, tg Target) {
	t.Helper()
	expr := tg.Expr
	if strings.TrimSpace(expr) == "" {
		t.Errorf("panel %q target %s: empty expr", panel, tg.RefID)
		return
	}
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("panel %q target %s: unbalanced brackets in %s", panel, tg.RefID, expr)
	}
	if !crowsnestSeries.MatchString(expr) {
		t.Errorf("panel %q target %s: queries no crowsnest metric or record: %s", panel, tg.RefID, expr)
	}
	for _, p := range clusterProblems(expr) {
		t.Errorf("panel %q target %s: %s", panel, tg.RefID, p)
	}
	if rangeFuncs.MatchString(expr) {
		for _, m := range rangeSelector.FindAllStringSubmatch(expr, -1) {
			if m[1] != "$__rate_interval" && m[1] != "$__range" {
				t.Errorf("panel %q target %s: window [%s], want [$__rate_interval] or [$__range]: %s", panel, tg.RefID, m[1], expr)
			}
		}
		if !rangeSelector.MatchString(expr) {
			t.Errorf("panel %q target %s: range function without a window: %s", panel, tg.RefID, expr)
		}
	}
}

// TestNoHardCodedDatasourceUIDs walks the raw JSON: every "datasource"
// anywhere (panels, targets, variables, annotations) is either a ${...}
// variable or Grafana's own built-in annotation datasource.
func TestNoHardCodedDatasourceUIDs(t *testing.T) {
	files, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range files {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, c := range v {
					if k == "datasource" {
						checkDatasourceRef(t, f+path+".datasource", c)
					}
					walk(path+"."+k, c)
				}
			case []any:
				for _, c := range v {
					walk(path+"[]", c)
				}
			}
		}
		walk("", v)
	}
}

func checkDatasourceRef(t *testing.T, where string, v any) {
	t.Helper()
	switch ds := v.(type) {
	case string:
		if !dsVariable.MatchString(ds) {
			t.Errorf("%s: datasource %q is not a ${...} variable", where, ds)
		}
	case map[string]any:
		uid, _ := ds["uid"].(string)
		typ, _ := ds["type"].(string)
		if typ == "grafana" && uid == "-- Grafana --" {
			return
		}
		if !dsVariable.MatchString(uid) {
			t.Errorf("%s: datasource uid %q is not a ${...} variable", where, uid)
		}
	case nil:
	default:
		t.Errorf("%s: unexpected datasource %v", where, v)
	}
}

// TestPrometheusQueries checks the helper the e2e suite uses: it finds the
// queries, and with every dashboard variable given Expand leaves none.
func TestPrometheusQueries(t *testing.T) {
	qs, err := PrometheusQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(qs, prometheusQueries(loadAll(t))) {
		t.Error("PrometheusQueries(\".\") differs from the queries of the builders: go test ./dashboards -update")
	}
	perDashboard := map[string]int{}
	for _, q := range qs {
		perDashboard[q.Dashboard]++
		if strings.Contains(q.Expr, "| json") || strings.Contains(q.Expr, "| logfmt") {
			t.Errorf("%s: a LogQL query was taken for PromQL", q)
		}
		e := Expand(q.Expr, map[string]string{"env": ".*", "project": ".*", "app": "dev-backend", "namespace": "argocd", "dest_cluster": "in-cluster"})
		if strings.Contains(e, "$") || strings.Contains(e, "[[") {
			t.Errorf("%s: variables left after Expand: %s", q, e)
		}
	}
	for _, uid := range []string{"crowsnest-fleet", "crowsnest-app", "crowsnest-dora"} {
		if perDashboard[uid] == 0 {
			t.Errorf("no Prometheus queries found in %s", uid)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"app": "dev-backend", "namespace": "argocd", "dest_cluster": "in-cluster", "env": "dev|stage", "__rate_interval": "2m"}
	for in, want := range map[string]string{
		`rate(x{name="$app"}[$__rate_interval])`:     `rate(x{name="dev-backend"}[2m])`,
		`increase(x{env=~"${env:regex}"}[$__range])`: `increase(x{env=~"dev|stage"}[1h])`,
		`x{name="${app}", env=~"[[env]]"}`:           `x{name="dev-backend", env=~"dev|stage"}`,
		`x[$__interval] / $__range_s`:                `x[15s] / 3600`,
		`x{a="$unknown"}`:                            `x{a="$unknown"}`,
		`x{a="$application"}`:                        `x{a="$application"}`,
	} {
		if got := Expand(in, vars); got != want {
			t.Errorf("Expand(%s) = %s, want %s", in, got, want)
		}
	}
}

// Several replicas. With --leader-elect every crowsnest replica serves the
// same per-app series, the same app counters and the same sync histograms
// (each replica watches every app and counts every operation); only the
// scrape's target labels (instance, pod...) tell the copies apart. A
// dashboard query must give the same numbers with two replicas as with
// one, so the first aggregation over such a series removes the replica
// dimension and nothing else:
//
//   - a per-app series (crowsnest_app_*): max by (cluster, namespace, name,
//     project, env, <its own labels>) before any sum/count/avg, e.g.
//     sum by (status) (max by (cluster, namespace, name, project, env, status) (crowsnest_app_sync_status{...}));
//   - a first-seen time (crowsnest_app_*_since_timestamp_seconds): min by
//     the same labels, the earliest replica's start, e.g.
//     time() - min by (cluster, namespace, name, project, env) (crowsnest_app_drift_since_timestamp_seconds{...});
//   - a counter or histogram (crowsnest_app_syncs_total,
//     crowsnest_sync_duration_seconds_*, crowsnest_sync_wave_duration_seconds_*):
//     max by (cluster, <the metric's own labels>[, le]) of the rate or increase,
//     before sum or histogram_quantile, e.g.
//     histogram_quantile(0.9, sum by (env, le) (max by (cluster, project, env, result, le) (rate(crowsnest_sync_duration_seconds_bucket{...}[$__rate_interval])))).
//     max, not sum or avg: the replicas count the same operations, and one
//     that restarted during the window has counted fewer, never more; max
//     per bucket keeps the buckets cumulative.
//
// Several installations. The series of two crowsnest installations (two
// Argo CDs, two clusters) carry a cluster label the user adds (scrape
// relabelling or Prometheus' external labels); one installation's carry
// none. Every dedup keeps cluster (a max or min without by (...) merges
// installations too), so two installations never merge while two
// replicas of one do; a query over a series without the label keeps
// working, cluster being "" there.
//
// The dedup names the labels it keeps (by) rather than those it drops
// (without (instance, pod)): the target labels a scrape adds depend on the
// setup (a ServiceMonitor adds pod, container, endpoint, service...), the
// metric's own labels do not. The daemon's own metrics (crowsnest_source_*,
// crowsnest_spans_*, crowsnest_leader...) are per replica by nature and
// are not checked.
//
// TestQueriesDeduplicateReplicas holds every Prometheus query of the
// dashboards to these rules with a small PromQL tokenizer (the PromQL
// parser would bring github.com/prometheus/prometheus into the module).

// appIdentity are the labels that name an Application on every per-app
// series.
var appIdentity = []string{"namespace", "name", "project", "env"}

// appSeriesLabels are, per crowsnest_app_* metric, the labels beyond
// appIdentity that tell one series of an app from another (the labels of
// an info metric such as repo are attributes of the app, not series of
// it). A dedup in front of another aggregation keeps them all.
var appSeriesLabels = map[string][]string{
	"crowsnest_app_info":                                          nil,
	"crowsnest_app_source_info":                                   {"source"},
	"crowsnest_app_sync_status":                                   {"status"},
	"crowsnest_app_health_status":                                 {"status"},
	"crowsnest_app_operation_phase":                               {"phase"},
	"crowsnest_app_operation_pending_since_timestamp_seconds":     nil,
	"crowsnest_app_sync_window_held":                              nil,
	"crowsnest_app_deletion_timestamp_seconds":                    nil,
	"crowsnest_app_out_of_sync_resources":                         {"group", "kind"},
	"crowsnest_app_drift_since_timestamp_seconds":                 nil,
	"crowsnest_app_policy_violation":                              {"policy"},
	"crowsnest_app_conditions":                                    {"type"},
	"crowsnest_app_last_sync_finished_timestamp_seconds":          nil,
	"crowsnest_app_last_sync_duration_seconds":                    nil,
	"crowsnest_app_last_sync_wave_duration_seconds":               {"phase", "wave"},
	"crowsnest_app_last_successful_sync_timestamp_seconds":        nil,
	"crowsnest_app_syncs_total":                                   {"result"},
	"crowsnest_app_dry_runs_total":                                nil,
	"crowsnest_app_workload_replicas":                             {"kind", "workload", "state"},
	"crowsnest_app_workload_rollout_in_progress":                  {"kind", "workload"},
	"crowsnest_app_workload_job_status":                           {"workload", "status"},
	"crowsnest_app_workload_certificate_ready":                    {"workload"},
	"crowsnest_app_workload_certificate_expiry_timestamp_seconds": {"workload"},
	"crowsnest_app_deployments_total":                             {"result"},
	"crowsnest_app_change_failures_total":                         {"reason"},
	"crowsnest_app_last_deployment_timestamp_seconds":             nil,
	"crowsnest_app_sync_current_wave":                             {"phase"},
	"crowsnest_app_sync_remaining_waves":                          nil,
	"crowsnest_app_sync_expected_finish_timestamp_seconds":        nil,
}

// histogramLabels are the labels of the aggregated sync histograms, which
// every replica observes alike.
var histogramLabels = map[string][]string{
	"crowsnest_sync_duration_seconds":       {"project", "env", "result"},
	"crowsnest_sync_wave_duration_seconds":  {"project", "env", "phase", "wave"},
	"crowsnest_change_lead_time_seconds":    {"project", "env", "until"},
	"crowsnest_deployment_recovery_seconds": {"project", "env"},
	"crowsnest_release_wait_seconds":        {"project", "env"},
	// Per ApplicationSet, from the shard that owns it.
	"crowsnest_applicationset_rollout_step_wait_seconds":     {"namespace", "applicationset", "step"},
	"crowsnest_applicationset_rollout_step_duration_seconds": {"namespace", "applicationset", "step"},
}

// seriesLabels returns the labels that tell the series of a replicated
// metric apart within one replica; replicated is false for the daemon's
// own metrics, known false for a replicated metric missing from the maps.
func seriesLabels(metric string) (labels []string, replicated, known bool) {
	if strings.HasPrefix(metric, "crowsnest_app_") {
		extra, ok := appSeriesLabels[metric]
		return append(append([]string(nil), appIdentity...), extra...), true, ok
	}
	for base, ls := range histogramLabels {
		switch metric {
		case base + "_bucket":
			return append(append([]string(nil), ls...), "le"), true, true
		case base + "_count", base + "_sum":
			return ls, true, true
		}
	}
	return nil, false, false
}

// promAggregations are PromQL's aggregation operators.
var promAggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// promLabelLists are the keywords followed by a parenthesized label list.
var promLabelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// promKeywords are the words after which a parenthesis only groups.
var promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true}

// promTokens splits expr into identifiers, "(", ")", "," and other
// operators, dropping strings, label matchers {...}, range and subquery
// windows [...], numbers and blanks.
func promTokens(expr string) ([]string, error) {
	var toks []string
	isIdentByte := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	skipString := func(i int) (int, error) { // i at the opening quote; returns the index after the closing one
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d", i)
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{' || c == '[':
			closing := byte('}')
			if c == '[' {
				closing = ']'
			}
			j := i + 1
			for j < len(expr) && expr[j] != closing {
				if q := expr[j]; q == '"' || q == '\'' || q == '`' {
					k, err := skipString(j)
					if err != nil {
						return nil, err
					}
					j = k
					continue
				}
				j++
			}
			if j == len(expr) {
				return nil, fmt.Errorf("unclosed %c at %d", c, i)
			}
			i = j + 1
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, string(c))
			i++
		case isIdentByte(c, true):
			j := i + 1
			for j < len(expr) && isIdentByte(expr[j], false) {
				j++
			}
			toks = append(toks, expr[i:j])
			i = j
		case c >= '0' && c <= '9' || c == '.':
			j := i + 1 // a number or a duration such as 5m: no token
			for j < len(expr) && (isIdentByte(expr[j], false) || expr[j] == '.') {
				j++
			}
			i = j
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		default:
			toks = append(toks, string(c))
			i++
		}
	}
	return toks, nil
}

// promFrame is a parenthesis enclosing a metric: an aggregation (with its
// by or without labels), a function call, or plain grouping.
type promFrame struct {
	kind   byte // 'a' aggregation, 'f' function, '(' grouping
	name   string
	mod    string // "by", "without" or ""
	labels []string
}

// metricUse is one metric of an expression with the frames around it,
// innermost first.
type metricUse struct {
	metric string
	frames []promFrame
}

func isPromIdent(t string) bool {
	c := t[0]
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// metricUses lists the crowsnest_* metrics expr selects, each with the
// aggregations and functions around it.
func metricUses(expr string) ([]metricUse, error) {
	toks, err := promTokens(expr)
	if err != nil {
		return nil, err
	}
	var (
		uses    []metricUse
		stack   []promFrame
		pending *promFrame // an aggregation whose '(' comes next
	)
	next := func(i int) string {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return ""
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t == "(":
			switch {
			case pending != nil:
				stack = append(stack, *pending)
				pending = nil
			case i > 0 && isPromIdent(toks[i-1]) && !promKeywords[toks[i-1]]:
				stack = append(stack, promFrame{kind: 'f', name: toks[i-1]})
			default:
				stack = append(stack, promFrame{kind: '('})
			}
		case t == ")":
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced ) in %s", expr)
			}
			closed := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if closed.kind == 'a' && (next(i) == "by" || next(i) == "without") {
				return nil, fmt.Errorf("%s ... %s (...): write the %s clause before the expression it aggregates", closed.name, next(i), next(i))
			}
		case promAggregations[t] && (next(i) == "(" || next(i) == "by" || next(i) == "without"):
			pending = &promFrame{kind: 'a', name: t}
		case promLabelLists[t]:
			if next(i) != "(" {
				return nil, fmt.Errorf("%s without a label list in %s", t, expr)
			}
			var labels []string
			j := i + 2
			for ; j < len(toks) && toks[j] != ")"; j++ {
				if toks[j] != "," {
					labels = append(labels, toks[j])
				}
			}
			if j == len(toks) {
				return nil, fmt.Errorf("unclosed %s (...) in %s", t, expr)
			}
			if t == "by" || t == "without" {
				if pending == nil || pending.mod != "" {
					return nil, fmt.Errorf("%s (...) not after an aggregation operator in %s", t, expr)
				}
				pending.mod, pending.labels = t, labels
			}
			i = j
		case strings.HasPrefix(t, "crowsnest_") && next(i) != "(":
			frames := make([]promFrame, len(stack))
			for k := range stack {
				frames[k] = stack[len(stack)-1-k]
			}
			uses = append(uses, metricUse{metric: t, frames: frames})
		}
	}
	if len(stack) != 0 || pending != nil {
		return nil, fmt.Errorf("unbalanced ( in %s", expr)
	}
	return uses, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// replicaProblems returns why expr would count a series once per crowsnest
// replica, or none.
func replicaProblems(expr string) []string {
	uses, err := metricUses(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, u := range uses {
		key, replicated, known := seriesLabels(u.metric)
		if !replicated {
			continue
		}
		if !known {
			out = append(out, fmt.Sprintf("%s: unknown per-app metric, add its labels to appSeriesLabels", u.metric))
		}
		dedup := -1 // the innermost aggregation; functions such as rate pass
		for k, f := range u.frames {
			if f.kind == 'a' {
				dedup = k
				break
			}
		}
		if dedup < 0 {
			out = append(out, fmt.Sprintf("%s is not aggregated: each replica's copy is a series of its own; wrap it in max by (%s)", u.metric, strings.Join(key, ", ")))
			continue
		}
		d := u.frames[dedup]
		want := "max"
		if strings.HasSuffix(u.metric, "_since_timestamp_seconds") {
			want = "min" // the earliest replica's first sighting
		}
		if d.name != want {
			out = append(out, fmt.Sprintf("%s: the first aggregation over %s is %s, want %s by (%s) to drop the replica copies first", u.metric, u.metric, d.name, want, strings.Join(key, ", ")))
			continue
		}
		switch d.mod {
		case "":
			out = append(out, fmt.Sprintf("%s: %s (...) merges the copies of distinct installations: %s by (cluster, ...)", u.metric, d.name, d.name))
		case "by":
			if !contains(d.labels, "cluster") {
				out = append(out, fmt.Sprintf("%s: %s by (%s) merges the copies of distinct installations: keep cluster", u.metric, d.name, strings.Join(d.labels, ", ")))
			}
			for _, l := range []string{"instance", "pod"} {
				if contains(d.labels, l) {
					out = append(out, fmt.Sprintf("%s: %s by (%s) keeps the replica label %s", u.metric, d.name, strings.Join(d.labels, ", "), l))
				}
			}
		case "without":
			if !contains(d.labels, "instance") {
				out = append(out, fmt.Sprintf("%s: %s without (%s) keeps the replica label instance", u.metric, d.name, strings.Join(d.labels, ", ")))
			}
		}
		// Aggregated further (or turned into a quantile), the dedup must
		// keep every series of one replica: the metric's labels, and those
		// the outer aggregations group by.
		outer := map[string]bool{}
		consumed := false
		for _, f := range u.frames[dedup+1:] {
			if f.kind == 'a' || f.kind == 'f' && f.name == "histogram_quantile" {
				consumed = true
			}
			if f.kind == 'a' && f.mod == "by" {
				for _, l := range f.labels {
					outer[l] = true
				}
			}
		}
		if !consumed || d.mod == "without" {
			continue
		}
		need := append([]string(nil), key...)
		for l := range outer {
			if !contains(need, l) {
				need = append(need, l)
			}
		}
		sort.Strings(need)
		var missing []string
		for _, l := range need {
			if !contains(d.labels, l) {
				missing = append(missing, l)
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("%s: %s by (%s) before another aggregation merges distinct series: it lacks %s", u.metric, d.name, strings.Join(d.labels, ", "), strings.Join(missing, ", ")))
		}
	}
	return out
}

// TestQueriesDeduplicateReplicas: every Prometheus query of the dashboards
// gives the same numbers with several crowsnest replicas as with one (see
// the rules above). The label_values variables are left out: only their
// values count, not how many series carry them.
func TestQueriesDeduplicateReplicas(t *testing.T) {
	ds := loadAll(t)
	qs := prometheusQueries(ds)
	labelValueVars := map[string]bool{}
	for file, d := range ds {
		uid := d.UID
		if uid == "" {
			uid = strings.TrimSuffix(file, ".json")
		}
		for _, v := range d.Templating.List {
			if labelValues.MatchString(v.QueryString()) {
				labelValueVars[uid+"/variable "+v.Name] = true
			}
		}
	}
	checked := 0
	for _, q := range qs {
		if labelValueVars[q.Dashboard+"/"+q.Panel] {
			continue
		}
		checked++
		for _, p := range replicaProblems(q.Expr) {
			t.Errorf("%s\n\t%s", q, p)
		}
	}
	if checked == 0 {
		t.Fatal("no queries checked")
	}
}

// TestReplicaProblems checks the checker: the queries of the dashboards
// before they deduplicated replicas fail it, their fixed forms pass.
func TestReplicaProblems(t *testing.T) {
	const sel = `{env=~"$env", project=~"$project"}`
	bad := []string{
		`count(crowsnest_app_info` + sel + `)`,
		`sum by (status) (crowsnest_app_sync_status` + sel + `)`,
		`time() - max by (namespace, name, project, env) (crowsnest_app_drift_since_timestamp_seconds` + sel + `)`,
		`time() - max(crowsnest_app_drift_since_timestamp_seconds` + sel + `)`,
		`sum(increase(crowsnest_app_syncs_total{result=~"Failed|Error"}[$__range]))`,
		`histogram_quantile(0.9, sum by (env, le) (rate(crowsnest_sync_duration_seconds_bucket` + sel + `[$__rate_interval])))`,
		`sum by (env, result) (increase(crowsnest_sync_duration_seconds_count` + sel + `[$__range]))`,
		`sum by (env) (crowsnest_app_workload_replicas{state="desired"}) - sum by (env) (max by (namespace, name, project, env, kind, workload, state) (crowsnest_app_workload_replicas{state="ready"}))`,
		`crowsnest_app_info` + sel,
		// deduplicated, but too coarsely: series of one replica merge
		`sum by (env) (max by (env) (crowsnest_app_sync_status` + sel + `))`,
		`sum by (name, env, group, kind) (max by (namespace, name, project, env) (crowsnest_app_out_of_sync_resources` + sel + `))`,
		`histogram_quantile(0.9, sum by (env, le) (max by (project, env, result) (rate(crowsnest_sync_duration_seconds_bucket[$__rate_interval]))))`,
		`count by (repo) (max by (namespace, name, project, env) (crowsnest_app_info))`,
		// not a dedup
		`sum by (status) (max by (namespace, name, project, env, status, instance) (crowsnest_app_sync_status))`,
		`sum(max without (pod) (rate(crowsnest_app_syncs_total[$__rate_interval])))`,
		`sum(min by (namespace, name, project, env, result) (rate(crowsnest_app_syncs_total[$__rate_interval])))`,
		`sum(avg by (namespace, name, project, env, result) (rate(crowsnest_app_syncs_total[$__rate_interval])))`,
		`sum(crowsnest_app_info) by (env)`,
		`sum(crowsnest_app_new_metric)`,
		// deduplicated, but two installations merge
		`count(max by (namespace, name, project, env) (crowsnest_app_info` + sel + `))`,
		`max(crowsnest_app_last_sync_duration_seconds{name="$app"})`,
		`max by (status) (crowsnest_app_sync_status{name="$app"}) == 1`,
		`histogram_quantile(0.9, sum by (env, le) (max by (project, env, result, le) (rate(crowsnest_sync_duration_seconds_bucket` + sel + `[$__rate_interval]))))`,
	}
	for _, e := range bad {
		if len(replicaProblems(e)) == 0 {
			t.Errorf("no problem found in %s", e)
		}
	}
	good := []string{
		`count(max by (cluster, namespace, name, project, env) (crowsnest_app_info` + sel + `))`,
		`sum by (status) (max by (cluster, namespace, name, project, env, status) (crowsnest_app_sync_status` + sel + `))`,
		`time() - min by (cluster, namespace, name, project, env) (crowsnest_app_drift_since_timestamp_seconds` + sel + `)`,
		`sum(max by (cluster, namespace, name, project, env, result) (increase(crowsnest_app_syncs_total{result=~"Failed|Error"}[$__range])))`,
		`histogram_quantile(0.9, sum by (env, le) (max by (cluster, project, env, result, le) (rate(crowsnest_sync_duration_seconds_bucket` + sel + `[$__rate_interval]))))`,
		`histogram_quantile(0.9, sum by (env, le) (max without (instance, pod) (rate(crowsnest_sync_duration_seconds_bucket[$__rate_interval]))))`,
		`max by (cluster, status) (crowsnest_app_sync_status{name="$app"}) == 1`,
		`max by (cluster) (crowsnest_app_last_sync_duration_seconds{name="$app"})`,
		`max by (cluster, workload, status) (max_over_time(crowsnest_app_workload_job_status{name="$app"}[$__range])) == 1`,
		`sum by (source, type) (rate(crowsnest_source_events_total[$__rate_interval]))`,
		`min(crowsnest_config_last_reload_successful)`,
		`max by (cluster, namespace, name) (crowsnest_app_info{name="a(b)", repo=~"x{1,2}"})`,
	}
	for _, e := range good {
		if p := replicaProblems(e); len(p) != 0 {
			t.Errorf("%s: %v", e, p)
		}
	}
}

// The application dashboard shows one app: every Prometheus and Loki
// query of its panels selects the app by namespace and name (apps in any
// namespace may have two of one name), in the installation its cluster
// variable picks, and the traces by namespace and name too.
func TestAppDashboardSelectsOneApp(t *testing.T) {
	prom, err := PrometheusQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	logs, err := LogQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, q := range append(prom, logs...) {
		if q.Dashboard != uidApp || strings.HasPrefix(q.Panel, "variable ") {
			continue
		}
		n++
		for _, m := range [][]string{{`namespace="$namespace"`, `app="$namespace/$app"`}, {`name="$app"`, `app="$namespace/$app"`}, {clusterMatcher, `dest_cluster=~"$dest_cluster"`}} {
			if !strings.Contains(q.Expr, m[0]) && !strings.Contains(q.Expr, m[1]) {
				t.Errorf("%s: selects no %s", q, m[0])
			}
		}
	}
	if n < 20 {
		t.Errorf("%d queries of the application dashboard, want its panels' (20 or more)", n)
	}
	d := loadAll(t)[uidApp+".json"]
	traces := 0
	for _, p := range d.AllPanels() {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Query, "span.argocd.app.name") {
				traces++
				if !strings.Contains(tg.Query, `span.argocd.app.namespace = "$namespace"`) || !strings.Contains(tg.Query, `span.argocd.app.name = "$app"`) {
					t.Errorf("%s: the TraceQL %s does not select the app by namespace and name", p.Title, tg.Query)
				}
			}
		}
	}
	if traces == 0 {
		t.Error("no TraceQL query of the app's traces")
	}
}
