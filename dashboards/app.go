package dashboards

//lint:file-ignore SA1019 the SDK deprecates the classic dashboard model for the v2 schema, which only Grafana 12's new dashboard API loads (behind a feature toggle); file and sidecar provisioning on Grafana 10 and 11 take the classic JSON built here

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/tempo"
)

// appFactsQuery selects the facts crowsnest pushed to Loki about the app
// of the namespace and app variables, in the stream of its destination
// cluster (a stream label; =~ so that "" matches the streams of a crowsnest
// that had none): the line's app is namespace/name.
const appFactsQuery = `{job="crowsnest", env=~"$env", project=~"$project", dest_cluster=~"$dest_cluster"} | json | app="$namespace/$app"`

// appDashboard shows one Application: state, operations, failures and
// drift, its sync traces and facts, workloads and policies.
func appDashboard() *dashboard.DashboardBuilder {
	sel := appSel()
	argo := links(argoCDSelectedAppLink())
	return newDashboard(uidApp, "crowsnest / Application",
		"One Argo CD Application, picked by installation (cluster), name and namespace, through crowsnest: state, operation timeline, sync and wave durations, failures, drift, conditions, its sync traces (Tempo) and the facts crowsnest pushed to Loki, linked to Argo CD, to the traces and to the commits.", clusterVariable(false)).
		Time("now-24h", "now").Refresh("30s").
		WithVariable(queryVariable("app", "Application", `label_values(crowsnest_app_info`+fleetSel()+`, name)`, "").Multi(false).IncludeAll(false)).
		WithVariable(queryVariable("namespace", "Namespace", `label_values(crowsnest_app_info`+fleetSel(`name="$app"`)+`, namespace)`,
			"The Application's namespace: Argo CD's apps in any namespace may have two apps of one name.").Multi(false).IncludeAll(false)).
		WithVariable(hiddenVariable("dest_cluster", `label_values(crowsnest_app_info`+sel+`, dest_cluster)`,
			"The cluster the Application deploys to, for its Loki stream.")).
		Link(dashboardLink("Fleet", "/d/"+uidFleet+"/"+uidFleet+"?${cluster:queryparam}", "crowsnest fleet overview", false)).
		Link(dashboardLink("DORA", "/d/"+uidDORA+"/"+uidDORA+"?${cluster:queryparam}&${env:queryparam}&${project:queryparam}", "DORA's four keys of the selected environments and projects", false)).
		Link(dashboardLink("Argo CD", "${argocd_url}/applications/${namespace}/${app}", "The Application in the Argo CD UI (crowsnest's --argocd.url)", true)).
		Annotation(deploymentAnnotation(sel)).
		Annotation(syncAnnotation(sel)).
		WithRow(dashboard.NewRowBuilder("State")).
		WithPanel(colored(stateStat("Sync status", "The Application's current Argo CD sync status (the crowsnest_app_sync_status series that is 1)."),
			syncColors()).
			WithTarget(instantQuery("max by (cluster, status) (crowsnest_app_sync_status"+sel+") == 1", "{{status}}"))).
		WithPanel(colored(stateStat("Health", "The Application's current Argo CD health status (the crowsnest_app_health_status series that is 1)."),
			healthColors()).
			WithTarget(instantQuery("max by (cluster, status) (crowsnest_app_health_status"+sel+") == 1", "{{status}}"))).
		WithPanel(colored(stateStat("Last operation", "Phase of the Application's current or last sync operation (the crowsnest_app_operation_phase series that is 1)."),
			phaseColors()).
			WithTarget(instantQuery("max by (cluster, phase) (crowsnest_app_operation_phase"+sel+") == 1", "{{phase}}"))).
		WithPanel(statPanel("Last sync duration", "How long the Application's last finished sync operation took (crowsnest_app_last_sync_duration_seconds).", "s").
			ColorScheme(fixed("text")).Height(4).Span(4).
			WithTarget(instantQuery("max by (cluster) (crowsnest_app_last_sync_duration_seconds"+sel+")", "duration"))).
		WithPanel(statPanel("Last successful sync", "When the Application last synced successfully (crowsnest_app_last_successful_sync_timestamp_seconds).", "dateTimeFromNow").
			ColorScheme(fixed("text")).Height(4).Span(4).
			WithTarget(instantQuery("max by (cluster) (crowsnest_app_last_successful_sync_timestamp_seconds"+sel+") * 1000", "last success"))).
		WithPanel(statPanel("Drifting for", "How long the Application has been OutOfSync (time() - crowsnest_app_drift_since_timestamp_seconds). Shows 'in sync' when the series is absent.", "s").
			NoValue("in sync").Thresholds(thresholds(base("orange"), from(3600, "red"))).ColorMode(common.BigValueColorModeBackground).Height(4).Span(4).
			WithTarget(instantQuery("time() - min by ("+appKey+") (crowsnest_app_drift_since_timestamp_seconds"+sel+")", "drift"))).
		WithPanel(tablePanel("Application",
			"Source and destination of the Application and its sync policy (labels of crowsnest_app_info). Click the name to open the Application in Argo CD, the repository to open it.", promDS).
			Unit("none").
			OverrideByName("name", []dashboard.DynamicConfigValue{links(argoCDAppLink())}).
			OverrideByName("repo", []dashboard.DynamicConfigValue{prop("mappings", repoWebMappings()),
				links(link{title: "Open the repository", url: "${__value.text}", newTab: true})}).
			WithTransformation(organize([]string{"Time", "Value"}, nil,
				[]string{"name", "namespace", "project", "env", "cluster", "dest_cluster", "repo", "path", "target_revision", "dest_server", "dest_namespace", "autosync", "self_heal", "prune"})).
			Height(4).Span(24).
			WithTarget(tableQuery("max by (" + by("repo", "path", "target_revision", "dest_server", "dest_namespace", "autosync", "self_heal", "prune") + ") (crowsnest_app_info" + sel + ")"))).
		WithRow(dashboard.NewRowBuilder("Operations")).
		WithPanel(stateRows(stateTimelinePanel("Operation timeline",
			"When the Application had a sync operation in each phase (crowsnest_app_operation_phase): Pending (asked for, no controller started it), Running, then Succeeded, Failed, Error or Terminated (a person's terminate-op; a sync the controller's sync timeout ended is Failed)."),
			"", phaseColors()).
			Height(6).Span(24).
			WithTarget(rangeQuery("max by (cluster, phase) (crowsnest_app_operation_phase"+sel+")", "{{phase}}"))).
		WithPanel(stateRows(stateRows(stateTimelinePanel("Sync and health timeline",
			"The Application's sync status (crowsnest_app_sync_status) and health status (crowsnest_app_health_status) over time: one row per status, filled while the status holds."),
			"sync ", syncColors()), "health ", healthColors()).
			Height(8).Span(24).
			WithTarget(rangeQuery("max by (cluster, status) (crowsnest_app_sync_status"+sel+")", "sync {{status}}")).
			WithTarget(rangeQuery("max by (cluster, status) (crowsnest_app_health_status"+sel+")", "health {{status}}"))).
		WithPanel(timeseriesPanel("Syncs by result",
			"Sync operations of the Application that finished, per result, per $__rate_interval (increase of crowsnest_app_syncs_total).", "short").
			Min(0).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal).Group("A")).
			OverrideByName("Succeeded", []dashboard.DynamicConfigValue{prop("color", colorValue("green"))}).
			OverrideByName("Failed", []dashboard.DynamicConfigValue{prop("color", colorValue("red"))}).
			OverrideByName("Error", []dashboard.DynamicConfigValue{prop("color", colorValue("dark-red"))}).
			Height(8).Span(12).
			WithTarget(rangeQuery("sum by (result) (max by ("+by("result")+") (increase(crowsnest_app_syncs_total"+sel+"[$__rate_interval])))", "{{result}}"))).
		WithPanel(barGaugePanel("Last sync: duration per wave",
			"How long each phase and wave of the Application's last finished sync took (crowsnest_app_last_sync_wave_duration_seconds by phase, wave).", "s").
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdContinuousGrYlRd)).Height(8).Span(12).
			WithTarget(instantQuery("max by (cluster, phase, wave) (crowsnest_app_last_sync_wave_duration_seconds"+sel+")", "{{phase}} wave {{wave}}"))).
		WithPanel(timeseriesPanel("Last sync duration over time",
			"crowsnest_app_last_sync_duration_seconds over time: a step each time a sync finishes.", "s").
			Min(0).LineInterpolation(common.LineInterpolationStepAfter).Height(6).Span(24).
			WithTarget(rangeQuery("max by (cluster) (crowsnest_app_last_sync_duration_seconds"+sel+")", "last sync"))).
		WithRow(dashboard.NewRowBuilder("Failures and drift")).
		WithPanel(statPanel("Failed syncs in range",
			"Sync operations of the Application that ended Failed or Error during the dashboard time range (increase of crowsnest_app_syncs_total over $__range).", "short").
			Decimals(0).Thresholds(thresholds(base("green"), from(1, "red"))).ColorMode(common.BigValueColorModeBackground).Height(6).Span(6).
			WithTarget(instantQuery("sum(max by ("+by("result")+") (increase(crowsnest_app_syncs_total"+appSel(`result=~"Failed|Error"`)+"[$__range])))", "failed"))).
		WithPanel(tablePanel("Last failure",
			`When the Application's last sync finished, if it ended Failed or Error (crowsnest_app_last_sync_finished_timestamp_seconds{result=~"Failed|Error"}). Empty when the last sync succeeded. Click it to open the Application in Argo CD.`, promDS).
			Unit("dateTimeAsIso").
			OverrideByName("Finished", []dashboard.DynamicConfigValue{argo}).
			WithTransformation(organize([]string{"Time"}, map[string]string{"Value": "Finished", "result": "Result"}, []string{"result", "Value"})).
			Height(6).Span(6).
			WithTarget(tableQuery("max by (cluster, result) (crowsnest_app_last_sync_finished_timestamp_seconds" + appSel(`result=~"Failed|Error"`) + ") * 1000"))).
		WithPanel(tablePanel("Drifted kinds",
			"Resources of the Application that are OutOfSync, per API group and kind (crowsnest_app_out_of_sync_resources). Empty when in sync. Click a kind to see the diff in Argo CD.", promDS).
			Unit("short").
			OverrideByName("Kind", []dashboard.DynamicConfigValue{argo}).
			WithTransformation(organize([]string{"Time"}, map[string]string{"Value": "Resources", "group": "Group", "kind": "Kind"}, []string{"group", "kind", "Value"})).
			Height(6).Span(6).
			WithTarget(tableQuery("sum by (group, kind) (max by (" + by("group", "kind") + ") (crowsnest_app_out_of_sync_resources" + sel + ")) > 0"))).
		WithPanel(tablePanel("Conditions",
			"Argo CD conditions currently on the Application, per type (crowsnest_app_conditions), e.g. SyncError or ComparisonError. Empty when there are none. Click a type to read the message in Argo CD.", promDS).
			Unit("short").
			OverrideByName("Type", []dashboard.DynamicConfigValue{argo}).
			WithTransformation(organize([]string{"Time"}, map[string]string{"Value": "Count", "type": "Type"}, []string{"type", "Value"})).
			Height(6).Span(6).
			WithTarget(tableQuery("sum by (type) (max by (" + by("type") + ") (crowsnest_app_conditions" + sel + ")) > 0"))).
		WithRow(dashboard.NewRowBuilder("Traces and facts")).
		WithPanel(tablePanel("Sync traces",
			"The Application's sync operations as traces in Tempo. The root span of each trace is 'sync <namespace>/<name>' and carries argocd.app, argocd.app.namespace, argocd.app.name, argocd.app.project, deployment.environment.name, argocd.app.destination.cluster and argocd.sync.result. Click a trace ID to open it.", tempoDS).
			Height(8).Span(24).
			WithTarget(tempo.NewDataqueryBuilder().Datasource(ds(tempoDS)).QueryType("traceql").Limit(50).TableType(tempo.SearchTableTypeTraces).
				Query(`{ resource.service.name = "crowsnest" && span.argocd.app.namespace = "$namespace" && span.argocd.app.name = "$app" }`))).
		WithPanel(tablePanel("Recent facts",
			"The last 500 facts crowsnest pushed to Loki about the Application, newest first (--loki.url; one JSON line per fact: "+
				"sync_requested, sync_started, phase_entered, wave_entered, sync_finished, dry_run_finished, drift_began, drift_ended, health_changed, "+
				"workload_degraded, workload_recovered, hydration_finished, deployment_finished, deployment_healthy, change_failed, deployment_recovered). "+
				"Click a trace id to open the sync's trace, a commit to open it in its repository (deployment_finished, with --argocd.server). With another --loki.job, change the job matcher.", lokiDS).
			OverrideByName("ts", []dashboard.DynamicConfigValue{rename("Time"), prop("unit", "dateTimeAsIso")}).
			OverrideByName("trace_id", []dashboard.DynamicConfigValue{rename("Trace"), links(traceLink())}).
			OverrideByName("commit_sha", []dashboard.DynamicConfigValue{rename("Commit"), links(commitLink("commit_repo"))}).
			OverrideByName("commit_repo", []dashboard.DynamicConfigValue{hidden(), prop("mappings", commitBaseMappings())}).
			OverrideByName("result", []dashboard.DynamicConfigValue{rename("Result"), colorText(), prop("mappings", resultColors())}).
			OverrideByName("duration_seconds", []dashboard.DynamicConfigValue{rename("Took"), prop("unit", "s"), prop("decimals", 0)}).
			SortBy(sortBy("Time")).
			Transformations(append(lokiColumns("duration_seconds"),
				organize(append(lokiNoise(), "app", "env", "project", "dest_cluster", "dest_cluster_extracted", "previous_revision", "commit_time", "commit_referenced", "lead_time_seconds",
					"after_finish_seconds", "recovery_seconds", "drift_seconds", "attempt", "dry_run", "truncated"),
					map[string]string{"event": "Event", "revision": "Revision", "phase": "Phase", "wave": "Wave", "from": "From", "to": "To",
						"reason": "Reason", "message": "Message", "initiator": "Initiator", "author": "Author", "commit_subject": "Subject"},
					[]string{"ts", "event", "result", "revision", "phase", "wave", "from", "to", "reason", "duration_seconds", "initiator", "author", "commit_sha", "commit_subject", "message", "trace_id"}))).
			Height(10).Span(24).
			WithTarget(logQuery(appFactsQuery, 500))).
		WithPanel(logsPanel("Fact log",
			"The same facts as raw JSON lines; expand one for its fields. A trace id links to its trace when the Loki datasource has the derived field of dashboards/README.md.").
			Height(10).Span(24).
			WithTarget(logQuery(appFactsQuery, 500))).
		WithRow(dashboard.NewRowBuilder("Workloads and policies")).
		WithPanel(tablePanel("Workload replicas",
			"Replicas of the Application's Deployments, StatefulSets, DaemonSets and Rollouts by state (crowsnest_app_workload_replicas; Kubernetes source only). Ready below desired means the app is not fully serving, whatever Argo CD's health says. Click a workload to open the Application in Argo CD.", promDS).
			Unit("short").
			OverrideByName("Workload", []dashboard.DynamicConfigValue{argo}).
			WithTransformation(organize([]string{"Time"}, map[string]string{"Value": "Replicas", "kind": "Kind", "workload": "Workload", "state": "State"}, []string{"kind", "workload", "state", "Value"})).
			Height(8).Span(12).
			WithTarget(tableQuery("sum by (kind, workload, state) (max by (" + by("kind", "workload", "state") + ") (crowsnest_app_workload_replicas" + sel + "))"))).
		WithPanel(tablePanel("Jobs",
			"The Application's Jobs seen in the time range, PreSync/PostSync hooks included, with every status each had: Running, Complete, Failed (crowsnest_app_workload_job_status). Hooks are often deleted soon after they ran (Argo CD's delete policies, and a retry re-creates them), so this looks back over the range.", promDS).
			Unit("short").
			OverrideByName("Job", []dashboard.DynamicConfigValue{argo}).
			WithTransformation(organize([]string{"Time", "Value"}, map[string]string{"workload": "Job", "status": "Status"}, []string{"workload", "status"})).
			Height(8).Span(6).
			WithTarget(tableQuery("max by (cluster, workload, status) (max_over_time(crowsnest_app_workload_job_status" + sel + "[$__range])) == 1"))).
		WithPanel(tablePanel("Policies",
			"The GitOps policies of the Application's environment and whether it breaks them (crowsnest_app_policy_violation). Click a policy to open the Application in Argo CD.", promDS).
			Unit("none").
			Mappings(valueMappings(valueText{"0", "kept", "green"}, valueText{"1", "broken", "red"})).
			OverrideByName("State", []dashboard.DynamicConfigValue{colorText()}).
			OverrideByName("Policy", []dashboard.DynamicConfigValue{argo}).
			WithTransformation(organize([]string{"Time"}, map[string]string{"Value": "State", "policy": "Policy"}, []string{"policy", "Value"})).
			Height(8).Span(6).
			WithTarget(tableQuery("max by (cluster, policy) (crowsnest_app_policy_violation" + sel + ")"))).
		WithPanel(timeseriesPanel("Rollouts in progress",
			"1 while a new version of a workload is rolling out (crowsnest_app_workload_rollout_in_progress).", "short").
			Legend(listLegend()).Height(7).Span(24).
			WithTarget(rangeQuery("max by (cluster, kind, workload) (crowsnest_app_workload_rollout_in_progress"+sel+")", "{{kind}} {{workload}}")))
}

// stateStat shows the name of the state-set series that is 1, coloured
// by state.
func stateStat(title, description string) *stat.PanelBuilder {
	return statPanel(title, description, "none").ColorScheme(fixed("gray")).ColorMode(common.BigValueColorModeBackground).
		TextMode(common.BigValueTextModeName).Height(4).Span(4)
}

// resultColors colour the results of facts: operations (Succeeded,
// Failed...) and deployments (succeeded, failed, rolled_back).
func resultColors() []dashboard.ValueMapping {
	return valueMappings(
		valueText{"Succeeded", "", "green"}, valueText{"Failed", "", "red"}, valueText{"Error", "", "dark-red"},
		valueText{"Terminated", "", "orange"}, valueText{"succeeded", "", "green"}, valueText{"failed", "", "red"},
		valueText{"rolled_back", "", "orange"}, valueText{"Hydrated", "", "green"})
}
