package dashboards

//lint:file-ignore SA1019 the SDK deprecates the classic dashboard model for the v2 schema, which only Grafana 12's new dashboard API loads (behind a feature toggle); file and sidecar provisioning on Grafana 10 and 11 take the classic JSON built here

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The descriptions of DORA's four keys, shared by their stat and their
// time series, with the bands of DORA's 2023 report.
const (
	doraBandsIntro = "Colours: the performance clusters of DORA's 2023 Accelerate State of DevOps report"
	frequencyBands = doraBandsIntro + ". Elite: on demand, several deployments a day (dark green from 1 a day); high: between once a day and once a week (green); medium: between once a week and once a month (yellow); low: less than once a month (red; the report's low cluster deploys about as often as its medium one and differs from it in stability). DORA measures production: pick env prod."
	leadTimeText   = `DORA's change lead time: from the commit's author date (with Argocd-reference-commit-* trailers, the code commit's; the change CI named in the crowsnest.io/change-commit or change-time annotation; for new source settings or a chart version, when Argo CD first compared the app with them) to the end of the deployment that shipped it, p50 and p90 over the last 7 days (crowsnest:change_lead_time_seconds:p50_7d and :p90_7d, from the crowsnest_change_lead_time_seconds histogram, until="deployed"). Needs crowsnest's --argocd.server: without commit metadata there is no lead time. Failed deployments have none. `
	leadTimeBands  = doraBandsIntro + ". Elite: under a day (dark green); high: a day to a week (green); medium: a week to a month (yellow); low: a month or more (red)."
	failureText    = "DORA's change failure rate: the share of the last 7 days' deployments that were failed changes: the sync failed, the app turned Degraded within --deployments.failure-window (default 1 h) after it, or a rollback undid it (crowsnest:change_failure_rate:ratio_7d; 0 without failures, nothing without deployments). "
	failureBands   = doraBandsIntro + ", whose typical rates were 5%, 10%, 15% and 64%. Elite: below 5% (dark green); high: 5% to 10% (green); medium: 10% to 15% (yellow); low: 15% and more (red). CrowsnestChangeFailureRateHigh warns above 30% in prod with at least 5 deployments in the 7 days."
	recoveryText   = "DORA's failed deployment recovery time: the median over the last 7 days of the time from a failed change's onset (the failed sync's end, the app turning Degraded, the end of the deployment rolled back) to the app well again (Healthy, or Suspended when that is how it is well) after a successful sync (crowsnest:deployment_recovery_seconds:p50_7d). "
	recoveryBands  = doraBandsIntro + ". Elite: under an hour (dark green); high: under a day (green); medium: a day to a week (yellow); low: a week or more (red)."
	eachPoint      = "Each point covers the 7 days before it. "
)

// The DORA bands as thresholds, worst or best first as the key grows
// better or worse with its value.
func frequencySteps() []step {
	return []step{base("red"), from(1.0/30, "yellow"), from(1.0/7, "green"), from(1, "dark-green")}
}

func leadTimeSteps() []step {
	return []step{base("dark-green"), from(86400, "green"), from(604800, "yellow"), from(2592000, "red")}
}

func failureSteps() []step {
	return []step{base("dark-green"), from(0.05, "green"), from(0.1, "yellow"), from(0.15, "red")}
}

func recoverySteps() []step {
	return []step{base("dark-green"), from(3600, "green"), from(86400, "yellow"), from(604800, "red")}
}

