package rules

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/crowsnest/crowsnest/internal/rules/promtest"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite alerts/crowsnest.rules.yaml and the promtool tests in alerts/tests/ (but agreement.yaml: internal/pager)")

// checkGenerated compares a checked-in generated file with what it must
// be, or rewrites it with -update.
func checkGenerated(t *testing.T, rel string, want []byte) {
	t.Helper()
	promtest.CheckGenerated(t, "internal/rules", rel, want, *update)
}

// repoFile is a path relative to the repository root.
func repoFile(rel string) string { return promtest.RepoFile(rel) }

func TestRulesFileUpToDate(t *testing.T) {
	out, err := Render(Alerts(), 1)
	if err != nil {
		t.Fatal(err)
	}
	checkGenerated(t, RulesFile, out)
	// The Helm chart's PrometheusRule carries the same rules.
	checkGenerated(t, "charts/exporter/files/crowsnest.rules.yaml", out)
}

// Every alert is named Crowsnest..., once, has a summary, a description
// naming the app, and a runbook section.
func TestAlertDefinitions(t *testing.T) {
	runbook, err := os.ReadFile(repoFile("docs/runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range Alerts() {
		if !strings.HasPrefix(a.Name, "Crowsnest") || seen[a.Name] {
			t.Errorf("alert %q: want a unique name prefixed Crowsnest", a.Name)
		}
		seen[a.Name] = true
		if a.Summary == "" || a.Description == "" || len(a.Variants) == 0 {
			t.Errorf("%s: summary, description and variants are required", a.Name)
		}
		if a.Check != nil && !strings.Contains(a.Description, "$labels.env") {
			t.Errorf("%s: an app alert's description must name app, project and env", a.Name)
		}
		if !regexp.MustCompile(`(?m)^## ` + a.Name + `$`).Match(runbook) {
			t.Errorf("%s: docs/runbook.md has no section \"## %s\" (anchor #%s)", a.Name, a.Name, a.Anchor())
		}
	}
}

// The promtool unit tests: written here as cases, rendered into
// alerts/tests/crowsnest.test.yaml, run by `promtool test rules` in make test.

type series struct{ Series, Values string }

// testLinks are the base URLs of the promtool cases that have them.
var testLinks = Links{ArgoCD: "https://argocd.example.com", Grafana: "https://grafana.example.com/grafana"}

type check struct {
	at, alert string
	want      []map[string]string // labels of the firing alerts, severity included
}

type promtoolCase struct {
	series []series
	checks []check
	// interval is the step of the series and of the evaluations; "" is
	// 1m.
	interval string
}

func app(metric, name, env string, extra ...string) string {
	l := fmt.Sprintf(`namespace="argocd",name=%q,project="default",env=%q,job="crowsnest",instance="crowsnest:9829"`, name, env)
	for i := 0; i+1 < len(extra); i += 2 {
		l += fmt.Sprintf(",%s=%q", extra[i], extra[i+1])
	}
	return metric + "{" + l + "}"
}

// replica2 is series as a second crowsnest replica serves it.
func replica2(series string) string {
	return strings.Replace(series, `instance="crowsnest:9829"`, `instance="crowsnest-2:9829"`, 1)
}

// hubApp is a series of argocd/prod-web, deployed to prod-eu, as the
// crowsnest replica (instance) of the installation cluster serves it.
func hubApp(metric, cluster, instance string, extra ...string) string {
	l := fmt.Sprintf(`cluster=%q,namespace="argocd",name="prod-web",project="shop",env="prod",dest_cluster="prod-eu",job="crowsnest",instance="%s:9829"`, cluster, instance)
	for i := 0; i+1 < len(extra); i += 2 {
		l += fmt.Sprintf(",%s=%q", extra[i], extra[i+1])
	}
	return metric + "{" + l + "}"
}

// hubWant is the labels of an alert on hubApp's app of cluster.
func hubWant(cluster, severity string) map[string]string {
	return map[string]string{"cluster": cluster, "namespace": "argocd", "name": "prod-web", "project": "shop", "env": "prod", "dest_cluster": "prod-eu", "severity": severity}
}

func want(name, env, severity string) map[string]string {
	return map[string]string{"namespace": "argocd", "name": name, "project": "default", "env": env, "severity": severity}
}

// withLabels is l with the label pairs kv added.
func withLabels(l map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return l
}

func withPolicy(l map[string]string, policy string) map[string]string {
	l["policy"] = policy
	return l
}

func promtoolCases() []promtoolCase {
	return []promtoolCase{
		{ // a failed sync pages in prod, warns in dev, and resolves with the next good sync
			series: []series{
				{app("crowsnest_app_operation_phase", "prod-backend", "prod", "phase", "Failed"), "0 1 1 1"},
				{app("crowsnest_app_operation_phase", "dev-backend", "dev", "phase", "Failed"), "0 1 1 0"},
				{app("crowsnest_app_operation_phase", "dev-frontend", "dev", "phase", "Failed"), "0 0 0 0"},
			},
			checks: []check{
				{"0m", "CrowsnestSyncFailed", nil},
				{"2m", "CrowsnestProdSyncFailed", []map[string]string{want("prod-backend", "prod", "critical")}},
				{"2m", "CrowsnestSyncFailed", []map[string]string{want("dev-backend", "dev", "warning")}},
				{"3m", "CrowsnestProdSyncFailed", []map[string]string{want("prod-backend", "prod", "critical")}},
				{"3m", "CrowsnestSyncFailed", nil},
			},
		},
		{ // a terminated sync (terminate-op, sync timeout) is not a failure; a failed retry after it is
			series: []series{
				{app("crowsnest_app_operation_phase", "prod-backend", "prod", "phase", "Terminated"), "1 1 1 0 0"},
				{app("crowsnest_app_operation_phase", "prod-backend", "prod", "phase", "Failed"), "0 0 0 1 1"},
				{app("crowsnest_app_operation_phase", "dev-backend", "dev", "phase", "Terminated"), "1x4"},
				{app("crowsnest_app_operation_phase", "dev-backend", "dev", "phase", "Failed"), "0x4"},
				{app("crowsnest_app_operation_phase", "dev-backend", "dev", "phase", "Error"), "0x4"},
			},
			checks: []check{
				{"0m", "CrowsnestSyncFailed", nil},
				{"2m", "CrowsnestSyncFailed", nil},
				{"2m", "CrowsnestProdSyncFailed", nil},
				{"3m", "CrowsnestProdSyncFailed", []map[string]string{want("prod-backend", "prod", "critical")}},
				{"3m", "CrowsnestSyncFailed", nil},
			},
		},
		{ // degraded for 5 minutes
			series: []series{
				{app("crowsnest_app_health_status", "prod-backend", "prod", "status", "Degraded"), "1x10"},
				{app("crowsnest_app_health_status", "stage-backend", "stage", "status", "Degraded"), "1x10"},
				{app("crowsnest_app_health_status", "dev-backend", "dev", "status", "Degraded"), "0x10"},
			},
			checks: []check{
				{"4m", "CrowsnestAppDegraded", nil},
				{"6m", "CrowsnestProdAppDegraded", []map[string]string{want("prod-backend", "prod", "critical")}},
				{"6m", "CrowsnestAppDegraded", []map[string]string{want("stage-backend", "stage", "warning")}},
			},
		},
		{ // drift pages in prod only; the same drift in dev does not
			series: []series{
				{app("crowsnest_app_sync_status", "prod-backend", "prod", "status", "OutOfSync"), "1x10"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod"), "1x10"},
				{app("crowsnest_app_sync_status", "dev-backend", "dev", "status", "OutOfSync"), "1x10"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "dev-backend", "dev"), "1x10"},
			},
			checks: []check{
				{"4m", "CrowsnestProdDrift", nil},
				{"6m", "CrowsnestProdDrift", []map[string]string{want("prod-backend", "prod", "critical")}},
			},
		},
		{ // drift an auto-syncing app did not heal
			series: []series{
				{app("crowsnest_app_sync_status", "dev-backend", "dev", "status", "OutOfSync"), "1x20"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "dev-backend", "dev"), "1x20"},
				{app("crowsnest_app_info", "dev-backend", "dev", "autosync", "true"), "1x20"},
				{app("crowsnest_app_sync_status", "dev-frontend", "dev", "status", "OutOfSync"), "1x20"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "dev-frontend", "dev"), "1x20"},
				{app("crowsnest_app_info", "dev-frontend", "dev", "autosync", "false"), "1x20"},
				{app("crowsnest_app_sync_status", "prod-backend", "prod", "status", "OutOfSync"), "1x20"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod"), "1x20"},
				{app("crowsnest_app_info", "prod-backend", "prod", "autosync", "true"), "1x20"},
				// Apps an ApplicationSet's RollingSync syncs: one Waiting
				// for its step (quiet: the rollout holds it), one the
				// rollout left Healthy and that drifted since (RollingSync
				// heals nothing: it pages).
				{app("crowsnest_app_sync_status", "stage-waiting", "stage", "status", "OutOfSync"), "1x20"},
				{app("crowsnest_app_info", "stage-waiting", "stage", "autosync", "true"), "1x20"},
				{app("crowsnest_app_rollout_status", "stage-waiting", "stage", "applicationset", "shop", "step", "2", "status", "Waiting"), "1x20"},
				{app("crowsnest_app_rollout_status", "stage-waiting", "stage", "applicationset", "shop", "step", "2", "status", "Healthy"), "0x20"},
				{app("crowsnest_app_sync_status", "stage-drifted", "stage", "status", "OutOfSync"), "1x20"},
				{app("crowsnest_app_info", "stage-drifted", "stage", "autosync", "true"), "1x20"},
				{app("crowsnest_app_rollout_status", "stage-drifted", "stage", "applicationset", "shop", "step", "2", "status", "Waiting"), "0x20"},
				{app("crowsnest_app_rollout_status", "stage-drifted", "stage", "applicationset", "shop", "step", "2", "status", "Healthy"), "1x20"},
			},
			checks: []check{
				{"14m", "CrowsnestDriftNotHealed", nil},
				{"16m", "CrowsnestDriftNotHealed", []map[string]string{want("dev-backend", "dev", "warning"), want("stage-drifted", "stage", "warning")}},
			},
		},
		{ // an app being deleted does not page its drift; a deletion hanging for 30 minutes does
			series: []series{
				// Deleting since the start, OutOfSync throughout.
				{app("crowsnest_app_sync_status", "prod-backend", "prod", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod"), "1x40"},
				{app("crowsnest_app_info", "prod-backend", "prod", "autosync", "false"), "1x40"},
				{app("crowsnest_app_deletion_timestamp_seconds", "prod-backend", "prod"), "0x40"},
				{app("crowsnest_app_sync_status", "dev-backend", "dev", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "dev-backend", "dev"), "1x40"},
				{app("crowsnest_app_info", "dev-backend", "dev", "autosync", "true"), "1x40"},
				{app("crowsnest_app_deletion_timestamp_seconds", "dev-backend", "dev"), "0x40"},
				// Not deleting: drift pages as before.
				{app("crowsnest_app_sync_status", "prod-frontend", "prod", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-frontend", "prod"), "1x40"},
				{app("crowsnest_app_info", "prod-frontend", "prod", "autosync", "false"), "1x40"},
				{app("crowsnest_app_sync_status", "dev-frontend", "dev", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "dev-frontend", "dev"), "1x40"},
				{app("crowsnest_app_info", "dev-frontend", "dev", "autosync", "true"), "1x40"},
				// Drifted, then deleted from 10m (the drift alert resolves)
				// until 18m, when the deletion finished before 30 minutes.
				{app("crowsnest_app_sync_status", "prod-payments", "prod", "status", "OutOfSync"), "1x18 stale"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-payments", "prod"), "1x18 stale"},
				{app("crowsnest_app_info", "prod-payments", "prod", "autosync", "false"), "1x18 stale"},
				{app("crowsnest_app_deletion_timestamp_seconds", "prod-payments", "prod"), "_x10 600x8 stale"},
				// Deleting from 10m, for 30 minutes only at 40m.
				{app("crowsnest_app_deletion_timestamp_seconds", "stage-backend", "stage"), "_x10 600x30"},
				// A second replica serves the same deleting app: still one alert.
				{replica2(app("crowsnest_app_sync_status", "prod-backend", "prod", "status", "OutOfSync")), "1x40"},
				{replica2(app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod")), "1x40"},
				{replica2(app("crowsnest_app_deletion_timestamp_seconds", "prod-backend", "prod")), "0x40"},
			},
			checks: []check{
				{"4m", "CrowsnestProdDrift", nil},
				{"6m", "CrowsnestProdDrift", []map[string]string{want("prod-frontend", "prod", "critical"), want("prod-payments", "prod", "critical")}},
				{"12m", "CrowsnestProdDrift", []map[string]string{want("prod-frontend", "prod", "critical")}},
				{"16m", "CrowsnestDriftNotHealed", []map[string]string{want("dev-frontend", "dev", "warning")}},
				{"30m", "CrowsnestDeletionStuck", nil},
				{"35m", "CrowsnestDeletionStuck", nil},
				{"36m", "CrowsnestDeletionStuck", []map[string]string{want("prod-backend", "prod", "warning"), want("dev-backend", "dev", "warning")}},
			},
		},
		{ // a change freeze: apps a deny window holds do not page their drift; once it closes they do
			series: []series{
				{app("crowsnest_app_sync_status", "prod-backend", "prod", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod"), "1x40"},
				{app("crowsnest_app_info", "prod-backend", "prod", "autosync", "false"), "1x40"},
				{app("crowsnest_app_sync_window_held", "prod-backend", "prod"), "1x40"},
				{app("crowsnest_app_sync_status", "dev-backend", "dev", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "dev-backend", "dev"), "1x40"},
				{app("crowsnest_app_info", "dev-backend", "dev", "autosync", "true"), "1x40"},
				{app("crowsnest_app_sync_window_held", "dev-backend", "dev"), "1x40"},
				// Held for the first 10 minutes only.
				{app("crowsnest_app_sync_status", "prod-payments", "prod", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-payments", "prod"), "1x40"},
				{app("crowsnest_app_info", "prod-payments", "prod", "autosync", "false"), "1x40"},
				{app("crowsnest_app_sync_window_held", "prod-payments", "prod"), "1x10 0x30"},
				// A second replica serves the same held app: still quiet.
				{replica2(app("crowsnest_app_sync_status", "prod-backend", "prod", "status", "OutOfSync")), "1x40"},
				{replica2(app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod")), "1x40"},
				{replica2(app("crowsnest_app_sync_window_held", "prod-backend", "prod")), "1x40"},
				// Not held: drift pages as before.
				{app("crowsnest_app_sync_status", "dev-frontend", "dev", "status", "OutOfSync"), "1x40"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "dev-frontend", "dev"), "1x40"},
				{app("crowsnest_app_info", "dev-frontend", "dev", "autosync", "true"), "1x40"},
				{app("crowsnest_app_sync_window_held", "dev-frontend", "dev"), "0x40"},
			},
			checks: []check{
				{"9m", "CrowsnestProdDrift", nil},
				{"16m", "CrowsnestProdDrift", []map[string]string{want("prod-payments", "prod", "critical")}},
				{"16m", "CrowsnestDriftNotHealed", []map[string]string{want("dev-frontend", "dev", "warning")}},
			},
		},
		{ // drift told apart (4-minute steps: a day of 1-minute evaluations of series 4 minutes apart, within the lookback): a prod release waiting for its manual sync (a merge, a rollback) is no drift and warns after a day;
			// a hand edit while it waits pages; a release synced within the day, one in dev, one deleting, one a freeze holds stay quiet; two replicas, one alert
			interval: "4m",
			series: []series{
				{app("crowsnest_app_sync_status", "prod-backend", "prod", "status", "OutOfSync"), "1x400"},
				{app("crowsnest_app_awaiting_sync_since_timestamp_seconds", "prod-backend", "prod"), "1x400"},
				{replica2(app("crowsnest_app_awaiting_sync_since_timestamp_seconds", "prod-backend", "prod")), "1x400"},
				{app("crowsnest_app_sync_window_held", "prod-backend", "prod"), "0x400"},
				// A hand edit after an hour, while the release waits.
				{app("crowsnest_app_sync_status", "prod-frontend", "prod", "status", "OutOfSync"), "1x400"},
				{app("crowsnest_app_awaiting_sync_since_timestamp_seconds", "prod-frontend", "prod"), "1x400"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-frontend", "prod"), "_x15 1x385"},
				// Synced after twelve hours: the wait ends.
				{app("crowsnest_app_awaiting_sync_since_timestamp_seconds", "prod-payments", "prod"), "1x180 stale"},
				{app("crowsnest_app_awaiting_sync_since_timestamp_seconds", "dev-backend", "dev"), "1x400"},
				{app("crowsnest_app_awaiting_sync_since_timestamp_seconds", "prod-deleting", "prod"), "1x400"},
				{app("crowsnest_app_deletion_timestamp_seconds", "prod-deleting", "prod"), "0x400"},
				{app("crowsnest_app_awaiting_sync_since_timestamp_seconds", "prod-frozen", "prod"), "1x400"},
				{app("crowsnest_app_sync_window_held", "prod-frozen", "prod"), "1x400"},
			},
			checks: []check{
				{"60m", "CrowsnestProdDrift", nil},
				{"68m", "CrowsnestProdDrift", []map[string]string{want("prod-frontend", "prod", "critical")}},
				{"23h50m", "CrowsnestProdReleaseWaiting", nil},
				{"24h10m", "CrowsnestProdReleaseWaiting", []map[string]string{want("prod-backend", "prod", "warning"), want("prod-frontend", "prod", "warning")}},
			},
		},
		{ // a sync retrying past the threshold for 5 minutes warns; one that stops retrying (succeeds, or is terminated: no series), one below it, a deleting app do not; two replicas, one alert
			series: []series{
				// Retried once a minute from t=0: 5 retries at 5m.
				{app("crowsnest_app_operation_retries", "prod-backend", "prod"), "0+1x40"},
				{replica2(app("crowsnest_app_operation_retries", "prod-backend", "prod")), "0+1x40"},
				// Retries 0..7, then terminated (Running no more).
				{app("crowsnest_app_operation_retries", "dev-backend", "dev"), "0+1x7 stale"},
				{app("crowsnest_app_operation_retries", "dev-frontend", "dev"), "2x40"},
				{app("crowsnest_app_operation_retries", "stage-backend", "stage"), "0+1x40"},
				{app("crowsnest_app_deletion_timestamp_seconds", "stage-backend", "stage"), "0x40"},
			},
			checks: []check{
				{"9m", "CrowsnestSyncRetrying", nil},
				{"10m", "CrowsnestSyncRetrying", []map[string]string{want("prod-backend", "prod", "warning")}},
			},
		},
		{ // self-heal fighting another writer: 3 self-heals within an hour warn; 2 an hour, manual syncs (no self-heal), a deleting app do not; two replicas count the same
			series: []series{
				// A self-heal every 15 minutes from 5m on.
				{app("crowsnest_app_self_heals_total", "dev-backend", "dev"), "0x5 1x15 2x15 3x15 4x20"},
				{replica2(app("crowsnest_app_self_heals_total", "dev-backend", "dev")), "0x5 1x15 2x15 3x15 4x20"},
				// One every 40 minutes.
				{app("crowsnest_app_self_heals_total", "dev-frontend", "dev"), "0x5 1x40 2x30"},
				{app("crowsnest_app_self_heals_total", "stage-backend", "stage"), "0x5 1x15 2x15 3x15 4x20"},
				{app("crowsnest_app_deletion_timestamp_seconds", "stage-backend", "stage"), "0x70"},
			},
			checks: []check{
				{"37m", "CrowsnestSelfHealLoop", nil},
				{"39m", "CrowsnestSelfHealLoop", []map[string]string{want("dev-backend", "dev", "warning")}},
				{"70m", "CrowsnestSelfHealLoop", []map[string]string{want("dev-backend", "dev", "warning")}},
			},
		},
		{ // the application controller down: no app compared for an hour; nothing warns per app
			series: []series{
				{app("crowsnest_app_reconciled_timestamp_seconds", "prod-frontend", "prod"), "0x90"},
				{app("crowsnest_app_reconciled_timestamp_seconds", "prod-backend", "prod"), "0x90"},
			},
			checks: []check{
				{"90m", "CrowsnestAppNotReconciled", nil},
			},
		},
		{ // an app Argo CD stopped comparing for an hour while it compares others warns after 10 minutes more; a deleting one does not; two replicas, one alert
			series: []series{
				// Compared every minute (the value is the time).
				{app("crowsnest_app_reconciled_timestamp_seconds", "prod-frontend", "prod"), "0+60x90"},
				// Last compared at t=0.
				{app("crowsnest_app_reconciled_timestamp_seconds", "prod-backend", "prod"), "0x90"},
				{replica2(app("crowsnest_app_reconciled_timestamp_seconds", "prod-backend", "prod")), "0x90"},
				{app("crowsnest_app_reconciled_timestamp_seconds", "dev-backend", "dev"), "0x90"},
				{app("crowsnest_app_deletion_timestamp_seconds", "dev-backend", "dev"), "0x90"},
			},
			checks: []check{
				{"69m", "CrowsnestAppNotReconciled", nil},
				{"71m", "CrowsnestAppNotReconciled", []map[string]string{want("prod-backend", "prod", "warning")}},
			},
		},
		{ // two installations (cluster eu and us, a label of the scrape target) with an app of one name: each app's alerts keep their cluster and any other target label (team), the us app's deletion does not quiet the eu app's drift, the replicas of each merge
			series: []series{
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod", "cluster", "eu", "team", "shop"), "1x20"},
				{replica2(app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod", "cluster", "eu", "team", "shop")), "1x20"},
				{app("crowsnest_app_live_drift_since_timestamp_seconds", "prod-backend", "prod", "cluster", "us", "team", "shop"), "1x20"},
				{app("crowsnest_app_deletion_timestamp_seconds", "prod-backend", "prod", "cluster", "us", "team", "shop"), "0x20"},
				{app("crowsnest_app_operation_phase", "prod-backend", "prod", "cluster", "eu", "team", "shop", "phase", "Failed"), "1x20"},
				{app("crowsnest_app_operation_phase", "prod-backend", "prod", "cluster", "us", "team", "shop", "phase", "Failed"), "1x20"},
			},
			checks: []check{
				{"6m", "CrowsnestProdDrift", []map[string]string{withLabels(want("prod-backend", "prod", "critical"), "cluster", "eu", "team", "shop")}},
				{"1m", "CrowsnestProdSyncFailed", []map[string]string{
					withLabels(want("prod-backend", "prod", "critical"), "cluster", "eu", "team", "shop"),
					withLabels(want("prod-backend", "prod", "critical"), "cluster", "us", "team", "shop"),
				}},
			},
		},
		{ // a Source Hydrator failing (retried, failing again) or hanging for half an hour; a quick one and a deleting app do not page
			series: []series{
				// Failing since t=0 (the lag's start stays across retries).
				{app("crowsnest_app_hydration_lagging_since_timestamp_seconds", "prod-backend", "prod"), "0x40"},
				{replica2(app("crowsnest_app_hydration_lagging_since_timestamp_seconds", "prod-backend", "prod")), "0x40"},
				// Behind for ten minutes, then hydrated: no lag series.
				{app("crowsnest_app_hydration_lagging_since_timestamp_seconds", "dev-backend", "dev"), "0x10 stale"},
				// Lagging while its Application is being deleted.
				{app("crowsnest_app_hydration_lagging_since_timestamp_seconds", "stage-backend", "stage"), "0x40"},
				{app("crowsnest_app_deletion_timestamp_seconds", "stage-backend", "stage"), "0x40"},
			},
			checks: []check{
				{"30m", "CrowsnestHydrationLagging", nil},
				{"35m", "CrowsnestHydrationLagging", nil},
				{"36m", "CrowsnestHydrationLagging", []map[string]string{want("prod-backend", "prod", "warning")}},
			},
		},
		{ // a sync running for half an hour
			series: []series{
				{app("crowsnest_app_operation_phase", "prod-backend", "prod", "phase", "Running"), "1x40"},
				{app("crowsnest_app_operation_phase", "dev-backend", "dev", "phase", "Running"), "1x10 0x30"},
			},
			checks: []check{
				{"29m", "CrowsnestSyncStuck", nil},
				{"31m", "CrowsnestSyncStuck", []map[string]string{want("prod-backend", "prod", "warning")}},
			},
		},
		{ // a sync requested and never started (no controller picks it up), or requested then running, for half an hour
			series: []series{
				{app("crowsnest_app_operation_phase", "prod-backend", "prod", "phase", "Pending"), "1x40"},
				{app("crowsnest_app_operation_phase", "dev-backend", "dev", "phase", "Pending"), "1x10 0x30"},
				{app("crowsnest_app_operation_phase", "dev-backend", "dev", "phase", "Running"), "0x10 1x30"},
				// Picked up after 10 minutes and done.
				{app("crowsnest_app_operation_phase", "stage-backend", "stage", "phase", "Pending"), "1x10 0x30"},
				{app("crowsnest_app_operation_phase", "stage-backend", "stage", "phase", "Succeeded"), "0x10 1x30"},
				// Ended by the sync timeout: over, not stuck.
				{app("crowsnest_app_operation_phase", "stage-frontend", "stage", "phase", "Terminated"), "1x40"},
			},
			checks: []check{
				{"29m", "CrowsnestSyncStuck", nil},
				{"31m", "CrowsnestSyncStuck", []map[string]string{want("prod-backend", "prod", "warning"), want("dev-backend", "dev", "warning")}},
			},
		},
		{ // a sync more than twice the usual p90 of its project and env, and over 2 minutes
			series: []series{
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="30",job="crowsnest",instance="crowsnest:9829"}`, "0+1x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="+Inf",job="crowsnest",instance="crowsnest:9829"}`, "0+1x20"},
				{app("crowsnest_app_last_sync_duration_seconds", "dev-backend", "dev"), "400x20"},
				{app("crowsnest_app_last_sync_duration_seconds", "dev-frontend", "dev"), "100x20"},
				{app("crowsnest_app_last_sync_duration_seconds", "dev-infrastructure", "dev"), "20x20"},
			},
			checks: []check{
				{"10m", "CrowsnestSyncSlow", []map[string]string{want("dev-backend", "dev", "warning")}},
			},
		},
		{ // sharded: shard 0 (two replicas) sees the slow syncs, shard 1 (one replica) the fast ones; the p90 of all is 30 s, so a 200 s sync is slow (summing the copies would weigh shard 0 double: p90 151.5 s)
			series: []series{
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="30",shard="0",job="crowsnest",instance="crowsnest-0a:9829"}`, "0x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="300",shard="0",job="crowsnest",instance="crowsnest-0a:9829"}`, "0+1x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="+Inf",shard="0",job="crowsnest",instance="crowsnest-0a:9829"}`, "0+1x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="30",shard="0",job="crowsnest",instance="crowsnest-0b:9829"}`, "0x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="300",shard="0",job="crowsnest",instance="crowsnest-0b:9829"}`, "0+1x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="+Inf",shard="0",job="crowsnest",instance="crowsnest-0b:9829"}`, "0+1x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="30",shard="1",job="crowsnest",instance="crowsnest-1:9829"}`, "0+9x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="300",shard="1",job="crowsnest",instance="crowsnest-1:9829"}`, "0+9x20"},
				{`crowsnest_sync_duration_seconds_bucket{project="default",env="dev",result="Succeeded",le="+Inf",shard="1",job="crowsnest",instance="crowsnest-1:9829"}`, "0+9x20"},
				{app("crowsnest_app_last_sync_duration_seconds", "dev-backend", "dev"), "200x20"},
				{app("crowsnest_app_last_sync_duration_seconds", "dev-frontend", "dev"), "50x20"},
			},
			checks: []check{
				{"10m", "CrowsnestSyncSlow", []map[string]string{want("dev-backend", "dev", "warning")}},
			},
		},
		{ // Unknown for 15 minutes
			series: []series{
				{app("crowsnest_app_sync_status", "dev-backend", "dev", "status", "Unknown"), "1x20"},
				{app("crowsnest_app_health_status", "dev-frontend", "dev", "status", "Unknown"), "0x10 1x10"},
			},
			checks: []check{
				{"14m", "CrowsnestAppUnknown", nil},
				{"16m", "CrowsnestAppUnknown", []map[string]string{want("dev-backend", "dev", "warning")}},
			},
		},
		{ // prod must sync by hand, dev and stage automatically
			series: []series{
				{app("crowsnest_app_policy_violation", "prod-backend", "prod", "policy", "auto_sync"), "1x20"},
				{app("crowsnest_app_policy_violation", "prod-backend", "prod", "policy", "images_by_digest"), "0x20"},
				{app("crowsnest_app_policy_violation", "stage-backend", "stage", "policy", "auto_sync"), "0x20"},
				{app("crowsnest_app_policy_violation", "dev-backend", "dev", "policy", "prune"), "1x5 0x15"},
			},
			checks: []check{
				{"9m", "CrowsnestPolicyViolated", nil},
				{"11m", "CrowsnestPolicyViolated", []map[string]string{withPolicy(want("prod-backend", "prod", "warning"), "auto_sync")}},
			},
		},
		{ // three shards, one of them an HA pair, then shard 2's pod gone for good (never rescheduled: no target to be down)
			series: []series{
				{`up{job="crowsnest",instance="crowsnest-0a:9829"}`, "1x20"},
				{`up{job="crowsnest",instance="crowsnest-0b:9829"}`, "1x20"},
				{`up{job="crowsnest",instance="crowsnest-1:9829"}`, "1x20"},
				{`up{job="crowsnest",instance="crowsnest-2:9829"}`, "1x2 stale"},
				{`crowsnest_shard_info{shard="0",total_shards="3",job="crowsnest",instance="crowsnest-0a:9829"}`, "1x20"},
				{`crowsnest_shard_info{shard="0",total_shards="3",job="crowsnest",instance="crowsnest-0b:9829"}`, "1x20"},
				{`crowsnest_shard_info{shard="1",total_shards="3",job="crowsnest",instance="crowsnest-1:9829"}`, "1x20"},
				{`crowsnest_shard_info{shard="2",total_shards="3",job="crowsnest",instance="crowsnest-2:9829"}`, "1x2 stale"},
				{`crowsnest_total_shards{job="crowsnest",instance="crowsnest-0a:9829"}`, "3x20"},
				{`crowsnest_total_shards{job="crowsnest",instance="crowsnest-0b:9829"}`, "3x20"},
				{`crowsnest_total_shards{job="crowsnest",instance="crowsnest-1:9829"}`, "3x20"},
				{`crowsnest_total_shards{job="crowsnest",instance="crowsnest-2:9829"}`, "3x2 stale"},
			},
			checks: []check{
				{"2m", "CrowsnestDown", nil},
				{"7m", "CrowsnestDown", nil},
				{"9m", "CrowsnestDown", []map[string]string{{"severity": "warning"}}},
			},
		},
		{ // crowsnest not scraped
			series: []series{{`up{job="crowsnest",instance="crowsnest:9829"}`, "1 1 0x10"}},
			checks: []check{
				{"1m", "CrowsnestDown", nil},
				{"8m", "CrowsnestDown", []map[string]string{{"job": "crowsnest", "instance": "crowsnest:9829", "severity": "warning"}}},
			},
		},
		{ // the source failing, or silent for 15 minutes
			series: []series{
				{`crowsnest_source_up{source="kubernetes",job="crowsnest",instance="a:9829"}`, "1 0x10"},
				{`crowsnest_source_last_event_timestamp_seconds{source="kubernetes",job="crowsnest",instance="a:9829"}`, "0+60x10"},
				{`crowsnest_source_up{source="kubernetes",job="crowsnest",instance="b:9829"}`, "1x30"},
				{`crowsnest_source_last_event_timestamp_seconds{source="kubernetes",job="crowsnest",instance="b:9829"}`, "0x30"},
			},
			checks: []check{
				{"4m", "CrowsnestWatchStale", nil},
				{"7m", "CrowsnestWatchStale", []map[string]string{{"source": "kubernetes", "job": "crowsnest", "instance": "a:9829", "severity": "warning"}}},
				{"22m", "CrowsnestWatchStale", []map[string]string{{"source": "kubernetes", "job": "crowsnest", "instance": "b:9829", "severity": "warning"}}},
			},
		},
		{ // two installations (hubs) scraped by one Prometheus, each with an
			// argocd/prod-web deployed to a spoke both name prod-eu: every
			// alert and join keeps the cluster apart. hub-a's app drifts
			// (two replicas: one alert); hub-b's drifts too but is being
			// deleted, which silences hub-b's alone; both are Degraded:
			// one alert per hub; both hubs lose their prod-eu: one
			// CrowsnestClusterDown each.
			series: []series{
				{hubApp("crowsnest_app_sync_status", "hub-a", "a", "status", "OutOfSync"), "1x10"},
				{hubApp("crowsnest_app_live_drift_since_timestamp_seconds", "hub-a", "a"), "1x10"},
				{hubApp("crowsnest_app_health_status", "hub-a", "a", "status", "Degraded"), "1x10"},
				{hubApp("crowsnest_app_sync_status", "hub-a", "b", "status", "OutOfSync"), "1x10"},
				{hubApp("crowsnest_app_live_drift_since_timestamp_seconds", "hub-a", "b"), "1x10"},
				{hubApp("crowsnest_app_health_status", "hub-a", "b", "status", "Degraded"), "1x10"},
				{hubApp("crowsnest_app_sync_status", "hub-b", "a", "status", "OutOfSync"), "1x10"},
				{hubApp("crowsnest_app_live_drift_since_timestamp_seconds", "hub-b", "a"), "1x10"},
				{hubApp("crowsnest_app_deletion_timestamp_seconds", "hub-b", "a"), "0x10"},
				{hubApp("crowsnest_app_health_status", "hub-b", "a", "status", "Degraded"), "1x10"},
				{`crowsnest_cluster_up{cluster="hub-a",dest_server="https://eu:6443",dest_cluster="prod-eu",job="crowsnest",instance="a:9829"}`, "0x20"},
				{`crowsnest_cluster_up{cluster="hub-b",dest_server="https://eu:6443",dest_cluster="prod-eu",job="crowsnest",instance="a:9829"}`, "0x20"},
			},
			checks: []check{
				{"6m", "CrowsnestProdDrift", []map[string]string{hubWant("hub-a", "critical")}},
				{"6m", "CrowsnestProdAppDegraded", []map[string]string{hubWant("hub-a", "critical"), hubWant("hub-b", "critical")}},
				{"11m", "CrowsnestClusterDown", []map[string]string{
					{"cluster": "hub-a", "dest_server": "https://eu:6443", "dest_cluster": "prod-eu", "severity": "warning"},
					{"cluster": "hub-b", "dest_server": "https://eu:6443", "dest_cluster": "prod-eu", "severity": "warning"},
				}},
			},
		},
		{ // one installation, apps in any namespace: two apps named web in
			// team-a and team-b, deployed to two clusters; only team-a's
			// is being deleted and only team-b's sync failed. Each alert
			// is its own app's, naming its cluster.
			series: []series{
				{`crowsnest_app_sync_status{namespace="team-a",name="web",project="a",env="prod",dest_cluster="prod-eu",job="crowsnest",instance="a:9829",status="OutOfSync"}`, "1x10"},
				{`crowsnest_app_live_drift_since_timestamp_seconds{namespace="team-a",name="web",project="a",env="prod",dest_cluster="prod-eu",job="crowsnest",instance="a:9829"}`, "1x10"},
				{`crowsnest_app_deletion_timestamp_seconds{namespace="team-a",name="web",project="a",env="prod",dest_cluster="prod-eu",job="crowsnest",instance="a:9829"}`, "0x10"},
				{`crowsnest_app_sync_status{namespace="team-b",name="web",project="b",env="prod",dest_cluster="prod-us",job="crowsnest",instance="a:9829",status="OutOfSync"}`, "1x10"},
				{`crowsnest_app_live_drift_since_timestamp_seconds{namespace="team-b",name="web",project="b",env="prod",dest_cluster="prod-us",job="crowsnest",instance="a:9829"}`, "1x10"},
				{`crowsnest_app_operation_phase{namespace="team-b",name="web",project="b",env="prod",dest_cluster="prod-us",job="crowsnest",instance="a:9829",phase="Failed"}`, "0 1x10"},
			},
			checks: []check{
				{"6m", "CrowsnestProdDrift", []map[string]string{{"namespace": "team-b", "name": "web", "project": "b", "env": "prod", "dest_cluster": "prod-us", "severity": "critical"}}},
				{"2m", "CrowsnestProdSyncFailed", []map[string]string{{"namespace": "team-b", "name": "web", "project": "b", "env": "prod", "dest_cluster": "prod-us", "severity": "critical"}}},
			},
		},
		{ // a spoke down for both replicas: one alert; one replica cut off
			// from another spoke: none (the other still reads it); a
			// spoke down for 5 minutes only: none
			series: []series{
				{`crowsnest_cluster_up{dest_server="https://eu:6443",dest_cluster="prod-eu",job="crowsnest",instance="a:9829"}`, "1 0x20"},
				{`crowsnest_cluster_up{dest_server="https://eu:6443",dest_cluster="prod-eu",job="crowsnest",instance="b:9829"}`, "1 1 0x20"},
				{`crowsnest_cluster_up{dest_server="https://us:6443",dest_cluster="prod-us",job="crowsnest",instance="a:9829"}`, "0x20"},
				{`crowsnest_cluster_up{dest_server="https://us:6443",dest_cluster="prod-us",job="crowsnest",instance="b:9829"}`, "1x20"},
				{`crowsnest_cluster_up{dest_server="https://ap:6443",dest_cluster="prod-ap",job="crowsnest",instance="a:9829"}`, "1 0x5 1x15"},
			},
			checks: []check{
				{"8m", "CrowsnestClusterDown", nil},
				{"13m", "CrowsnestClusterDown", []map[string]string{{"dest_server": "https://eu:6443", "dest_cluster": "prod-eu", "severity": "warning"}}},
			},
		},
	}
}

func renderPromtoolTests(t *testing.T) []byte {
	t.Helper()
	byName := map[string]Alert{}
	for _, a := range Alerts() {
		byName[a.Name] = a
	}
	doc := struct {
		RuleFiles []string         `yaml:"rule_files"`
		Interval  string           `yaml:"evaluation_interval"`
		Tests     []promtest.Group `yaml:"tests"`
	}{RuleFiles: []string{"../crowsnest.rules.yaml"}, Interval: "1m"}
	covered := map[string]bool{}
	for _, c := range promtoolCases() {
		ty := promtest.Group{Interval: cmp.Or(c.interval, "1m")}
		for _, s := range c.series {
			ty.Input = append(ty.Input, promtest.Series(s))
		}
		// The rule file has no base URLs: dashboard_url is relative,
		// argocd_url absent (TestRenderWithLinks covers them).
		var links Links
		for _, ch := range c.checks {
			a, ok := byName[ch.alert]
			if !ok {
				t.Fatalf("case for unknown alert %s", ch.alert)
			}
			if len(ch.want) > 0 {
				covered[ch.alert] = true
			}
			rt := promtest.AlertTest{EvalTime: ch.at, Alertname: ch.alert, ExpAlerts: []promtest.ExpAlert{}}
			for _, l := range ch.want {
				ann := map[string]string{
					"summary":       a.Summary,
					"description":   Expand(a.Description, l),
					"runbook_url":   RunbookURL + "#" + a.Anchor(),
					"dashboard_url": links.DashboardURL(&a, l),
				}
				if u := links.AppURL(l["namespace"], l["name"]); a.Dashboard() == DashboardApp && u != "" {
					ann["argocd_url"] = u
				}
				rt.ExpAlerts = append(rt.ExpAlerts, promtest.ExpAlert{Labels: l, Annotations: ann})
			}
			ty.AlertTest = append(ty.AlertTest, rt)
		}
		doc.Tests = append(doc.Tests, ty)
	}
	for name, a := range byName {
		if a.Group == DORAGroup {
			continue // alerts/tests/dora.test.yaml (dora_test.go)
		}
		if !covered[name] {
			t.Errorf("%s has no promtool case where it fires", name)
		}
	}
	var b bytes.Buffer
	b.WriteString("# Generated from internal/rules/rules_test.go by `go test ./internal/rules -update`. DO NOT EDIT.\n# Run: promtool test rules alerts/tests/*.yaml\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestPromtoolTestsUpToDate(t *testing.T) {
	checkGenerated(t, "alerts/tests/crowsnest.test.yaml", renderPromtoolTests(t))
}
