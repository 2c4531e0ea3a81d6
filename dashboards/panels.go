package dashboards

import (
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/loki"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The datasource variables. Each is named after the plugin type it
// selects, and every panel, target, variable and annotation refers to its
// datasource through one of them: no datasource uid is hard-coded.
const (
	promDS  = "prometheus"
	lokiDS  = "loki"
	tempoDS = "tempo"
)

// ds is the reference to the datasource picked by the variable of that
// type (promDS, lokiDS, tempoDS).
func ds(typ string) common.DataSourceRef {
	uid := "${" + typ + "}"
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

// clusterMatcher selects the installations picked by the cluster variable.
// A series without a cluster label (one installation, nothing relabelled)
// matches too: its cluster is "", and "All" is .*.
const clusterMatcher = `cluster=~"$cluster"`

// appKey are the labels that tell one Application's series from another's
// across installations: the first aggregation of a per-app series keeps
// them (and the metric's own labels), which drops only the copies of each
// crowsnest replica. dest_cluster (the cluster the app deploys to) is one
// per app: kept so that tables show it.
const appKey = "cluster, namespace, name, project, env, dest_cluster"

// selector is a PromQL label selector: the cluster matcher, then ms.
func selector(ms ...string) string {
	return "{" + strings.Join(append([]string{clusterMatcher}, ms...), ", ") + "}"
}

// fleetSel selects the series of the environments and projects picked by
// the env and project variables, then ms.
func fleetSel(ms ...string) string {
	return selector(append([]string{`env=~"$env"`, `project=~"$project"`}, ms...)...)
}

// appSel selects the series of the application picked by the app and
// namespace variables (two apps of one name in two namespaces are two
// apps), then ms.
func appSel(ms ...string) string {
	return fleetSel(append([]string{`namespace="$namespace"`, `name="$app"`}, ms...)...)
}

// by returns the labels of a by (...) clause: appKey followed by extra.
func by(extra ...string) string {
	return strings.Join(append([]string{appKey}, extra...), ", ")
}

// rangeQuery is a Prometheus target evaluated over the time range.
func rangeQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(ds(promDS)).Expr(expr).LegendFormat(legend).
		Range().Format(prometheus.PromQueryFormatTimeSeries).EditorMode(prometheus.QueryEditorModeCode)
}

// durationQuery is a range target over a *_seconds histogram: its
// exemplars (the trace id of an observation) show on the panel and link to
// the trace.
func durationQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return rangeQuery(expr, legend).Exemplar(true)
}

// instantQuery is a Prometheus target evaluated once, at the end of the
// time range.
func instantQuery(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(ds(promDS)).Expr(expr).LegendFormat(legend).
		Instant().Format(prometheus.PromQueryFormatTimeSeries).EditorMode(prometheus.QueryEditorModeCode)
}

// tableQuery is an instant Prometheus target in table format: one row per
// series, one column per label.
func tableQuery(expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(ds(promDS)).Expr(expr).LegendFormat("").
		Instant().Format(prometheus.PromQueryFormatTable).EditorMode(prometheus.QueryEditorModeCode)
}

// logQuery is a Loki target returning log lines, newest first.
func logQuery(expr string, maxLines int64) *loki.DataqueryBuilder {
	return loki.NewDataqueryBuilder().Datasource(ds(lokiDS)).Expr(expr).QueryType("range").
		EditorMode(loki.QueryEditorModeCode).MaxLines(maxLines).Direction(loki.LokiQueryDirectionBackward)
}

// lastValue reduces a series to its last non-null value.
func lastValue() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Fields("").Values(false)
}

func tableLegend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementBottom).ShowLegend(true).Calcs([]string{"lastNotNull", "max"})
}

func listLegend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).
		Placement(common.LegendPlacementBottom).ShowLegend(true).Calcs([]string{})
}

func multiTooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

// fixed is a field colour that does not depend on the value.
func fixed(color string) *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor(color)
}

// colorValue is the value of a "color" override property.
func colorValue(color string) map[string]any {
	return map[string]any{"mode": "fixed", "fixedColor": color}
}

