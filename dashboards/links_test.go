package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// lintExemplars: every duration panel over a *_seconds histogram (a time
// series or heatmap of *_seconds_bucket) asks Prometheus for the
// exemplars, which link a slow observation to its trace.
func lintExemplars(t *testing.T, p Panel) {
	t.Helper()
	if p.Type != "timeseries" && p.Type != "heatmap" {
		return
	}
	for _, tg := range p.Targets {
		if strings.Contains(tg.Expr, "_seconds_bucket") && !tg.Exemplar {
			t.Errorf("panel %q target %s: a duration histogram without exemplar: true: %s", p.Title, tg.RefID, tg.Expr)
		}
	}
}

// lintTableLinks: every table has a data link (to the application's
// dashboard, Argo CD, a trace or a commit), each with a title and a URL.
// Tempo's trace tables are left out: Tempo links each trace id itself.
func lintTableLinks(t *testing.T, p Panel) {
	t.Helper()
	if p.Type != "table" || p.Datasource != nil && p.Datasource.Type == tempoDS {
		return
	}
	ls := p.Links()
	if len(ls) == 0 {
		t.Errorf("table %q: no data link", p.Title)
	}
	for field, l := range ls {
		for _, dl := range l {
			if dl.Title == "" || dl.URL == "" {
				t.Errorf("table %q field %q: a data link wants a title and a URL: %+v", p.Title, field, dl)
			}
		}
	}
}

// crowsnestSelector matches a crowsnest metric or record with its label
// matchers, if any.
var crowsnestSelector = regexp.MustCompile(`\bcrowsnest[_:][A-Za-z0-9_:]*(\{[^}]*\})?`)

// clusterProblems returns the selectors of expr without the cluster
// matcher of the cluster variable.
func clusterProblems(expr string) []string {
	var out []string
	for _, m := range crowsnestSelector.FindAllStringSubmatch(expr, -1) {
		if !strings.Contains(m[1], clusterMatcher) {
			out = append(out, m[0]+": no "+clusterMatcher+" matcher (the series of every installation would mix)")
		}
	}
	return out
}

func TestClusterProblems(t *testing.T) {
	for expr, want := range map[string]int{
		`max by (cluster) (crowsnest_app_info{cluster=~"$cluster", env=~"$env"})`:                     0,
		`crowsnest:deployments:increase7d{cluster=~"$cluster"} / 7`:                                   0,
		`label_values(crowsnest_build_info, cluster)`:                                                 1,
		`crowsnest_app_info{env=~"$env"} and crowsnest_app_info{cluster=~"$cluster"}`:                 1,
		`sum(rate(crowsnest_spans_exported_total[$__rate_interval]))`:                                 1,
		`max(crowsnest_app_info{cluster=~"$cluster"}) - max(crowsnest_build_info{cluster="prod-eu"})`: 1,
	} {
		if got := clusterProblems(expr); len(got) != want {
			t.Errorf("clusterProblems(%s) = %v, want %d", expr, got, want)
		}
	}
}

// dataField matches a field of the row a data link refers to.
var dataField = regexp.MustCompile(`\$\{__data\.fields\.([A-Za-z0-9_]+)\}`)

// byLabels matches the label list of a by (...) clause.
var byLabels = regexp.MustCompile(`\bby \(([^)]*)\)`)

// fixedLineKeys are the keys every line crowsnest pushes to Loki starts
// with (internal/loki), and stream labels are fields too.
func fixedLineKeys() []string {
	return []string{"ts", "event", "app", "project", "env", "trace_id", "job"}
}

