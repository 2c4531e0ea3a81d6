package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
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

func loadAll(t *testing.T) map[string]*Dashboard {
	t.Helper()
	ds, err := Load(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) < 2 {
		t.Fatalf("want at least 2 dashboards, got %d", len(ds))
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

func lintVariables(t *testing.T, d *Dashboard) {
	t.Helper()
	seen := map[string]Variable{}
	for _, v := range d.Templating.List {
		seen[v.Name] = v
		if v.Datasource != nil && !dsVariable.MatchString(v.Datasource.UID) {
			t.Errorf("variable %s: datasource uid %q is not a ${...} variable", v.Name, v.Datasource.UID)
		}
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
	if !strings.Contains(expr, "crowsnest_") {
		t.Errorf("panel %q target %s: queries no crowsnest metric: %s", panel, tg.RefID, expr)
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
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
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
	perDashboard := map[string]int{}
	for _, q := range qs {
		perDashboard[q.Dashboard]++
		if strings.Contains(q.Expr, "|=") || strings.Contains(q.Expr, "| logfmt") {
			t.Errorf("%s: a LogQL query was taken for PromQL", q)
		}
		e := Expand(q.Expr, map[string]string{"env": ".*", "project": ".*", "app": "dev-backend"})
		if strings.Contains(e, "$") || strings.Contains(e, "[[") {
			t.Errorf("%s: variables left after Expand: %s", q, e)
		}
	}
	for _, uid := range []string{"crowsnest-fleet", "crowsnest-app"} {
		if perDashboard[uid] == 0 {
			t.Errorf("no Prometheus queries found in %s", uid)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"app": "dev-backend", "env": "dev|stage", "__rate_interval": "2m"}
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

// The Helm chart ships the same dashboards, as ConfigMaps for the Grafana
// sidecar.
func TestChartCarriesTheDashboards(t *testing.T) {
	ours, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	chart, err := filepath.Glob(filepath.Join("..", "charts", "exporter", "files", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) == 0 || len(chart) != len(ours) {
		t.Fatalf("dashboards/ has %v, the chart %v: copy them (cp dashboards/*.json charts/exporter/files/dashboards/)", ours, chart)
	}
	for _, name := range ours {
		a, errA := os.ReadFile(name)
		b, errB := os.ReadFile(filepath.Join("..", "charts", "exporter", "files", "dashboards", name))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("the chart's copy of %s differs or is missing (%v, %v): cp dashboards/*.json charts/exporter/files/dashboards/", name, errA, errB)
		}
	}
}