// step is one threshold: from value on (nil: from minus infinity), color.
type step struct {
	from  *float64
	color string
}

// from is a threshold step starting at v.
func from(v float64, color string) step { return step{&v, color} }

// base is the first threshold step, from minus infinity.
func base(color string) step { return step{nil, color} }

// thresholds are absolute thresholds of the steps.
func thresholds(steps ...step) *dashboard.ThresholdsConfigBuilder {
	out := make([]dashboard.Threshold, len(steps))
	for i, s := range steps {
		out[i] = dashboard.Threshold{Value: s.from, Color: s.color}
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(out)
}

// thresholdsValue is thresholds as the value of an override property.
func thresholdsValue(steps ...step) map[string]any {
	out := make([]map[string]any, len(steps))
	for i, s := range steps {
		out[i] = map[string]any{"color": s.color, "value": s.from}
	}
	return map[string]any{"mode": "absolute", "steps": out}
}

// valueText maps exact values to a text and a colour.
type valueText struct {
	value, text, color string
}

// valueMappings maps each value to its text and colour, in order.
func valueMappings(vs ...valueText) []dashboard.ValueMapping {
	options := make(map[string]dashboard.ValueMappingResult, len(vs))
	for i, v := range vs {
		r := dashboard.ValueMappingResult{Color: &v.color, Index: ptr(int32(i))}
		if v.text != "" {
			r.Text = &v.text
		}
		options[v.value] = r
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: options}}}
}

// regexText rewrites a value matching pattern (a JavaScript regular
// expression, /.../) into text, where $1... are its groups.
type regexText struct {
	pattern, text string
}

// regexMappings rewrites values by the first pattern they match. A data
// link's ${__data.fields.x} and ${__value.text} are the rewritten text.
func regexMappings(rs ...regexText) []dashboard.ValueMapping {
	out := make([]dashboard.ValueMapping, len(rs))
	for i, r := range rs {
		out[i] = dashboard.ValueMapping{RegexMap: &dashboard.RegexMap{
			Type:    dashboard.MappingTypeRegexToText,
			Options: dashboard.DashboardRegexMapOptions{Pattern: r.pattern, Result: dashboard.ValueMappingResult{Text: ptr(r.text), Index: ptr(int32(i))}},
		}}
	}
	return out
}

// prop is one property of a field override.
func prop(id string, value any) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: id, Value: value}
}

// rename shows a field under another name.
func rename(name string) dashboard.DynamicConfigValue { return prop("displayName", name) }

// hidden hides a table column; its value stays available to data links.
func hidden() dashboard.DynamicConfigValue { return prop("custom.hidden", true) }

// colorText colours a table cell's text by the field's colour.
func colorText() dashboard.DynamicConfigValue {
	return prop("custom.cellOptions", map[string]any{"type": "color-text"})
}

// link is a data link: a title and a URL with Grafana variables.
type link struct {
	title, url string
	// newTab opens the link in a new browser tab (links leaving Grafana).
	newTab bool
}

// links is the "links" property of a field override.
func links(ls ...link) dashboard.DynamicConfigValue {
	out := make([]map[string]any, len(ls))
	for i, l := range ls {
		out[i] = map[string]any{"title": l.title, "url": l.url, "targetBlank": l.newTab}
	}
	return prop("links", out)
}

// appDashboardLink opens the application dashboard on the app of a table
// row, keeping the row's env and project, the cluster selection and the
// time range. The row has the fields name, env and project (the labels, or
// the Loki stream labels and the line's app, rewritten to its name), and
// with withNamespace the field namespace: the app dashboard then opens
// that namespace's app of the name (without it, the first namespace with
// an app of the name, which its namespace picker changes).
func appDashboardLink(nameField string, withNamespace bool) link {
	ns := ""
	if withNamespace {
		ns = "&var-namespace=${__data.fields.namespace}"
	}
	return link{
		title: "Open ${__data.fields." + nameField + "} in the application dashboard",
		url: "/d/" + uidApp + "/" + uidApp + "?var-app=${__data.fields." + nameField + "}" + ns +
			"&var-env=${__data.fields.env}&var-project=${__data.fields.project}&${cluster:queryparam}&${__url_time_range}",
	}
}