// The fields a data link uses exist in its table's rows: a label the
// Prometheus query keeps (by), or a key of the lines crowsnest pushes to
// Loki (a fixed one, or a field name the code under internal/ writes).
func TestDataLinkFields(t *testing.T) {
	var source strings.Builder // the non-test Go code of internal/
	err := filepath.WalkDir(filepath.Join("..", "internal"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		source.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for file, d := range loadAll(t) {
		for _, p := range d.AllPanels() {
			for _, ls := range p.Links() {
				for _, l := range ls {
					for _, m := range dataField.FindAllStringSubmatch(l.URL, -1) {
						checked++
						field := m[1]
						switch {
						case IsLoki(p.Datasource):
							if !slices.Contains(fixedLineKeys(), field) && !strings.Contains(source.String(), `"`+field+`"`) {
								t.Errorf("%s: panel %q: link %q uses %s, which no line crowsnest pushes has", file, p.Title, l.URL, field)
							}
						case IsPrometheus(p.Datasource):
							for _, tg := range p.Targets {
								kept := false
								for _, b := range byLabels.FindAllStringSubmatch(tg.Expr, -1) {
									for _, l := range strings.Split(b[1], ",") {
										kept = kept || strings.TrimSpace(l) == field
									}
								}
								if !kept {
									t.Errorf("%s: panel %q target %s: link %q uses %s, which the query does not keep: %s", file, p.Title, tg.RefID, l.URL, field, tg.Expr)
								}
							}
						default:
							t.Errorf("%s: panel %q: link %q on a %v datasource", file, p.Title, l.URL, p.Datasource)
						}
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no data link uses a field")
	}
}

// Every trace id a table shows opens the trace in Explore on the ${tempo}
// datasource.
func TestTraceLinks(t *testing.T) {
	n := 0
	for file, d := range loadAll(t) {
		for _, p := range d.AllPanels() {
			if p.Type != "table" || !IsLoki(p.Datasource) {
				continue
			}
			n++
			ls := p.Links()["trace_id"]
			if len(ls) == 0 || !strings.HasPrefix(ls[0].URL, "/explore?") || !strings.Contains(ls[0].URL, `"datasource":"${tempo}"`) ||
				!strings.Contains(ls[0].URL, `"query":"${__value.raw}"`) {
				t.Errorf("%s: table %q: trace_id links to %v, want the trace in Explore on ${tempo}", file, p.Title, ls)
			}
		}
	}
	if n == 0 {
		t.Error("no table of facts")
	}
}

// Every row of the fleet's tables of applications opens the application's
// dashboard, keeping the cluster selection and the time range.
func TestFleetTablesOpenTheApp(t *testing.T) {
	d := loadAll(t)[uidFleet+".json"]
	n := 0
	for _, p := range d.AllPanels() {
		if p.Type != "table" || p.Title == "Build" {
			continue
		}
		found := false
		for _, ls := range p.Links() {
			for _, l := range ls {
				found = found || strings.HasPrefix(l.URL, "/d/"+uidApp+"/"+uidApp+"?var-app=${__data.fields.") &&
					strings.Contains(l.URL, "${cluster:queryparam}") && strings.Contains(l.URL, "${__url_time_range}")
			}
		}
		if !found {
			t.Errorf("fleet table %q: no link to the application's dashboard", p.Title)
		}
		n++
	}
	if n < 5 {
		t.Errorf("%d fleet tables of applications, want at least 5", n)
	}
}

// The application dashboard links to the application in Argo CD, at the
// base URL of crowsnest_links_info; links to commits follow the rewritten
// repository URL.
func TestArgoCDAndCommitLinks(t *testing.T) {
	ds := loadAll(t)
	argo, commits := 0, 0
	for file, d := range ds {
		for _, p := range d.AllPanels() {
			for field, ls := range p.Links() {
				for _, l := range ls {
					if strings.Contains(l.URL, "argocd_url") {
						argo++
						if !strings.HasPrefix(l.URL, "${argocd_url}/applications/") || !l.TargetBlank {
							t.Errorf("%s: panel %q: Argo CD link %q, want ${argocd_url}/applications/<namespace>/<name> in a new tab", file, p.Title, l.URL)
						}
					}
					if field == "commit_sha" {
						commits++
						if l.URL != "${__data.fields.commit_repo}/${__value.raw}" {
							t.Errorf("%s: panel %q: commit link %q", file, p.Title, l.URL)
						}
					}
				}
			}
		}
	}
	if argo == 0 || commits < 2 {
		t.Errorf("%d Argo CD links, %d commit links: want both on the application and DORA dashboards", argo, commits)
	}
	app := ds[uidApp+".json"]
	found := false
	for _, l := range app.Links {
		found = found || l.URL == "${argocd_url}/applications/${namespace}/${app}"
	}
	if !found {
		t.Errorf("the application dashboard has no Argo CD link in its header: %+v", app.Links)
	}
}

// The rewrites of repository URLs (JavaScript regular expressions, which
// these cases also are for Go's regexp) give the commit base and the web
// page of a repository as Argo CD writes its URL.
func TestRepositoryMappings(t *testing.T) {
	type mapping struct {
		Type    string
		Options struct {
			Pattern string
			Result  struct{ Text string }
		}
	}
	apply := func(t *testing.T, ms []mapping, v string) string {
		t.Helper()
		for _, m := range ms {
			pat := strings.TrimSuffix(strings.TrimPrefix(m.Options.Pattern, "/"), "/")
			re, err := regexp.Compile(strings.ReplaceAll(pat, `\/`, `/`))
			if err != nil {
				t.Fatalf("%s: %v", m.Options.Pattern, err)
			}
			if re.MatchString(v) {
				return re.ReplaceAllString(v, strings.NewReplacer("$1", "${1}", "$2", "${2}").Replace(m.Options.Result.Text))
			}
		}
		return v
	}
	convert := func(t *testing.T, v any) []mapping {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var ms []mapping
		if err := json.Unmarshal(b, &ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	commit, web := convert(t, commitBaseMappings()), convert(t, repoWebMappings())
	for repo, want := range map[string][2]string{
		"https://github.com/org/repo.git":               {"https://github.com/org/repo/commit", "https://github.com/org/repo"},
		"https://github.com/org/repo":                   {"https://github.com/org/repo/commit", "https://github.com/org/repo"},
		"git@github.com:org/repo.git":                   {"https://github.com/org/repo/commit", "https://github.com/org/repo"},
		"ssh://git@gitlab.example.com:2222/g/sub/r.git": {"https://gitlab.example.com/g/sub/r/commit", "https://gitlab.example.com/g/sub/r"},
		"https://gitea.example.com/org/repo/":           {"https://gitea.example.com/org/repo/commit", "https://gitea.example.com/org/repo"},
		"git@bitbucket.org:team/repo.git":               {"https://bitbucket.org/team/repo/commits", "https://bitbucket.org/team/repo"},
		"https://bitbucket.org/team/repo.git":           {"https://bitbucket.org/team/repo/commits", "https://bitbucket.org/team/repo"},
	} {
		if got := apply(t, commit, repo); got != want[0] {
			t.Errorf("commit base of %s = %s, want %s", repo, got, want[0])
		}
		if got := apply(t, web, repo); got != want[1] {
			t.Errorf("web page of %s = %s, want %s", repo, got, want[1])
		}
	}
	names := convert(t, appNameMappings())
	if got := apply(t, names, "argocd/dev-backend"); got != "dev-backend" {
		t.Errorf("app name of argocd/dev-backend = %s", got)
	}
}

// The fleet and application dashboards mark each finished sync, as the
// deployment annotation marks deployments.
func TestSyncAnnotations(t *testing.T) {
	for _, file := range []string{uidFleet + ".json", uidApp + ".json"} {
		d := loadAll(t)[file]
		found := false
		for _, a := range d.Annotations.List {
			if a.Enable && IsPrometheus(a.Datasource) && strings.Contains(a.Expr, "crowsnest_app_last_sync_finished_timestamp_seconds") {
				found = a.UseValueForTime && strings.HasSuffix(a.Expr, " * 1000")
			}
		}
		if !found {
			t.Errorf("%s: no sync annotation (the last sync's finish time, useValueForTime)", file)
		}
	}
}

// An override matches a field by its display name (Grafana 10 matches by
// nothing else): a field that the organize transformation renames is
// matched by its new name.
func TestOverridesMatchDisplayNames(t *testing.T) {
	files, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	for file, b := range files {
		var d struct {
			Panels []struct {
				Title           string
				Transformations []struct {
					ID      string
					Options struct{ RenameByName map[string]string }
				}
				FieldConfig struct {
					Overrides []Override
				}
			}
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Panels {
			renamed := map[string]string{}
			for _, tr := range p.Transformations {
				if tr.ID == "organize" {
					renamed = tr.Options.RenameByName
				}
			}
			for _, o := range p.FieldConfig.Overrides {
				name, _ := o.Matcher.Options.(string)
				if to, ok := renamed[name]; ok && o.Matcher.ID == "byName" {
					t.Errorf("%s: panel %q: an override matches %q, which organize renames to %q: match %q", file, p.Title, name, to, to)
				}
			}
		}
	}
}
