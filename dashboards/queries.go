// Package dashboards holds crowsnest's Grafana dashboards (the *.json files
// of this directory) and helpers to check them: PrometheusQueries lists
// every PromQL expression they send, and Expand turns one into a query a
// real Prometheus accepts, so tests can prove each panel shows data.
package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Query is one PromQL expression of a dashboard, as written in it (with
// Grafana variables such as $__rate_interval or $app unexpanded).
type Query struct {
	// Dashboard is the uid of the dashboard (its file name without .json
	// when the uid is missing).
	Dashboard string
	// Panel is the title of the panel, or "variable <name>" for the query
	// of a template variable.
	Panel string
	// RefID is the target's refId; empty for template variables.
	RefID string
	// Expr is the PromQL expression.
	Expr string
}

// String names the query for test failures.
func (q Query) String() string {
	return fmt.Sprintf("%s / %s [%s]: %s", q.Dashboard, q.Panel, q.RefID, q.Expr)
}

// Datasource is a panel's or target's datasource reference.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// UnmarshalJSON also accepts the legacy form, a datasource name string.
func (d *Datasource) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		d.UID = s
		return nil
	}
	type plain Datasource
	return json.Unmarshal(b, (*plain)(d))
}

// Target is one query of a panel. Prometheus and Loki targets use Expr,
// Tempo targets Query.
type Target struct {
	RefID      string      `json:"refId"`
	Datasource *Datasource `json:"datasource"`
	Expr       string      `json:"expr"`
	Query      string      `json:"query"`
}

// Panel is a dashboard panel; rows hold their collapsed panels in Panels.
type Panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Datasource  *Datasource `json:"datasource"`
	Targets     []Target    `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit *string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []Panel `json:"panels"`
}

// Variable is a template variable. Query is a string or, for newer
// Prometheus variables, an object with a "query" field.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *Datasource     `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

// QueryString returns the variable's query text.
func (v Variable) QueryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil && o.Query != "" {
		return o.Query
	}
	return v.Definition
}

// Annotation is a dashboard annotation query: Grafana's built-in one, or
// a query of a Prometheus (Expr) or Loki (Expr) datasource marking events
// on the time series panels.
type Annotation struct {
	Name       string      `json:"name"`
	BuiltIn    int         `json:"builtIn"`
	Datasource *Datasource `json:"datasource"`
	Enable     bool        `json:"enable"`
	Expr       string      `json:"expr"`
	// UseValueForTime (Prometheus): the series' value is the event's time
	// in milliseconds, not the sample's time.
	UseValueForTime bool `json:"useValueForTime"`
}

// Dashboard is the part of a Grafana dashboard model the checks read.
type Dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Annotations   struct {
		List []Annotation `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
}

// AllPanels returns the dashboard's panels depth first, including the
// panels nested in (collapsed) rows.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Load reads and parses every *.json dashboard of dir, keyed by file name.
func Load(dir string) (map[string]*Dashboard, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards (*.json) in %s", dir)
	}
	out := make(map[string]*Dashboard, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d := new(Dashboard)
		if err := json.Unmarshal(b, d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out, nil
}

// IsPrometheus reports whether a datasource reference is a Prometheus one:
// its type is prometheus, or (without a type) its uid is the ${prometheus}
// variable.
func IsPrometheus(ds *Datasource) bool {
	if ds == nil {
		return false
	}
	if ds.Type != "" {
		return ds.Type == "prometheus"
	}
	return ds.UID == "${prometheus}" || ds.UID == "$prometheus"
}

// labelValues matches the Grafana label_values(metric-selector, label)
// variable query.
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// PrometheusQueries returns every Prometheus query of the dashboards in
// dir, in a stable order: each target expr of each panel (nested panels
// included) whose datasource, or else its panel's, is Prometheus, then the
// query of each Prometheus annotation (Panel "annotation <name>"), then the
// query of each Prometheus template variable. A label_values(selector,
// label) variable query becomes the PromQL `count by (label) (selector)`,
// which returns data exactly when the variable has values.
func PrometheusQueries(dir string) ([]Query, error) {
	ds, err := Load(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ds))
	for n := range ds {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Query
	for _, n := range names {
		d := ds[n]
		uid := d.UID
		if uid == "" {
			uid = strings.TrimSuffix(n, ".json")
		}
		for _, p := range d.AllPanels() {
			for _, t := range p.Targets {
				src := t.Datasource
				if src == nil {
					src = p.Datasource
				}
				if !IsPrometheus(src) || strings.TrimSpace(t.Expr) == "" {
					continue
				}
				out = append(out, Query{Dashboard: uid, Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
			}
		}
		for _, a := range d.Annotations.List {
			if a.BuiltIn != 0 || !IsPrometheus(a.Datasource) || strings.TrimSpace(a.Expr) == "" {
				continue
			}
			out = append(out, Query{Dashboard: uid, Panel: "annotation " + a.Name, Expr: a.Expr})
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" || !IsPrometheus(v.Datasource) {
				continue
			}
			q := v.QueryString()
			if m := labelValues.FindStringSubmatch(q); m != nil {
				q = fmt.Sprintf("count by (%s) (%s)", m[2], strings.TrimSpace(m[1]))
			}
			if strings.TrimSpace(q) == "" {
				continue
			}
			out = append(out, Query{Dashboard: uid, Panel: "variable " + v.Name, Expr: q})
		}
	}
	return out, nil
}

// DefaultVars returns the values Expand uses for Grafana's built-in
// variables when vars does not set them.
func DefaultVars() map[string]string {
	return map[string]string{
		"__rate_interval": "1m",
		"__interval":      "15s",
		"__interval_ms":   "15000",
		"__range":         "1h",
		"__range_s":       "3600",
		"__range_ms":      "3600000",
	}
}

// variable matches the Grafana variable syntaxes ${name}, ${name:format},
// ${name.field}, [[name]], [[name:format]] and $name.
var variable = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?:[.:][^}]*)?\}|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]|\$([A-Za-z0-9_]+)`)

// Expand substitutes the Grafana variables of expr with the values of vars
// (keyed by variable name without the $), falling back to DefaultVars for
// the built-in ones ($__rate_interval, $__range, $__interval...). Every
// syntax is handled: $var, ${var}, ${var:format} (such as ${var:regex}, the
// value is inserted as given) and [[var]]. Variables without a value are
// left as they are. For a multi-value variable used with =~, pass a regex
// such as ".*" or "dev|stage".
func Expand(expr string, vars map[string]string) string {
	defaults := DefaultVars()
	return variable.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := defaults[name]; ok {
			return v
		}
		return m
	})
}