// argoCDAppLink opens the Argo CD UI's page of the application of a table
// row (fields namespace and name), at the URL crowsnest_links_info gives
// (--argocd.url).
func argoCDAppLink() link {
	return link{
		title:  "Open ${__data.fields.namespace}/${__data.fields.name} in Argo CD",
		url:    "${argocd_url}/applications/${__data.fields.namespace}/${__data.fields.name}",
		newTab: true,
	}
}

// argoCDSelectedAppLink opens the Argo CD UI's page of the application the
// dashboard shows (the app variable, in the namespace of the namespace
// variable).
func argoCDSelectedAppLink() link {
	return link{title: "Open $namespace/$app in Argo CD", url: "${argocd_url}/applications/${namespace}/${app}", newTab: true}
}

// traceLink opens the trace whose id is the cell's value in Explore, on
// the ${tempo} datasource; Tempo (TraceQL) and Jaeger both look up a bare
// trace id. The time range is the dashboard's, which holds the fact.
func traceLink() link {
	return link{
		title: "Open the trace in Explore (${tempo})",
		url:   `/explore?left={"datasource":"${tempo}","queries":[{"refId":"A","queryType":"traceql","query":"${__value.raw}"}],"range":{"from":"${__from}","to":"${__to}"}}`,
	}
}

// commitLink opens the commit whose SHA is the cell's value in its
// repository, from the row's repoField rewritten by commitBaseMappings.
func commitLink(repoField string) link {
	return link{title: "Open the commit in its repository", url: "${__data.fields." + repoField + "}/${__value.raw}", newTab: true}
}

// commitBaseMappings rewrite a repository URL as Argo CD has it (https,
// ssh:// or scp-like git@host:org/repo, with or without .git) into the
// base of its commit pages: <web URL>/commit on GitHub, GitLab, Gitea,
// Forgejo and Azure DevOps, /commits on Bitbucket Cloud.
func commitBaseMappings() []dashboard.ValueMapping {
	return regexMappings(
		regexText{`/^(?:https?:\/\/|ssh:\/\/)?(?:[^@\/]+@)?bitbucket\.org[:\/](.+?)(?:\.git)?\/?$/`, "https://bitbucket.org/$1/commits"},
		regexText{`/^ssh:\/\/(?:[^@\/]+@)?([^:\/]+)(?::\d+)?\/(.+?)(?:\.git)?\/?$/`, "https://$1/$2/commit"},
		regexText{`/^[^@\/:]+@([^:\/]+):(.+?)(?:\.git)?\/?$/`, "https://$1/$2/commit"},
		regexText{`/^(https?:\/\/.+?)(?:\.git)?\/?$/`, "$1/commit"},
	)
}

// repoWebMappings rewrite a repository URL as Argo CD has it into the web
// page of the repository (the https URL without .git).
func repoWebMappings() []dashboard.ValueMapping {
	return regexMappings(
		regexText{`/^ssh:\/\/(?:[^@\/]+@)?([^:\/]+)(?::\d+)?\/(.+?)(?:\.git)?\/?$/`, "https://$1/$2"},
		regexText{`/^[^@\/:]+@([^:\/]+):(.+?)(?:\.git)?\/?$/`, "https://$1/$2"},
		regexText{`/^(https?:\/\/.+?)(?:\.git)?\/?$/`, "$1"},
	)
}

// appNameMappings rewrite a fact's app (namespace/name) to its name, the
// app dashboard's app variable.
func appNameMappings() []dashboard.ValueMapping {
	return regexMappings(regexText{`/^[^\/]*\/(.+)$/`, "$1"})
}

