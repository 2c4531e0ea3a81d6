package dashboards

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/rules"
)

// recordName matches a series recorded by crowsnest's rules.
var recordName = regexp.MustCompile(`\bcrowsnest:[A-Za-z0-9_:]+`)

// metricName matches a crowsnest metric name.
var metricName = regexp.MustCompile(`\bcrowsnest_[a-z0-9_]+\b`)

// Every recorded series a dashboard queries is one crowsnest's rules
// record (a typo would show no data), and the DORA dashboard shows each of
// the four keys.
func TestRecordsAreRecorded(t *testing.T) {
	recorded := map[string]bool{}
	for _, g := range rules.RecordingGroups() {
		for _, r := range g.Recordings {
			recorded[r.Record] = true
		}
	}
	qs, err := PrometheusQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, q := range qs {
		for _, name := range recordName.FindAllString(q.Expr, -1) {
			if !recorded[name] {
				t.Errorf("%s: %s is recorded by no rule of internal/rules", q, name)
			}
			if q.Dashboard == "crowsnest-dora" {
				used[name] = true
			}
		}
	}
	for _, key := range []string{rules.RecordDeployments1d, rules.RecordDeployments7d, rules.RecordLeadTimeP50,
		rules.RecordLeadTimeP90, rules.RecordChangeFailureRate, rules.RecordRecoveryP50} {
		if !used[key] {
			t.Errorf("crowsnest-dora shows no %s", key)
		}
	}
}

// Every crowsnest metric a dashboard queries has a row in README.md's
// metric table: the dashboards query only what crowsnest documents.
func TestQueriedMetricsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := PrometheusQueries(".")
	if err != nil {
		t.Fatal(err)
	}
	missing := map[string]bool{}
	for _, q := range qs {
		for _, name := range metricName.FindAllString(q.Expr, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if _, isHistogram := histogramLabels[strings.TrimSuffix(name, suffix)]; isHistogram {
					base = strings.TrimSuffix(name, suffix)
				}
			}
			if !strings.Contains(string(readme), "\n| `"+base+"` ") && !missing[base] {
				missing[base] = true
				t.Errorf("%s: %s has no row in README.md's metric table", q, base)
			}
		}
	}
}

// lokiEvent matches the event stream label of a query of the facts
// crowsnest pushes to Loki.
var lokiEvent = regexp.MustCompile(`\{[^}]*\bevent="([a-z_]+)"`)

// pushedFacts are the facts of deployments crowsnest pushes to Loki, with
// the stream label event.
func pushedFacts() []string {
	return []string{model.FactDeploymentFinished, model.FactDeploymentHealthy, model.FactChangeFailed,
		model.FactDeploymentRecovered, model.FactSyncFinished, model.FactSyncStarted, model.FactDriftBegan,
		model.FactDriftEnded, model.FactHealthChanged}
}

// A Loki query of crowsnest's pushed events (stream label event) selects
// an event crowsnest pushes, job="crowsnest" (--loki.job's default), and
// parses the line as the JSON it is.
func TestLokiEventQueries(t *testing.T) {
	n := 0
	for file, d := range loadAll(t) {
		var exprs []string
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds != nil && ds.Type == "loki" {
					exprs = append(exprs, tg.Expr)
				}
			}
		}
		for _, a := range d.Annotations.List {
			if a.Datasource != nil && a.Datasource.Type == "loki" {
				exprs = append(exprs, a.Expr)
			}
		}
		for _, e := range exprs {
			m := lokiEvent.FindStringSubmatch(e)
			if m == nil {
				continue
			}
			n++
			if !slices.Contains(pushedFacts(), m[1]) {
				t.Errorf("%s: %s: crowsnest pushes no event %q", file, e, m[1])
			}
			if !strings.Contains(e, `job="crowsnest"`) || !strings.Contains(e, "| json") || strings.Contains(e, "logfmt") {
				t.Errorf("%s: %s: want job=\"crowsnest\" and | json (crowsnest pushes JSON lines)", file, e)
			}
		}
	}
	if n == 0 {
		t.Error("no Loki query of crowsnest's pushed events")
	}
}

// Every dashboard marks deployments: a Prometheus annotation whose value
// is the last deployment's time in milliseconds, one event per deployment.
func TestDeploymentAnnotations(t *testing.T) {
	for file, d := range loadAll(t) {
		found := false
		for _, a := range d.Annotations.List {
			if !a.Enable || !IsPrometheus(a.Datasource) || !strings.Contains(a.Expr, "crowsnest_app_last_deployment_timestamp_seconds") {
				continue
			}
			found = true
			if !a.UseValueForTime || !strings.HasSuffix(strings.TrimSpace(a.Expr), "* 1000") {
				t.Errorf("%s: annotation %q: want useValueForTime and the value in milliseconds (* 1000): %s", file, a.Name, a.Expr)
			}
		}
		if !found {
			t.Errorf("%s: no deployment annotation", file)
		}
	}
}

// The four keys' panels of the DORA dashboard colour DORA's four bands and
// explain them.
func TestDoraBands(t *testing.T) {
	b, err := os.ReadFile("crowsnest-dora.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Type, Title, Description string
			Targets                  []struct{ Expr string }
			FieldConfig              struct {
				Defaults struct {
					Thresholds struct {
						Steps []struct {
							Color string
							Value *float64
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || !recordName.MatchString(p.Targets[0].Expr) {
			continue
		}
		keys++
		if steps := p.FieldConfig.Defaults.Thresholds.Steps; len(steps) != 4 {
			t.Errorf("panel %q: %d threshold steps, want DORA's 4 bands", p.Title, len(steps))
		}
		for _, w := range []string{"elite", "high", "medium", "low", "2023"} {
			if !strings.Contains(strings.ToLower(p.Description), w) {
				t.Errorf("panel %q: the description does not explain DORA's bands (no %q)", p.Title, w)
			}
		}
	}
	if keys != 8 {
		t.Errorf("%d panels of the four keys, want 8 (a stat and a time series each)", keys)
	}
}