// doraDashboard shows DORA's four keys from crowsnest's recording rules,
// the recent prod deployments from Loki and the running syncs.
func doraDashboard() *dashboard.DashboardBuilder {
	sel := fleetSel()
	return newDashboard(uidDORA, "crowsnest / DORA",
		"DORA's four keys per env and project from crowsnest's recording rules (deployment frequency, change lead time, change failure rate, failed deployment recovery time) with the 2023 report's performance bands, the distributions of lead and recovery times with exemplars linking to traces, the recent prod deployments with their traces and commits, and the progress of running syncs.", clusterVariable(true)).
		Time("now-7d", "now").Refresh("1m").
		Link(otherDashboards()).
		Annotation(deploymentAnnotation(sel)).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("Failed changes").Datasource(ds(lokiDS)).Enable(true).Hide(false).
			IconColor("red").
			Expr(`{job="crowsnest", event="change_failed", env=~"$env", project=~"$project"} | json`).
			TitleFormat("{{app}}: failed change ({{reason}})").TextFormat("revision {{revision}}, trace {{trace_id}}").
			TagKeys("env,project,reason")).
		WithRow(dashboard.NewRowBuilder("The four keys (last 7 days)")).
		WithPanel(doraStat("Deployment frequency", "DORA's deployment frequency: deployments per day of each project in each env, averaged over the last 7 days (crowsnest:deployments:increase7d / 7). A deployment is a sync that changed the revisions the app runs, succeeded or failed; rollbacks, self-heal, re-syncs of the same revisions, dry runs and terminated syncs are none. "+frequencyBands,
			"suffix:/day", frequencySteps()).
			WithTarget(instantQuery("crowsnest:deployments:increase7d"+sel+" / 7", "{{env}} / {{project}}"))).
		WithPanel(doraStat("Change lead time", leadTimeText+leadTimeBands, "s", leadTimeSteps()).Decimals(1).
			WithTarget(instantQuery("crowsnest:change_lead_time_seconds:p50_7d"+sel, "p50 {{env}} / {{project}}")).
			WithTarget(instantQuery("crowsnest:change_lead_time_seconds:p90_7d"+sel, "p90 {{env}} / {{project}}"))).
		WithPanel(doraStat("Change failure rate", failureText+failureBands, "percentunit", failureSteps()).Decimals(1).
			WithTarget(instantQuery("crowsnest:change_failure_rate:ratio_7d"+sel, "{{env}} / {{project}}"))).
		WithPanel(doraStat("Failed deployment recovery time", recoveryText+recoveryBands, "s", recoverySteps()).Decimals(1).
			WithTarget(instantQuery("crowsnest:deployment_recovery_seconds:p50_7d"+sel, "{{env}} / {{project}}"))).
		WithRow(dashboard.NewRowBuilder("The four keys over time")).
		WithPanel(doraSeries("Deployments per day", "Deployments (succeeded and failed) in the 24 hours before each point, per env and project (crowsnest:deployments:increase1d). "+frequencyBands,
			"short", frequencySteps()).Decimals(0).
			WithTarget(rangeQuery("crowsnest:deployments:increase1d"+sel, "{{env}} / {{project}}"))).
		WithPanel(doraSeries("Change lead time p50 and p90", leadTimeText+eachPoint+leadTimeBands, "s", leadTimeSteps()).
			WithTarget(rangeQuery("crowsnest:change_lead_time_seconds:p50_7d"+sel, "p50 {{env}} / {{project}}")).
			WithTarget(rangeQuery("crowsnest:change_lead_time_seconds:p90_7d"+sel, "p90 {{env}} / {{project}}"))).
		WithPanel(doraSeries("Change failure rate over 7 days", failureText+eachPoint+failureBands, "percentunit", failureSteps()).Max(1).
			WithTarget(rangeQuery("crowsnest:change_failure_rate:ratio_7d"+sel, "{{env}} / {{project}}"))).
		WithPanel(doraSeries("Failed deployment recovery time p50", recoveryText+eachPoint+recoveryBands, "s", recoverySteps()).
			WithTarget(rangeQuery("crowsnest:deployment_recovery_seconds:p50_7d"+sel, "{{env}} / {{project}}"))).
		WithRow(dashboard.NewRowBuilder("Lead and recovery times, with exemplars")).
		WithPanel(heatmapPanel("Change lead time distribution",
			`Lead times of the deployments that finished, as the buckets of the crowsnest_change_lead_time_seconds histogram (until="deployed") per $__rate_interval (increase, each crowsnest replica's copy dropped by the inner max). The dots are exemplars: hover one for the trace_id of a deployment in that bucket and open its trace. Needs crowsnest's --argocd.server.`).
			Height(8).Span(12).
			WithTarget(durationQuery("sum by (le) (max by (cluster, shard, project, env, until, le) (increase(crowsnest_change_lead_time_seconds_bucket"+fleetSel(`until="deployed"`)+"[$__rate_interval])))", "{{le}}").
				Format(prometheus.PromQueryFormatHeatmap))).
		WithPanel(heatmapPanel("Failed deployment recovery time distribution",
			"Recovery times of failed changes, as the buckets of the crowsnest_deployment_recovery_seconds histogram per $__rate_interval (increase, each crowsnest replica's copy dropped by the inner max). The dots are exemplars: hover one for the trace_id of the deployment that recovered and open its trace.").
			Height(8).Span(12).
			WithTarget(durationQuery("sum by (le) (max by (cluster, shard, project, env, le) (increase(crowsnest_deployment_recovery_seconds_bucket"+sel+"[$__rate_interval])))", "{{le}}").
				Format(prometheus.PromQueryFormatHeatmap))).
		WithRow(dashboard.NewRowBuilder("Lead time by stage")).
		WithPanel(barGaugePanel("Lead time by stage, p50 and p90 in range",
			`Change lead time of each environment's deployments during the dashboard's time range: for a change that reaches dev, stage and prod, how long from its commit (or the change CI named, or the new source settings) each environment took to deploy it (p50 and p90 of the crowsnest_change_lead_time_seconds histogram, until="deployed", over $__range, each crowsnest replica's copy dropped by the inner max). Needs crowsnest's --argocd.server for commits.`, "s").
			Thresholds(thresholds(leadTimeSteps()...)).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).Height(7).Span(12).
			WithTarget(instantQuery("histogram_quantile(0.5, sum by (env, le) (max by (cluster, shard, project, env, until, le) (increase(crowsnest_change_lead_time_seconds_bucket"+fleetSel(`until="deployed"`)+"[$__range]))))", "p50 {{env}}")).
			WithTarget(instantQuery("histogram_quantile(0.9, sum by (env, le) (max by (cluster, shard, project, env, until, le) (increase(crowsnest_change_lead_time_seconds_bucket"+fleetSel(`until="deployed"`)+"[$__range]))))", "p90 {{env}}"))).
		WithPanel(barGaugePanel("Release wait for approval, p50 and p90 in range",
			"How long releases waited for the sync a person started, per environment, during the dashboard's time range: from the onset of \"awaiting sync\" (a merge or a changed source moved the app's target; crowsnest_app_awaiting_sync_since_timestamp_seconds) to the start of the sync that deployed it — prod's wait for approval (p50 and p90 of the crowsnest_release_wait_seconds histogram over $__range). Auto-synced environments wait for no one and have none.", "s").
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).Height(7).Span(12).
			WithTarget(instantQuery("histogram_quantile(0.5, sum by (env, le) (max by (cluster, shard, project, env, le) (increase(crowsnest_release_wait_seconds_bucket"+sel+"[$__range]))))", "p50 {{env}}")).
			WithTarget(instantQuery("histogram_quantile(0.9, sum by (env, le) (max by (cluster, shard, project, env, le) (increase(crowsnest_release_wait_seconds_bucket"+sel+"[$__range]))))", "p90 {{env}}"))).
		WithRow(dashboard.NewRowBuilder("Deployments")).
		WithPanel(prodDeploymentsPanel()).
		WithPanel(barGaugePanel("Deployments in range by result",
			"Deployments that finished during the dashboard's time range per env and result: succeeded, failed, rolled_back (increase of crowsnest_app_deployments_total over $__range, each app counted once whatever the number of crowsnest replicas).", "short").
			Decimals(0).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).Height(7).Span(12).
			WithTarget(instantQuery("sum by (env, result) (max by ("+by("result")+") (increase(crowsnest_app_deployments_total"+sel+"[$__range])))", "{{env}} {{result}}"))).
		WithPanel(barGaugePanel("Failed changes in range by reason",
			"Deployments counted as failed changes during the dashboard's time range per env and reason: sync_failed, degraded (Degraded within the failure window), rolled_back (increase of crowsnest_app_change_failures_total over $__range).", "short").
			Decimals(0).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).Height(7).Span(12).
			WithTarget(instantQuery("sum by (env, reason) (max by ("+by("reason")+") (increase(crowsnest_app_change_failures_total"+sel+"[$__range])))", "{{env}} {{reason}}"))).
		WithRow(dashboard.NewRowBuilder("ApplicationSet rollouts")).
		WithPanel(barGaugePanel("Rollouts: current step",
			"The step each ApplicationSet's RollingSync is in now: the lowest step with an app not Healthy, 0 once the rollout is complete (crowsnest_applicationset_rollout_step). Apps waiting for their step are in crowsnest_applicationset_rollout_apps{status=\"Waiting\"}. Empty without ApplicationSets that roll out step by step (Kubernetes source).", "none").
			Decimals(0).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).Height(7).Span(8).
			WithTarget(instantQuery("max by (cluster, namespace, applicationset) (crowsnest_applicationset_rollout_step"+selector()+")", "{{applicationset}}")).
			WithTarget(instantQuery("sum by (cluster, namespace, applicationset) (max by (cluster, namespace, applicationset, step) (crowsnest_applicationset_rollout_apps"+selector(`status="Waiting"`)+"))", "{{applicationset}} apps waiting"))).
		WithPanel(barGaugePanel("Rollout steps: wait and duration, p90 in range",
			"How long the apps of each RollingSync step waited for it (first Waiting to first Pending: the steps before it, Argo CD's refresh grace period) and how long the step ran (first Pending to last Healthy), p90 over the dashboard's time range (crowsnest_applicationset_rollout_step_wait_seconds and _step_duration_seconds). A step whose apps needed no sync is not timed.", "s").
			ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).Height(7).Span(16).
			WithTarget(instantQuery("histogram_quantile(0.9, sum by (applicationset, step, le) (max by (cluster, namespace, applicationset, step, le) (increase(crowsnest_applicationset_rollout_step_wait_seconds_bucket"+selector()+"[$__range]))))", "{{applicationset}} step {{step}} wait")).
			WithTarget(instantQuery("histogram_quantile(0.9, sum by (applicationset, step, le) (max by (cluster, namespace, applicationset, step, le) (increase(crowsnest_applicationset_rollout_step_duration_seconds_bucket"+selector()+"[$__range]))))", "{{applicationset}} step {{step}} ran"))).
		WithRow(dashboard.NewRowBuilder("Running syncs")).
		WithPanel(tablePanel("Running syncs: wave and ETA",
			"Sync operations running now: the phase and wave each is in (crowsnest_app_sync_current_wave), how many waves it is expected to run after the current one (crowsnest_app_sync_remaining_waves) and the expected time left (crowsnest_app_sync_expected_finish_timestamp_seconds - time(); negative: later than predicted). The prediction takes each wave left as the median of its durations in the app's last 5 successful syncs crowsnest watched whole; an app without such a sync has a wave but no prediction. Empty when no sync runs. Click an application to open its dashboard.", promDS).
			Unit("none").
			OverrideByName("Time left", []dashboard.DynamicConfigValue{prop("unit", "s"), prop("decimals", 0), colorText(),
				prop("thresholds", thresholdsValue(base("red"), from(0, "text")))}).
			OverrideByName("Application", []dashboard.DynamicConfigValue{links(appDashboardLink("name", true), argoCDAppLink())}).
			SortBy(sortBy("Time left")).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(organize([]string{"Time"},
				map[string]string{"name": "Application", "namespace": "Namespace", "project": "Project", "env": "Environment", "cluster": "Cluster", "dest_cluster": "Destination cluster", "phase": "Phase",
					"Value #A": "Current wave", "Value #B": "Waves left", "Value #C": "Time left"},
				[]string{"name", "namespace", "project", "env", "cluster", "dest_cluster", "phase", "Value #A", "Value #B", "Value #C"})).
			Height(8).Span(12).
			WithTarget(tableQuery("max by (" + by("phase") + ") (crowsnest_app_sync_current_wave" + sel + ")")).
			WithTarget(tableQuery("max by (" + appKey + ") (crowsnest_app_sync_remaining_waves" + sel + ")")).
			WithTarget(tableQuery("max by (" + appKey + ") (crowsnest_app_sync_expected_finish_timestamp_seconds" + sel + ") - time()"))).
		WithPanel(timeseriesPanel("Running syncs: time left",
			"Expected time left of each running sync (crowsnest_app_sync_expected_finish_timestamp_seconds - time()): a line falls towards 0 as the sync runs and ends with it; below 0 the sync is later than predicted. Only apps with a successful sync crowsnest watched whole have a prediction.", "s").
			DrawStyle(common.GraphDrawStyleLine).LineWidth(2).FillOpacity(0).ShowPoints(common.VisibilityModeNever).
			SpanNulls(common.BoolOrFloat64{Bool: ptr(true)}).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).
			Height(8).Span(12).
			WithTarget(rangeQuery("max by ("+appKey+") (crowsnest_app_sync_expected_finish_timestamp_seconds"+sel+") - time()", "{{namespace}}/{{name}}")))
}

