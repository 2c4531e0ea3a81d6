package dashboards

//lint:file-ignore SA1019 the SDK deprecates the classic dashboard model for the v2 schema, which only Grafana 12's new dashboard API loads (behind a feature toggle); file and sidecar provisioning on Grafana 10 and 11 take the classic JSON built here

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/loki"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/tempo"

	"github.com/crowsnest/crowsnest/internal/rules"
)

// The dashboards' uids, which alerts link to too; each is rendered to
// <uid>.json.
const (
	uidFleet = rules.DashboardFleet
	uidApp   = rules.DashboardApp
	uidDORA  = rules.DashboardDORA
)

// schemaVersion is the dashboard JSON schema the files declare: Grafana
// 10 and 11 load it as it is, later versions migrate it on load.
const schemaVersion = 39

// ChartDir is where the Helm chart keeps its copy of the rendered
// dashboards, relative to the repository root.
const ChartDir = "charts/exporter/files/dashboards"

// MixinDir is where the Jsonnet mixin (mixin/) keeps its copy: a vendored
// mixin has only its own directory.
const MixinDir = "mixin/dashboards"

// Dashboards builds crowsnest's dashboards: the fleet, one application,
// and DORA's four keys.
func Dashboards() ([]dashboard.Dashboard, error) {
	builders := []func() *dashboard.DashboardBuilder{fleetDashboard, appDashboard, doraDashboard}
	out := make([]dashboard.Dashboard, 0, len(builders))
	for _, b := range builders {
		d, err := b().Build()
		if err != nil {
			return nil, fmt.Errorf("build dashboard: %w", err)
		}
		finish(&d)
		out = append(out, d)
	}
	return out, nil
}

// Render returns the JSON of every dashboard, as provisioned (the files
// of this directory and of the chart's), keyed by file name: <uid>.json.
func Render() (map[string][]byte, error) {
	ds, err := Dashboards()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(ds))
	for _, d := range ds {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // keep the PromQL and LogQL readable: no \u003e for >
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("render dashboard %s: %w", *d.Uid, err)
		}
		out[*d.Uid+".json"] = b.Bytes()
	}
	return out, nil
}

// finish numbers the panels (ids are unique per dashboard, rows
// included), names the targets of each panel A, B, C..., sets the schema
// version and leaves the placement of annotations and links to Grafana.
func finish(d *dashboard.Dashboard) {
	d.SchemaVersion = schemaVersion
	// The SDK puts annotation toggles and links in Grafana 12's controls
	// menu; keep them where every version shows them, above the panels.
	for i := range d.Annotations.List {
		d.Annotations.List[i].Placement = nil
	}
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	id := uint32(0)
	number := func(p *dashboard.Panel) {
		id++
		p.Id = ptr(id)
		for i, t := range p.Targets {
			p.Targets[i] = withRefID(t, string(rune('A'+i)))
		}
	}
	for _, pr := range d.Panels {
		switch {
		case pr.Panel != nil:
			number(pr.Panel)
		case pr.RowPanel != nil:
			id++
			pr.RowPanel.Id = id
			for i := range pr.RowPanel.Panels {
				number(&pr.RowPanel.Panels[i])
			}
		}
	}
}

// withRefID returns q with the refId ref unless it has one.
func withRefID(q variants.Dataquery, ref string) variants.Dataquery {
	switch t := q.(type) {
	case prometheus.Dataquery:
		if t.RefId == nil {
			t.RefId = &ref
		}
		return t
	case loki.Dataquery:
		if t.RefId == nil {
			t.RefId = &ref
		}
		return t
	case tempo.Dataquery:
		if t.RefId == nil {
			t.RefId = &ref
		}
		return t
	}
	return q
}

// newDashboard starts a dashboard with what all of crowsnest's share:
// tags, the shared crosshair, the datasource, cluster, env and project
// variables and the deployment annotation (covering the series of
// selector, whose matchers follow the dashboard's variables). cluster is
// the installation variable: clusterVariable's.
func newDashboard(uid, title, description string, cluster *dashboard.QueryVariableBuilder) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).Uid(uid).Description(description).
		Tags([]string{"crowsnest", "argocd"}).Editable().Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Timezone(common.TimeZoneBrowser).FiscalYearStartMonth(0).LiveNow(false).WeekStart("").Version(1).
		Timepicker(dashboard.NewTimePickerBuilder()).
		Annotation(builtInAnnotation()).
		WithVariable(datasourceVariable(promDS, "Prometheus")).
		WithVariable(datasourceVariable(tempoDS, "Tempo")).
		WithVariable(datasourceVariable(lokiDS, "Loki")).
		WithVariable(cluster).
		WithVariable(multiVariable("env", "Environment", `label_values(crowsnest_app_info`+selector()+`, env)`, "")).
		WithVariable(multiVariable("project", "Project", `label_values(crowsnest_app_info`+selector(`env=~"$env"`)+`, project)`, "")).
		WithVariable(hiddenVariable("argocd_url", `label_values(crowsnest_links_info`+selector()+`, argocd_url)`,
			"The Argo CD UI's base URL (crowsnest's --argocd.url, exposed as crowsnest_links_info), which the links to Argo CD start with."))
}

