// Package dashboards builds crowsnest's Grafana dashboards as code (with
// the Grafana Foundation SDK) and renders them to the *.json files of this
// directory and of the Helm chart (go test ./dashboards -update). It also
// reads the rendered files back for checks: PrometheusQueries and
// LogQueries list every query the dashboards send, Expand fills in their
// Grafana variables, and LogsQL translates their LogQL into VictoriaLogs'
// LogsQL, so tests can prove each panel shows data on real servers.
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

// Query is one PromQL or LogQL expression of a dashboard, as written in
// it (with Grafana variables such as $__rate_interval or $app unexpanded).
type Query struct {
	// Dashboard is the uid of the dashboard (its file name without .json
	// when the uid is missing).
	Dashboard string
	// Panel is the title of the panel, "variable <name>" for the query of
	// a template variable or "annotation <name>" for an annotation's.
	Panel string
	// RefID is the target's refId; empty for variables and annotations.
	RefID string
	// Expr is the expression.
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
	// Exemplar (Prometheus) asks for the exemplars of the series too.
	Exemplar bool `json:"exemplar"`
	// Format (Prometheus) is time_series, table or heatmap.
	Format string `json:"format"`
}

// DataLink is a link of a field: to another dashboard, Explore or
// another site, with Grafana variables in its URL.
type DataLink struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	TargetBlank bool   `json:"targetBlank"`
}

// Property is one property of a field override.
type Property struct {
	ID    string          `json:"id"`
	Value json.RawMessage `json:"value"`
}

// Override sets properties on the fields its matcher picks.
type Override struct {
	Matcher struct {
		ID      string `json:"id"`
		Options any    `json:"options"`
	} `json:"matcher"`
	Properties []Property `json:"properties"`
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
			Unit  *string    `json:"unit"`
			Links []DataLink `json:"links"`
		} `json:"defaults"`
		Overrides []Override `json:"overrides"`
	} `json:"fieldConfig"`
	Panels []Panel `json:"panels"`
}

// Links returns every data link of the panel: its defaults' and its
// overrides', each with the name of the field it is on ("" for all).
func (p Panel) Links() map[string][]DataLink {
	out := map[string][]DataLink{}
	if len(p.FieldConfig.Defaults.Links) > 0 {
		out[""] = p.FieldConfig.Defaults.Links
	}
	for _, o := range p.FieldConfig.Overrides {
		for _, prop := range o.Properties {
			if prop.ID != "links" {
				continue
			}
			var ls []DataLink
			if json.Unmarshal(prop.Value, &ls) != nil {
				continue
			}
			field, _ := o.Matcher.Options.(string)
			out[field] = append(out[field], ls...)
		}
	}
	return out
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
	// Hide is 2 for a variable that is not shown.
	Hide int `json:"hide"`
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
	Links []struct {
		Title string `json:"title"`
		Type  string `json:"type"`
		URL   string `json:"url"`
	} `json:"links"`
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
		return nil, fmt.Errorf("list dashboards: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards (*.json) in %s", dir)
	}
	raw := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read dashboard: %w", err)
		}
		raw[filepath.Base(f)] = b
	}
	return Parse(raw)
}

// Parse parses dashboards' JSON, keyed by file name (as Render returns
// them).
func Parse(files map[string][]byte) (map[string]*Dashboard, error) {
	out := make(map[string]*Dashboard, len(files))
	for name, b := range files {
		d := new(Dashboard)
		if err := json.Unmarshal(b, d); err != nil {
			return nil, fmt.Errorf("parse dashboard %s: %w", name, err)
		}
		out[name] = d
	}
	return out, nil
}

// IsPrometheus reports whether a datasource reference is a Prometheus one:
// its type is prometheus, or (without a type) its uid is the ${prometheus}
// variable.
func IsPrometheus(ds *Datasource) bool {
	return isType(ds, promDS)
}

// IsLoki reports whether a datasource reference is a Loki one, as
// IsPrometheus does for Prometheus.
func IsLoki(ds *Datasource) bool {
	return isType(ds, lokiDS)
}

func isType(ds *Datasource, typ string) bool {
	if ds == nil {
		return false
	}
	if ds.Type != "" {
		return ds.Type == typ
	}
	return ds.UID == "${"+typ+"}" || ds.UID == "$"+typ
}

