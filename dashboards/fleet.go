package dashboards

//lint:file-ignore SA1019 the SDK deprecates the classic dashboard model for the v2 schema, which only Grafana 12's new dashboard API loads (behind a feature toggle); file and sidecar provisioning on Grafana 10 and 11 take the classic JSON built here

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// fleetDashboard is the overview of every Application: state, failures,
// drift, durations, recent failures from Loki, workloads, policies and
// crowsnest's own health.
func fleetDashboard() *dashboard.DashboardBuilder {
	sel := fleetSel()
	failed := fleetSel(`result=~"Failed|Error"`)
	return newDashboard(uidFleet, "crowsnest / Fleet",
		"Argo CD fleet overview from crowsnest: sync and health state, failed syncs, drift, sync and wave durations (with exemplars linking to traces), recent failures from Loki, workloads, policies and crowsnest's own health. Every table row opens its Application's dashboard.", clusterVariable(true)).
		Time("now-6h", "now").Refresh("30s").
		Link(otherDashboards()).
		Link(dashboardLink("Argo CD", "${argocd_url}/applications", "The Argo CD UI (crowsnest's --argocd.url)", true)).
		Annotation(deploymentAnnotation(sel)).
		Annotation(syncAnnotation(sel)).
		WithRow(dashboard.NewRowBuilder("Fleet state")).
		WithPanel(statPanel("Applications",
			"Number of Argo CD Applications crowsnest watches (crowsnest_app_info), for the selected clusters, environments and projects.", "short").
			ColorScheme(fixed("text")).Height(6).Span(4).
			WithTarget(instantQuery("count(max by ("+appKey+") (crowsnest_app_info"+sel+"))", "apps"))).
		WithPanel(colored(barGaugePanel("Applications by sync status",
			"How many Applications are Synced, OutOfSync or Unknown right now (crowsnest_app_sync_status state set).", "short").
			ColorScheme(fixed("blue")).Height(6).Span(6),
			syncColors()).
			WithTarget(instantQuery("sum by (status) (max by ("+by("status")+") (crowsnest_app_sync_status"+sel+"))", "{{status}}"))).
		WithPanel(colored(barGaugePanel("Applications by health",
			"How many Applications are in each Argo CD health status right now (crowsnest_app_health_status state set).", "short").
			ColorScheme(fixed("blue")).Height(6).Span(6),
			healthColors()).
			WithTarget(instantQuery("sum by (status) (max by ("+by("status")+") (crowsnest_app_health_status"+sel+"))", "{{status}}"))).
		WithPanel(barGaugePanel("Applications by environment",
			"How many Applications each environment (env label, derived by crowsnest's config) has.", "short").
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).Height(6).Span(4).
			WithTarget(instantQuery("count by (env) (max by ("+appKey+") (crowsnest_app_info"+sel+"))", "{{env}}"))).
		WithPanel(statPanel("Failed syncs in range",
			`Sync operations that ended Failed or Error during the dashboard time range: increase of crowsnest_app_syncs_total{result=~"Failed|Error"} over $__range.`, "short").
			Decimals(0).Thresholds(thresholds(base("green"), from(1, "red"))).ColorMode(common.BigValueColorModeBackground).Height(6).Span(4).
			WithTarget(instantQuery("sum(max by ("+by("result")+") (increase(crowsnest_app_syncs_total"+failed+"[$__range])))", "failed"))).
		WithPanel(timeseriesPanel("Failed syncs by environment",
			"Sync operations ending Failed or Error per environment, per $__rate_interval window (increase of crowsnest_app_syncs_total).", "short").
			Min(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).LineWidth(1).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal).Group("A")).Height(8).Span(12).
			WithTarget(rangeQuery("sum by (env) (max by ("+by("result")+") (increase(crowsnest_app_syncs_total"+failed+"[$__rate_interval])))", "{{env}}"))).
		WithPanel(tablePanel("Drifted applications",
			"Applications that are OutOfSync, with how long they have been drifting: time() - crowsnest_app_drift_since_timestamp_seconds (the series is absent when an app is synced). Empty means the fleet is in sync. Click an application to open its dashboard.", promDS).
			Unit("s").Thresholds(thresholds(base("green"), from(600, "orange"), from(3600, "red"))).
			OverrideByName("Drift age", []dashboard.DynamicConfigValue{colorText()}).
			OverrideByName("Application", []dashboard.DynamicConfigValue{links(appDashboardLink("name", true), argoCDAppLink())}).
			SortBy(sortBy("Drift age")).
			WithTransformation(organize([]string{"Time"},
				map[string]string{"Value": "Drift age", "namespace": "Namespace", "name": "Application", "project": "Project", "env": "Environment", "cluster": "Cluster", "dest_cluster": "Destination cluster"},
				[]string{"name", "namespace", "project", "env", "cluster", "dest_cluster", "Value"})).
			Height(8).Span(12).
			WithTarget(tableQuery("time() - min by (" + appKey + ") (crowsnest_app_drift_since_timestamp_seconds" + sel + ")"))).
		WithPanel(tablePanel("Out-of-sync resources by kind",
			"Resources Argo CD reports as OutOfSync, per application, group and kind (crowsnest_app_out_of_sync_resources). Empty means nothing drifted. Click an application to open its dashboard.", promDS).
			Unit("short").
			OverrideByName("Application", []dashboard.DynamicConfigValue{links(appDashboardLink("name", true), argoCDAppLink())}).
			WithTransformation(organize([]string{"Time"},
				map[string]string{"Value": "Resources", "name": "Application", "namespace": "Namespace", "project": "Project", "env": "Environment", "cluster": "Cluster", "dest_cluster": "Destination cluster", "group": "Group", "kind": "Kind"},
				[]string{"name", "namespace", "project", "env", "cluster", "dest_cluster", "group", "kind", "Value"})).
			Height(7).Span(12).
			WithTarget(tableQuery("max by (" + by("group", "kind") + ") (crowsnest_app_out_of_sync_resources" + sel + ") > 0"))).
		WithPanel(tablePanel("Applications whose last sync failed",
			`Applications whose most recent sync operation ended Failed or Error, with when it finished (crowsnest_app_last_sync_finished_timestamp_seconds{result=~"Failed|Error"}). Click an application to open its dashboard.`, promDS).
			Unit("dateTimeAsIso").
			OverrideByName("Application", []dashboard.DynamicConfigValue{links(appDashboardLink("name", true), argoCDAppLink())}).
			SortBy(sortBy("Finished")).
			WithTransformation(organize([]string{"Time"},
				map[string]string{"Value": "Finished", "name": "Application", "namespace": "Namespace", "project": "Project", "env": "Environment", "cluster": "Cluster", "dest_cluster": "Destination cluster", "result": "Result"},
				[]string{"name", "namespace", "project", "env", "cluster", "dest_cluster", "result", "Value"})).
			Height(7).Span(12).
			WithTarget(tableQuery("max by (" + by("result") + ") (crowsnest_app_last_sync_finished_timestamp_seconds" + failed + ") * 1000"))).
		WithRow(dashboard.NewRowBuilder("Sync durations")).
		WithPanel(heatmapPanel("Sync duration distribution",
			"How long whole sync operations took, as the buckets of the crowsnest_sync_duration_seconds histogram per $__rate_interval (increase, each crowsnest replica's copy dropped by the inner max). The dots are exemplars: hover one for the trace_id of a sync in that bucket and open its trace.").
			Height(8).Span(24).
			WithTarget(durationQuery("sum by (le) (max by (cluster, shard, project, env, result, le) (increase(crowsnest_sync_duration_seconds_bucket"+sel+"[$__rate_interval])))", "{{le}}").
				Format(prometheus.PromQueryFormatHeatmap))).
		WithPanel(syncQuantilePanel("0.5", "p50", sel)).
		WithPanel(syncQuantilePanel("0.9", "p90", sel)).
		WithPanel(syncQuantilePanel("0.99", "p99", sel)).
		WithPanel(durationPanel("Wave duration p50 by phase and wave",
			"Median duration of sync waves, per phase (PreSync, Sync, PostSync...) and wave, from crowsnest_sync_wave_duration_seconds.").
			Height(8).Span(12).
			WithTarget(durationQuery("histogram_quantile(0.5, sum by (phase, wave, le) (max by (cluster, shard, project, env, phase, wave, le) (rate(crowsnest_sync_wave_duration_seconds_bucket"+sel+"[$__rate_interval]))))", "{{phase}} wave {{wave}}"))).
		WithPanel(durationPanel("Wave duration p90 by phase and wave",
			"90th percentile duration of sync waves, per phase and wave, from crowsnest_sync_wave_duration_seconds.").
			Height(8).Span(12).
			WithTarget(durationQuery("histogram_quantile(0.9, sum by (phase, wave, le) (max by (cluster, shard, project, env, phase, wave, le) (rate(crowsnest_sync_wave_duration_seconds_bucket"+sel+"[$__rate_interval]))))", "{{phase}} wave {{wave}}"))).
		WithPanel(barGaugePanel("Syncs in range by environment and result",
			"Number of sync operations that finished during the dashboard time range, per environment and result (increase of crowsnest_sync_duration_seconds_count over $__range).", "short").
			Decimals(0).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).Height(7).Span(24).
			WithTarget(instantQuery("sum by (env, result) (max by (cluster, shard, project, env, result) (increase(crowsnest_sync_duration_seconds_count"+sel+"[$__range])))", "{{env}} {{result}}"))).
		WithRow(dashboard.NewRowBuilder("Recent failures and drift")).
		WithPanel(recentFailuresPanel()).
		WithRow(dashboard.NewRowBuilder("Workloads, policies and promotion")).
		WithPanel(barGaugePanel("Replicas not ready by environment",
			"Desired minus ready replicas of the workloads Argo CD deployed, per environment (crowsnest_app_workload_replicas; Kubernetes source only). Above 0: something synced is not serving.", "short").
			Decimals(0).Thresholds(thresholds(base("green"), from(1, "red"))).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
			Height(8).Span(8).
			WithTarget(instantQuery("sum by (env) (max by ("+by("kind", "workload", "state")+") (crowsnest_app_workload_replicas"+fleetSel(`state="desired"`)+")) - sum by (env) (max by ("+by("kind", "workload", "state")+") (crowsnest_app_workload_replicas"+fleetSel(`state="ready"`)+"))", "{{env}}"))).
		WithPanel(barGaugePanel("Policy violations by environment",
			"Applications breaking a GitOps policy of their environment, by environment and policy (crowsnest_app_policy_violation; 0 means all keep it).", "short").
			Decimals(0).Thresholds(thresholds(base("green"), from(1, "red"))).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
			Height(8).Span(8).
			WithTarget(instantQuery("sum by (env, policy) (max by ("+by("policy")+") (crowsnest_app_policy_violation"+sel+"))", "{{env}} {{policy}}"))).
		WithPanel(timeseriesPanel("Promotion lag",
			"How long each environment has trailed the one before it in the promotion order, per group of apps (crowsnest_promotion_lag_seconds). Grows while e.g. prod trails stage; 0 once promoted.", "s").
			Legend(listLegend()).Height(8).Span(8).
			WithTarget(rangeQuery("max by (cluster, group, from, to) (crowsnest_promotion_lag_seconds"+selector()+")", "{{group}} {{from}}→{{to}}"))).
		WithPanel(tablePanel("Workloads not ready",
			"Desired minus ready replicas of each workload of each Application (crowsnest_app_workload_replicas; Kubernetes source only), the most replicas missing first. Click an application to open its dashboard.", promDS).
			Unit("short").Decimals(0).Thresholds(thresholds(base("green"), from(1, "red"))).
			OverrideByName("Not ready", []dashboard.DynamicConfigValue{colorText()}).
			OverrideByName("Application", []dashboard.DynamicConfigValue{links(appDashboardLink("name", true), argoCDAppLink())}).
			SortBy(sortBy("Not ready")).
			WithTransformation(organize([]string{"Time"},
				map[string]string{"Value": "Not ready", "name": "Application", "namespace": "Namespace", "project": "Project", "env": "Environment", "cluster": "Cluster", "dest_cluster": "Destination cluster", "kind": "Kind", "workload": "Workload"},
				[]string{"name", "namespace", "project", "env", "cluster", "dest_cluster", "kind", "workload", "Value"})).
			Height(8).Span(12).
			WithTarget(tableQuery("max by (" + by("kind", "workload") + ") (crowsnest_app_workload_replicas" + fleetSel(`state="desired"`) + ") - max by (" + by("kind", "workload") + ") (crowsnest_app_workload_replicas" + fleetSel(`state="ready"`) + ")"))).
		WithPanel(tablePanel("Policies by application",
			"Each Application and the GitOps policies of its environment: broken or kept (crowsnest_app_policy_violation), broken first. Click an application to open its dashboard.", promDS).
			Unit("none").
			Mappings(valueMappings(valueText{"0", "kept", "green"}, valueText{"1", "broken", "red"})).
			OverrideByName("Policy", []dashboard.DynamicConfigValue{colorText()}).
			OverrideByName("Application", []dashboard.DynamicConfigValue{links(appDashboardLink("name", true), argoCDAppLink())}).
			SortBy(sortBy("Policy")).
			WithTransformation(organize([]string{"Time"},
				map[string]string{"Value": "Policy", "name": "Application", "namespace": "Namespace", "project": "Project", "env": "Environment", "cluster": "Cluster", "dest_cluster": "Destination cluster", "policy": "Rule"},
				[]string{"name", "namespace", "project", "env", "cluster", "dest_cluster", "policy", "Value"})).
			Height(8).Span(12).
			WithTarget(tableQuery("max by (" + by("policy") + ") (crowsnest_app_policy_violation" + sel + ")"))).
		WithRow(dashboard.NewRowBuilder("crowsnest self-health")).
		WithPanel(statPanel("Sources up",
			"Whether each crowsnest event source (Kubernetes watch or replay) is connected: crowsnest_source_up, 1 = up (the lowest of the replicas).", "none").
			Mappings(valueMappings(valueText{"0", "down", "red"}, valueText{"1", "up", "green"})).
			Thresholds(thresholds(base("red"), from(1, "green"))).ColorMode(common.BigValueColorModeBackground).Height(6).Span(4).
			WithTarget(instantQuery("min by (cluster, source) (crowsnest_source_up"+selector()+")", "{{source}} {{cluster}}"))).
		WithPanel(statPanel("Config reload",
			"Whether the last configuration reload succeeded (crowsnest_config_last_reload_successful, 1 = ok; the lowest of the replicas).", "none").
			Mappings(valueMappings(valueText{"0", "failed", "red"}, valueText{"1", "ok", "green"})).
			Thresholds(thresholds(base("red"), from(1, "green"))).ColorMode(common.BigValueColorModeBackground).Height(6).Span(4).
			WithTarget(instantQuery("min by (cluster) (crowsnest_config_last_reload_successful"+selector()+")", "reload {{cluster}}"))).
		WithPanel(statPanel("Time since last event",
			"Seconds since each source delivered its last Application event (time() - crowsnest_source_last_event_timestamp_seconds). Quiet fleets are normal; a large value with no syncs may mean a stuck watch.", "s").
			ColorScheme(fixed("text")).Height(6).Span(4).
			WithTarget(instantQuery("time() - max by (cluster, source) (crowsnest_source_last_event_timestamp_seconds"+selector()+")", "{{source}} {{cluster}}"))).
		WithPanel(timeseriesPanel("Source events",
			"Application events received per second, per source and event type (rate of crowsnest_source_events_total).", "eps").
			Min(0).Height(6).Span(12).
			WithTarget(rangeQuery("sum by (cluster, source, type) (rate(crowsnest_source_events_total"+selector()+"[$__rate_interval]))", "{{source}} {{type}} {{cluster}}"))).
		WithPanel(timeseriesPanel("Spans exported and dropped",
			"Trace spans exported per second (crowsnest_spans_exported_total) and dropped per reason (crowsnest_spans_dropped_total: queue_full, export_failed, rejected). Drops mean missing sync traces.", "ops").
			Min(0).Height(7).Span(12).
			OverrideByRegexp("dropped.*", []dashboard.DynamicConfigValue{prop("color", colorValue("red"))}).
			WithTarget(rangeQuery("sum by (cluster) (rate(crowsnest_spans_exported_total"+selector()+"[$__rate_interval]))", "exported {{cluster}}")).
			WithTarget(rangeQuery("sum by (cluster, reason) (rate(crowsnest_spans_dropped_total"+selector()+"[$__rate_interval]))", "dropped {{reason}} {{cluster}}"))).
		WithPanel(tablePanel("Build",
			"The running crowsnest versions (crowsnest_build_info). Click a revision to open its commit.", promDS).
			Unit("none").
			OverrideByName("revision", []dashboard.DynamicConfigValue{links(link{
				title: "Open crowsnest's commit ${__value.raw}", url: "https://github.com/crowsnest/crowsnest/commit/${__value.raw}", newTab: true,
			})}).
			WithTransformation(organize([]string{"Time", "Value"}, nil, []string{"cluster", "version", "revision", "branch", "goversion"})).
			Height(7).Span(12).
			WithTarget(tableQuery("max by (cluster, version, revision, branch, goversion) (crowsnest_build_info" + selector() + ")")))
}