// organize drops, renames and orders a table's columns.
func organize(exclude []string, renames map[string]string, order []string) dashboard.DataTransformerConfig {
	ex := make(map[string]bool, len(exclude))
	for _, e := range exclude {
		ex[e] = true
	}
	idx := make(map[string]int, len(order))
	for i, o := range order {
		idx[o] = i
	}
	opts := map[string]any{"excludeByName": ex, "renameByName": renames, "indexByName": idx, "includeByName": map[string]bool{}}
	if renames == nil {
		opts["renameByName"] = map[string]string{}
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: opts}
}

// lokiColumns turn Loki lines into table rows: the stream labels and the
// fields | json extracted become columns, ts (the fact's time) a time and
// the numeric fields numbers.
func lokiColumns(numbers ...string) []dashboard.DataTransformerConfig {
	conv := []map[string]any{{"targetField": "ts", "destinationType": "time"}}
	for _, n := range numbers {
		conv = append(conv, map[string]any{"targetField": n, "destinationType": "number"})
	}
	return []dashboard.DataTransformerConfig{
		{Id: "extractFields", Options: map[string]any{"source": "labels", "format": "auto", "replace": false, "keepTime": false}},
		{Id: "convertFieldType", Options: map[string]any{"fields": map[string]any{}, "conversions": conv}},
	}
}

// lokiNoise are the columns of a Loki table that repeat the stream or
// Loki's own bookkeeping: the line, its ids, the label set, the copies of
// the stream labels | json makes (env_extracted...) and detected levels.
func lokiNoise() []string {
	return []string{"Time", "Line", "labels", "labelTypes", "tsNs", "id", "job", "event_extracted", "env_extracted",
		"project_extracted", "detected_level", "level", "service_name"}
}

func statPanel(title, description, unit string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(description).Datasource(ds(promDS)).Unit(unit).
		ReduceOptions(lastValue()).ColorMode(common.BigValueColorModeValue).GraphMode(common.BigValueGraphModeNone).
		JustifyMode(common.BigValueJustifyModeAuto).Orientation(common.VizOrientationAuto).TextMode(common.BigValueTextModeAuto).
		WideLayout(true).ShowPercentChange(false)
}

func barGaugePanel(title, description, unit string) *bargauge.PanelBuilder {
	return bargauge.NewPanelBuilder().Title(title).Description(description).Datasource(ds(promDS)).Unit(unit).Min(0).
		ReduceOptions(lastValue()).DisplayMode(common.BarGaugeDisplayModeBasic).Orientation(common.VizOrientationHorizontal).
		ShowUnfilled(true).ValueMode(common.BarGaugeValueModeColor).NamePlacement(common.BarGaugeNamePlacementAuto).
		Sizing(common.BarGaugeSizingAuto).MinVizHeight(16).MinVizWidth(8).MaxVizHeight(300)
}

func timeseriesPanel(title, description, unit string) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Description(description).Datasource(ds(promDS)).Unit(unit).
		Legend(tableLegend()).Tooltip(multiTooltip())
}

// durationPanel shows a quantile of a duration histogram as points, one
// per evaluation with syncs, with the histogram's exemplars.
func durationPanel(title, description string) *timeseries.PanelBuilder {
	return timeseriesPanel(title, description, "s").Min(0).DrawStyle(common.GraphDrawStylePoints).PointSize(6).
		SpanNulls(common.BoolOrFloat64{Bool: ptr(false)})
}

// heatmapPanel shows a duration histogram's buckets over time, with its
// exemplars (each links to the trace of one observation).
func heatmapPanel(title, description string) *heatmap.PanelBuilder {
	return heatmap.NewPanelBuilder().Title(title).Description(description).Datasource(ds(promDS)).Unit("s").
		Calculate(false).CellGap(1).ShowValue(common.VisibilityModeNever).ShowLegend().
		Color(heatmap.NewHeatmapColorOptionsBuilder().Mode(heatmap.HeatmapColorModeScheme).Scheme("Oranges").
			Scale(heatmap.HeatmapColorScaleExponential).Exponent(0.5).Fill("dark-orange").Steps(64).Reverse(false)).
		RowsFrame(heatmap.NewRowsHeatmapOptionsBuilder().Layout(common.HeatmapCellLayoutLe)).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit("s").AxisPlacement(common.AxisPlacementLeft)).
		Tooltip(heatmap.NewHeatmapTooltipBuilder().Mode(common.TooltipDisplayModeSingle).YHistogram(true).ShowColorScale(false)).
		ExemplarsColor("rgba(255,0,255,0.7)").
		FilterValues(heatmap.NewFilterValueRangeBuilder().Le(1e-9))
}

