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
	qs := prometheusQueries(loadAll(t))
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
	qs := prometheusQueries(loadAll(t))
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

// lokiEvent matches the event stream matcher of a query of the facts
// crowsnest pushes to Loki: event="x" or event=~"x|y".
var lokiEvent = regexp.MustCompile(`\{[^}]*\bevent=~?"([a-z_|]+)"`)

// pushedFacts are the facts crowsnest pushes to Loki, the values of the
// stream label event: the tracker's and the deployments'.
func pushedFacts() []string {
	return []string{model.FactSyncRequested, model.FactSyncStarted, model.FactSyncFinished, model.FactDryRunFinished,
		model.FactPhaseEntered, model.FactWaveEntered, model.FactDriftBegan, model.FactDriftEnded, model.FactHealthChanged,
		model.FactWorkloadDegraded, model.FactWorkloadRecovered, model.FactHydrationFinished,
		model.FactDeploymentFinished, model.FactDeploymentHealthy, model.FactChangeFailed, model.FactDeploymentRecovered}
}

// Every Loki query reads the facts crowsnest pushes: it selects their
// stream by job="crowsnest" (--loki.job's default), names only events
// crowsnest pushes, and parses the line as the JSON it is.
func TestLokiEventQueries(t *testing.T) {
	qs := logQueries(loadAll(t))
	if len(qs) == 0 {
		t.Fatal("no Loki query")
	}
	for _, q := range qs {
		if !strings.HasPrefix(q.Expr, `{job="crowsnest"`) || !strings.Contains(q.Expr, "| json") || strings.Contains(q.Expr, "logfmt") {
			t.Errorf("%s: want {job=\"crowsnest\", ...} | json (crowsnest pushes JSON lines)", q)
		}
		if m := lokiEvent.FindStringSubmatch(q.Expr); m != nil {
			for _, e := range strings.Split(m[1], "|") {
				if !slices.Contains(pushedFacts(), e) {
					t.Errorf("%s: crowsnest pushes no event %q", q, e)
				}
			}
		}
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
	files, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	b := files[uidDORA+".json"]
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
