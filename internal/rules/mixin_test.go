package rules

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-jsonnet"
	"gopkg.in/yaml.v3"
)

// The mixin's data is what the Go definitions render.
func TestMixinDataUpToDate(t *testing.T) {
	out, err := RenderMixinData(Alerts())
	if err != nil {
		t.Fatal(err)
	}
	checkGenerated(t, MixinDataFile, out)
}

// renderMixin evaluates mixin/mixin.libsonnet with go-jsonnet, with
// overrides (a Jsonnet object, "" for none) added to it, and returns its
// alert and recording groups, in that order, and its dashboards, each as
// the JSON values they encode to.
func renderMixin(t *testing.T, overrides string) (groups []any, dashboards map[string]any) {
	t.Helper()
	vm := jsonnet.MakeVM()
	vm.Importer(&jsonnet.FileImporter{JPaths: []string{repoFile("mixin")}})
	code := `local m = (import 'mixin.libsonnet')` + map[bool]string{true: "", false: " + " + overrides}[overrides == ""] + `;
{ groups: m.prometheusAlerts.groups + m.prometheusRules.groups, dashboards: m.grafanaDashboards }`
	out, err := vm.EvaluateAnonymousSnippet("render.jsonnet", code)
	if err != nil {
		t.Fatalf("jsonnet: %v", err)
	}
	var doc struct {
		Groups     []any          `json:"groups"`
		Dashboards map[string]any `json:"dashboards"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Groups, doc.Dashboards
}

// jsonValue is v as encoding/json decodes its JSON: YAML's and Jsonnet's
// documents compare alike.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// groupsOf decodes a rule file's groups.
func groupsOf(t *testing.T, file []byte) []any {
	t.Helper()
	var doc struct {
		Groups []any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(file, &doc); err != nil {
		t.Fatal(err)
	}
	return jsonValue(t, doc.Groups).([]any)
}

// compareGroups reports the first group that differs, by name.
func compareGroups(t *testing.T, what string, got, want []any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d groups, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.MarshalIndent(got[i], "", " ")
			w, _ := json.MarshalIndent(want[i], "", " ")
			t.Errorf("%s: group %d differs:\n got %.3000s\nwant %.3000s", what, i, g, w)
			return
		}
	}
}

// The mixin with its default _config yields exactly the repository's rule
// file and dashboards; with another, the rules Go renders for those
// settings.
func TestMixinRendersTheShippedRulesAndDashboards(t *testing.T) {
	groups, dashboards := renderMixin(t, "")
	shipped, err := os.ReadFile(repoFile(RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	compareGroups(t, "the mixin's default", groups, groupsOf(t, shipped))

	files, err := filepath.Glob(repoFile("dashboards/*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want any
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dashboards[filepath.Base(f)], want) {
			t.Errorf("the mixin's dashboard %s differs from dashboards/%s", filepath.Base(f), filepath.Base(f))
		}
	}
	var got []string
	for n := range dashboards {
		got = append(got, n)
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Errorf("the mixin's dashboards %v, the repository's %v", got, names)
	}

	// Another configuration: what Go renders with those settings.
	const prod, runbook, selector = `production|prod-[a-z]+`, "https://runbooks.example.com/crowsnest/%s.md", `job="argocd/crowsnest"`
	groups, dashboards = renderMixin(t, `{ _config+:: { prodEnvironments: '`+prod+`', runbookURLPattern: '`+runbook+`', crowsnestSelector: '`+selector+`' } }`)
	want, err := ruleGroups(Alerts(), 1, prod, Links{})
	if err != nil {
		t.Fatal(err)
	}
	for gi := range want {
		for ri := range want[gi].Rules {
			r := &want[gi].Rules[ri]
			r.Expr = strings.ReplaceAll(r.Expr, jobSelector, selector)
			if u, ok := r.Annotations["runbook_url"]; ok {
				r.Annotations["runbook_url"] = strings.Replace(runbook, "%s", strings.TrimPrefix(u, RunbookURL+"#"), 1)
			}
		}
	}
	compareGroups(t, "prodEnvironments "+prod, groups, jsonValue(t, want).([]any))
	// The DORA dashboard's prod deployments follow the prod environments.
	dora, _ := json.Marshal(dashboards["crowsnest-dora.json"])
	if strings.Contains(string(dora), `env=\"prod\"`) || !strings.Contains(string(dora), `env=~\"`+prod+`\"`) {
		t.Errorf("the DORA dashboard's prod panels do not follow prodEnvironments %s", prod)
	}
}