func builtInAnnotation() *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().Name("Annotations & Alerts").BuiltIn(1).Type("dashboard").
		Datasource(common.DataSourceRef{Type: ptr("grafana"), Uid: ptr("-- Grafana --")}).
		Enable(true).Hide(true).IconColor("rgba(0, 211, 255, 1)")
}

// deploymentAnnotation marks each deployment (or rollback) that succeeded
// at the time it finished: the series' value is that time, so each value
// it took in the range is one mark.
func deploymentAnnotation(sel string) *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().Name("Deployments").Datasource(ds(promDS)).Enable(true).Hide(false).
		IconColor("purple").Step("1m").UseValueForTime(true).
		Expr("max by (" + appKey + ") (crowsnest_app_last_deployment_timestamp_seconds" + sel + ") * 1000").
		TitleFormat("{{namespace}}/{{name}} deployed").
		TextFormat("project {{project}}, env {{env}}: a successful deployment or rollback finished").
		TagKeys("env,project")
}

// syncAnnotation marks each sync operation (not a dry run) at the time it
// finished, with its result, as deploymentAnnotation does.
func syncAnnotation(sel string) *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().Name("Syncs").Datasource(ds(promDS)).Enable(true).Hide(false).
		IconColor("blue").Step("1m").UseValueForTime(true).
		Expr("max by (" + by("result") + ") (crowsnest_app_last_sync_finished_timestamp_seconds" + sel + ") * 1000").
		TitleFormat("{{namespace}}/{{name}} sync {{result}}").
		TextFormat("project {{project}}, env {{env}}: a sync operation finished {{result}}").
		TagKeys("env,project,result")
}

func datasourceVariable(typ, label string) *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(typ).Label(label).Type(typ).Regex("").Multi(false).IncludeAll(false)
}

// queryVariable is a variable whose values come from a Prometheus
// label_values(...) query, refreshed with the time range.
func queryVariable(name, label, query, description string) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).Datasource(ds(promDS)).Definition(query).
		Query(dashboard.StringOrMap{Map: map[string]any{"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1}}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).Regex("")
	if label != "" {
		v = v.Label(label)
	}
	if description != "" {
		v = v.Description(description)
	}
	return v
}

// multiVariable takes any number of values, All being .* (which also
// matches a series without the label).
func multiVariable(name, label, query, description string) *dashboard.QueryVariableBuilder {
	return queryVariable(name, label, query, description).Multi(true).IncludeAll(true).AllValue(".*")
}

// clusterVariable picks the crowsnest installations shown: the cluster
// label of their series, added by the scrape's relabelling or Prometheus'
// external labels. With multi, any number of them; without, one (the
// application dashboard: an app is of one installation), All being .* for
// one installation without the label.
func clusterVariable(multi bool) *dashboard.QueryVariableBuilder {
	const query = "label_values(crowsnest_build_info, cluster)"
	if multi {
		return multiVariable("cluster", "Cluster", query,
			"The crowsnest installations shown: the cluster label of their series, added by the scrape's relabelling or Prometheus' external labels. One installation without the label: All.")
	}
	return queryVariable("cluster", "Cluster", query,
		"The crowsnest installation of the application: the cluster label of its series, added by the scrape's relabelling or Prometheus' external labels. Pick one where several installations are scraped (two may have apps of one namespace and name); All with one installation without the label.").
		Multi(false).IncludeAll(true).AllValue(".*")
}

// hiddenVariable holds one value for links; it is not shown.
func hiddenVariable(name, query, description string) *dashboard.QueryVariableBuilder {
	return queryVariable(name, "", query, description).Multi(false).IncludeAll(false).Hide(dashboard.VariableHideHideVariable)
}

// dashboardLink is a link in the dashboard's header.
func dashboardLink(title, url, tooltip string, newTab bool) *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder(title).Type(dashboard.DashboardLinkTypeLink).Url(url).Tooltip(tooltip).
		Icon("external link").KeepTime(!newTab).IncludeVars(false).TargetBlank(newTab).AsDropdown(false).Tags([]string{})
}

// otherDashboards lists crowsnest's other dashboards (by their tag) in the
// header.
func otherDashboards() *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder("crowsnest").Type(dashboard.DashboardLinkTypeDashboards).
		Tags([]string{"crowsnest"}).AsDropdown(true).KeepTime(true).IncludeVars(false).TargetBlank(false).Icon("dashboard")
}