// doraStat shows a key's latest value per env and project, coloured by
// DORA's bands.
func doraStat(title, description, unit string, steps []step) *stat.PanelBuilder {
	return statPanel(title, description, unit).Thresholds(thresholds(steps...)).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		ColorMode(common.BigValueColorModeBackground).TextMode(common.BigValueTextModeValueAndName).Height(6).Span(6)
}

// doraSeries shows a key over time per env and project, DORA's bands
// shaded behind.
func doraSeries(title, description, unit string, steps []step) *timeseries.PanelBuilder {
	return timeseriesPanel(title, description, unit).Min(0).Thresholds(thresholds(steps...)).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashedAndArea)).
		DrawStyle(common.GraphDrawStyleLine).LineWidth(2).FillOpacity(0).ShowPoints(common.VisibilityModeNever).
		SpanNulls(common.BoolOrFloat64{Bool: ptr(true)}).ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassic)).
		Height(8).Span(12)
}

// prodDeploymentsPanel lists the recent deployments to prod from the
// deployment_finished facts crowsnest pushes to Loki, each linked to its
// application, trace and commit.
func prodDeploymentsPanel() *table.PanelBuilder {
	return tablePanel("Recent prod deployments",
		"The last 100 deployments to prod of the selected projects, newest first: crowsnest's deployment_finished facts in Loki "+
			`({job="crowsnest", event="deployment_finished", env="prod"} | json; one JSON line per deployment, pushed with --loki.url). `+
			"Click an application to open its dashboard, a trace id to open the deployment's sync trace, a commit to open it in its repository "+
			"(the repository's web URL + /commit/<sha>, as GitHub, GitLab, Gitea and Azure DevOps serve it; /commits/<sha> on Bitbucket). "+
			"Author, commit and lead time need --argocd.server. With another --loki.job, change the job matcher.", lokiDS).
		OverrideByName("app", []dashboard.DynamicConfigValue{rename("Application"), prop("mappings", appNameMappings()), links(appDashboardLink("app", false))}).
		OverrideByName("trace_id", []dashboard.DynamicConfigValue{rename("Trace"), links(traceLink())}).
		OverrideByName("commit_sha", []dashboard.DynamicConfigValue{rename("Commit"), links(commitLink("commit_repo"))}).
		OverrideByName("commit_repo", []dashboard.DynamicConfigValue{hidden(), prop("mappings", commitBaseMappings())}).
		OverrideByName("env", []dashboard.DynamicConfigValue{hidden()}).
		OverrideByName("lead_time_seconds", []dashboard.DynamicConfigValue{rename("Lead time"), prop("unit", "s"), prop("decimals", 0)}).
		OverrideByName("ts", []dashboard.DynamicConfigValue{rename("Finished"), prop("unit", "dateTimeAsIso")}).
		OverrideByName("result", []dashboard.DynamicConfigValue{rename("Result"), colorText(),
			prop("mappings", valueMappings(valueText{"succeeded", "", "green"}, valueText{"failed", "", "red"}, valueText{"rolled_back", "", "orange"}))}).
		SortBy(sortBy("Finished")).
		Transformations(append(lokiColumns("lead_time_seconds"),
			organize(append(lokiNoise(), "previous_revision", "commit_time", "commit_referenced"),
				map[string]string{"project": "Project", "revision": "Revision", "author": "Author", "commit_subject": "Subject", "initiator": "Initiator"},
				[]string{"ts", "app", "project", "result", "revision", "author", "commit_subject", "commit_sha", "lead_time_seconds", "initiator", "trace_id", "commit_repo"}))).
		Height(10).Span(24).
		WithTarget(logQuery(`{job="crowsnest", event="deployment_finished", env="prod", project=~"$project"} | json`, 100))
}