// labelValues matches the Grafana label_values(metric-selector, label)
// variable query.
var labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

// PrometheusQueries returns every Prometheus query of the dashboards in
// dir, in a stable order: each target expr of each panel (nested panels
// included), then each Prometheus annotation, then each query variable,
// with label_values(selector, label) rewritten as the PromQL
// count by (label) (selector), which has data exactly when the variable
// has values.
func PrometheusQueries(dir string) ([]Query, error) {
	ds, err := Load(dir)
	if err != nil {
		return nil, err
	}
	return prometheusQueries(ds), nil
}

// LogQueries returns every Loki (LogQL) query of the dashboards in dir, in
// a stable order: each Loki target of each panel, then each Loki
// annotation. LogsQL translates each into VictoriaLogs' LogsQL.
func LogQueries(dir string) ([]Query, error) {
	ds, err := Load(dir)
	if err != nil {
		return nil, err
	}
	return logQueries(ds), nil
}

// sortedUIDs returns the file names of ds in order, each with its
// dashboard's uid (the file name without .json when it has none).
func sortedUIDs(ds map[string]*Dashboard) (names []string, uids map[string]string) {
	uids = make(map[string]string, len(ds))
	for n, d := range ds {
		names = append(names, n)
		uids[n] = d.UID
		if d.UID == "" {
			uids[n] = strings.TrimSuffix(n, ".json")
		}
	}
	sort.Strings(names)
	return names, uids
}

// targetQueries returns the expr of every target of ds's panels whose
// datasource (the target's, else the panel's) is of the kind is reports.
func targetQueries(uid string, d *Dashboard, is func(*Datasource) bool) []Query {
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			src := t.Datasource
			if src == nil {
				src = p.Datasource
			}
			if !is(src) || strings.TrimSpace(t.Expr) == "" {
				continue
			}
			out = append(out, Query{Dashboard: uid, Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 || !is(a.Datasource) || strings.TrimSpace(a.Expr) == "" {
			continue
		}
		out = append(out, Query{Dashboard: uid, Panel: "annotation " + a.Name, Expr: a.Expr})
	}
	return out
}

func prometheusQueries(ds map[string]*Dashboard) []Query {
	names, uids := sortedUIDs(ds)
	var out []Query
	for _, n := range names {
		d := ds[n]
		out = append(out, targetQueries(uids[n], d, IsPrometheus)...)
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
			out = append(out, Query{Dashboard: uids[n], Panel: "variable " + v.Name, Expr: q})
		}
	}
	return out
}

func logQueries(ds map[string]*Dashboard) []Query {
	names, uids := sortedUIDs(ds)
	var out []Query
	for _, n := range names {
		out = append(out, targetQueries(uids[n], ds[n], IsLoki)...)
	}
	return out
}

// DefaultVars returns the values Expand uses when vars does not set them:
// Grafana's built-in variables, cluster as "All" (.*, which matches the
// series of one installation without a cluster label too), and
// argocd_url as an example base URL (the dashboards use it in links only;
// run crowsnest with --argocd.url set to it for its variable to match).
func DefaultVars() map[string]string {
	return map[string]string{
		"__rate_interval": "1m",
		"__interval":      "15s",
		"__interval_ms":   "15000",
		"__range":         "1h",
		"__range_s":       "3600",
		"__range_ms":      "3600000",
		"cluster":         ".*",
		"argocd_url":      "https://argocd.example.com",
	}
}

// variable matches the Grafana variable syntaxes ${name}, ${name:format},
// ${name.field}, [[name]], [[name:format]] and $name.
var variable = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?:[.:][^}]*)?\}|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]|\$([A-Za-z0-9_]+)`)

// Expand substitutes the Grafana variables of expr with the values of vars
// (keyed by variable name without the $), falling back to DefaultVars for
// the built-in ones ($__rate_interval, $__range, $__interval...), $cluster
// and $argocd_url. Every syntax is handled: $var, ${var}, ${var:format}
// (such as ${var:regex}, the value is inserted as given) and [[var]].
// Variables without a value are left as they are. For a multi-value
// variable used with =~, pass a regex such as ".*" or "dev|stage".
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