func stateTimelinePanel(title, description string) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().Title(title).Description(description).Datasource(ds(promDS)).Unit("none").
		FillOpacity(80).LineWidth(0).MergeValues(true).ShowValue(common.VisibilityModeNever).
		AlignValue(common.TimelineValueAlignmentLeft).RowHeight(0.8).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(false).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).Calcs([]string{})).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeSingle).Sort(common.SortOrderNone)).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		Thresholds(thresholds(base("transparent")))
}

// stateRow is the mapping of one state-set series on a state timeline:
// 1 shows text in color, 0 nothing.
func stateRow(text, color string) dashboard.DynamicConfigValue {
	return prop("mappings", valueMappings(valueText{"0", " ", "transparent"}, valueText{"1", text, color}))
}

func tablePanel(title, description string, datasource string) *table.PanelBuilder {
	return table.NewPanelBuilder().Title(title).Description(description).Datasource(ds(datasource)).
		ShowHeader(true).CellHeight(common.TableCellHeightSm).Filterable(false).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}).CountRows(false))
}

// sortBy sorts a table by the column shown as name, descending.
func sortBy(name string) []cog.Builder[common.TableSortByFieldState] {
	return []cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName(name).Desc(true)}
}

func logsPanel(title, description string) *logs.PanelBuilder {
	return logs.NewPanelBuilder().Title(title).Description(description).Datasource(ds(lokiDS)).
		ShowTime(true).ShowLabels(false).ShowCommonLabels(false).WrapLogMessage(true).PrettifyLogMessage(false).
		EnableLogDetails(true).DedupStrategy(common.LogsDedupStrategyNone).SortOrder(common.LogsSortOrderDescending)
}

func ptr[T any](v T) *T { return &v }

// stateColor is the colour the dashboards give one Argo CD state.
type stateColor struct{ state, color string }

// syncColors are the colours of the sync statuses, in the order panels
// list them.
func syncColors() []stateColor {
	return []stateColor{{"Synced", "green"}, {"OutOfSync", "orange"}, {"Unknown", "gray"}}
}

// healthColors are the colours of the health statuses.
func healthColors() []stateColor {
	return []stateColor{{"Healthy", "green"}, {"Progressing", "blue"}, {"Degraded", "red"},
		{"Suspended", "purple"}, {"Missing", "yellow"}, {"Unknown", "gray"}}
}

// phaseColors are the colours of the operation phases.
func phaseColors() []stateColor {
	return []stateColor{{"Pending", "yellow"}, {"Running", "blue"}, {"Succeeded", "green"}, {"Failed", "red"},
		{"Error", "dark-red"}, {"Terminating", "orange"}, {"Terminated", "orange"}}
}

// overrider is a panel builder that takes field overrides by name (every
// panel builder of the SDK).
type overrider[B any] interface {
	OverrideByName(name string, properties []dashboard.DynamicConfigValue) B
}

// colored colours the field of each state of b, named after the state.
func colored[B overrider[B]](b B, states []stateColor) B {
	for _, s := range states {
		b = b.OverrideByName(s.state, []dashboard.DynamicConfigValue{prop("color", colorValue(s.color))})
	}
	return b
}

// stateRows turns the field of each state of a state timeline, named
// prefix and the state, into a row showing the state in its colour while
// it holds.
func stateRows[B overrider[B]](b B, prefix string, states []stateColor) B {
	for _, s := range states {
		b = b.OverrideByName(prefix+s.state, []dashboard.DynamicConfigValue{stateRow(s.state, s.color)})
	}
	return b
}