// syncQuantilePanel is the quantile q (named name) of sync durations per
// environment.
func syncQuantilePanel(q, name, sel string) *timeseries.PanelBuilder {
	return durationPanel("Sync duration "+name+" by environment",
		name+" of the duration of whole sync operations per environment, from the crowsnest_sync_duration_seconds histogram: histogram_quantile("+q+", sum by (env, le) (max by (cluster, shard, project, env, result, le) (rate(...[$__rate_interval])))); the inner max removes the copy of each crowsnest replica (of each shard, when sharded: the sum adds the shards). No data between syncs. The exemplars link to the traces of syncs.").
		Height(8).Span(8).
		WithTarget(durationQuery("histogram_quantile("+q+", sum by (env, le) (max by (cluster, shard, project, env, result, le) (rate(crowsnest_sync_duration_seconds_bucket"+sel+"[$__rate_interval]))))", "{{env}}"))
}

// recentFailuresPanel lists the failed syncs and drift of the selected
// environments and projects from the facts crowsnest pushes to Loki.
func recentFailuresPanel() *table.PanelBuilder {
	return tablePanel("Recent failed syncs and drift",
		"The last 200 failed syncs (sync_finished with result Failed or Error) and drift events (drift_began, drift_ended; they have no result) of the selected environments and projects, newest first: the facts crowsnest pushes to Loki ("+
			"--loki.url; one JSON line per fact, stream labels job, env, project and event). Click an application to open its dashboard, a trace id to open the sync's trace. With another --loki.job, change the job matcher.", lokiDS).
		OverrideByName("app", []dashboard.DynamicConfigValue{rename("Application"), prop("mappings", appNameMappings()), links(appDashboardLink("app", false))}).
		OverrideByName("trace_id", []dashboard.DynamicConfigValue{rename("Trace"), links(traceLink())}).
		OverrideByName("ts", []dashboard.DynamicConfigValue{rename("Time"), prop("unit", "dateTimeAsIso")}).
		OverrideByName("result", []dashboard.DynamicConfigValue{rename("Result"), colorText(),
			prop("mappings", valueMappings(valueText{"Failed", "", "red"}, valueText{"Error", "", "dark-red"}))}).
		OverrideByName("event", []dashboard.DynamicConfigValue{rename("Event"), colorText(),
			prop("mappings", valueMappings(valueText{"sync_finished", "sync failed", "red"}, valueText{"drift_began", "drift began", "orange"}, valueText{"drift_ended", "drift ended", "green"}))}).
		OverrideByName("duration_seconds", []dashboard.DynamicConfigValue{rename("Sync took"), prop("unit", "s"), prop("decimals", 0)}).
		OverrideByName("drift_seconds", []dashboard.DynamicConfigValue{rename("Drifted for"), prop("unit", "s"), prop("decimals", 0)}).
		SortBy(sortBy("Time")).
		Transformations(append(lokiColumns("duration_seconds", "drift_seconds"),
			organize(lokiNoise(),
				map[string]string{"env": "Environment", "project": "Project", "revision": "Revision"},
				[]string{"ts", "app", "env", "project", "event", "result", "revision", "duration_seconds", "drift_seconds", "trace_id"}))).
		Height(9).Span(24).
		WithTarget(logQuery(`{job="crowsnest", env=~"$env", project=~"$project", event=~"sync_finished|drift_began|drift_ended"} | json | result=~"Failed|Error|"`, 200))
}
