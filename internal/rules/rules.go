// Package rules defines crowsnest's alerts once: each definition renders
// the Prometheus rule file in alerts/ and, where it can be judged from one
// Application's state, drives direct paging of Alertmanager.
package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Severity is an alert's severity label.
type Severity string

// Severities.
const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
)

// ProdEnv is the environment whose problems page by default; the
// configuration's prod_environments (a regular expression) names others.
const ProdEnv = "prod"

// Scope says which environments a variant of an alert covers.
type Scope int

// Scopes.
const (
	AllEnvs Scope = iota // every environment
	Prod                 // env="prod"
	NonProd              // env!="prod"
)

// matcher is the PromQL label matcher of the scope, with a leading comma,
// prod being the regular expression of the environments that page
// (ProdEnv: an equality matcher).
func (s Scope) matcher(prod string) string {
	eq, ne := "=", "!="
	if prod != ProdEnv {
		eq, ne = "=~", "!~"
	}
	switch s {
	case Prod:
		return `,env` + eq + strconv.Quote(prod)
	case NonProd:
		return `,env` + ne + strconv.Quote(prod)
	}
	return ""
}

// Covers reports whether the scope covers env, prod matching (anchored)
// the environments that page.
func (s Scope) Covers(env string, prod *regexp.Regexp) bool {
	switch s {
	case Prod:
		return prod.MatchString(env)
	case NonProd:
		return !prod.MatchString(env)
	}
	return true
}

// ProdMatcher compiles prod, the regular expression of the environments
// that page, anchored at both ends as Prometheus anchors =~.
func ProdMatcher(prod string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + prod + ")$")
	if err != nil {
		return nil, fmt.Errorf("prod environments %q: %w", prod, err)
	}
	return re, nil
}

// Variant is an alert's severity in a scope.
type Variant struct {
	Scope    Scope
	Severity Severity
}

// AppState is what direct paging knows of one Application: the same facts
// the metrics expose.
type AppState = model.AppStatus

// Alert is one alert, defined once.
type Alert struct {
	// Name is the alertname, prefixed Crowsnest.
	Name string
	// Expr returns the PromQL expression; matcher ("" or `,env="prod"` or
	// `,env!="prod"`) goes inside the braces of the app series selected.
	// App alerts aggregate with perApp: one series per app, its identity
	// (namespace, name, project, env) and the target's labels, so that
	// direct pages (with the same external labels) carry the same labels.
	Expr func(matcher string) string
	// For is how long the condition must hold.
	For time.Duration
	// Variants give the severity per scope; one rule per variant.
	Variants []Variant
	// Summary and Description are annotation templates; Description names
	// the app, project and env.
	Summary, Description string
	// Check judges the condition on one app for direct paging; nil for
	// alerts only Prometheus can evaluate (rates, histograms, up).
	Check func(a AppState) bool
	// Group is the rule group the alert is rendered in: one of
	// AlertGroups, or a recording group of RecordingGroups for an alert on
	// its records (rendered after them, such an alert reads the records
	// of the same evaluation).
	Group string
}

// Anchor is the alert's section in docs/runbook.md.
func (a *Alert) Anchor() string { return strings.ToLower(a.Name) }

// RetryingThreshold is the retries of a running sync from which
// CrowsnestSyncRetrying warns.
const RetryingThreshold = 5

// SelfHealLoopCount self-heals within SelfHealLoopWindow make
// CrowsnestSelfHealLoop warn.
const (
	SelfHealLoopCount  = 3
	SelfHealLoopWindow = time.Hour
)

// NotReconciledAfter is how long after Argo CD's last comparison of an app
// CrowsnestAppNotReconciled warns (Argo CD compares every app every 3
// minutes by default).
const NotReconciledAfter = time.Hour

// ReleaseWaitingFor is how long a prod release may wait for its sync before
// CrowsnestProdReleaseWaiting warns.
const ReleaseWaitingFor = 24 * time.Hour

// RunbookURL is the base of the runbook links.
const RunbookURL = "https://github.com/crowsnest/crowsnest/blob/main/docs/runbook.md"

// scrapeLabels are the labels a scrape gives crowsnest's series that
// identify no app: the target's (job, instance, and a ServiceMonitor's pod,
// container, endpoint, service) and crowsnest's shard. App alerts aggregate
// them away, so the copies of two replicas (or of a shard's pods) are one
// alert, and keep every other label: the app's identity (namespace, name,
// project, env) and whatever the user adds to the target (cluster, team;
// give the pager those too, --alertmanager.external-label, so its alerts
// are the same).
const scrapeLabels = "job, instance, pod, container, endpoint, service, shard"

// VariantFor is the alert's severity for env, if the alert covers it; prod
// matches the environments that page.
func (a *Alert) VariantFor(env string, prod *regexp.Regexp) (Variant, bool) {
	for _, v := range a.Variants {
		if v.Scope.Covers(env, prod) {
			return v, true
		}
	}
	return Variant{}, false
}

// perApp aggregates expr to one series per app: the max over the copies,
// without the scrape's labels and the state labels drop (a state set's
// status or phase). expr carries the alert's condition on the raw series
// (== 1 of a state, > 0 of a timestamp): the aggregation then builds the
// label sets of the few series that hold it, not of every app's from every
// replica, and the max of those is the max of all where the condition
// holds (every replica's state is 0 or 1; a timestamp is 0 or more).
func perApp(expr string, drop ...string) string {
	return "max without (" + strings.Join(append([]string{scrapeLabels}, drop...), ", ") + ") (" + expr + ")"
}

// appKey is what joins two app series: the app, in its installation.
const appKey = "cluster, namespace, name"

const appDescription = `{{ $labels.namespace }}/{{ $labels.name }} (project {{ $labels.project }}, env {{ $labels.env }})`

// selector is metric selected with matcher m ("" or a leading-comma
// matcher, as Expr gets it).
func selector(metric, m string) string {
	if m == "" {
		return metric
	}
	return metric + "{" + strings.TrimPrefix(m, ",") + "}"
}

// notDeleting drops the apps being deleted (their Application has a
// deletionTimestamp) from an app alert's result: their drift is the
// deletion's, and CrowsnestDeletionStuck covers a deletion that hangs.
func notDeleting(m string) string {
	return ` unless on (` + appKey + `) ` + selector("crowsnest_app_deletion_timestamp_seconds", m)
}

// notHeld drops the apps a sync window holds (a window of their project
// denies their next sync, manual or automatic as the app syncs: a change
// freeze) from a drift alert's result: drift that nobody may sync away is
// expected, and Argo CD holds auto-sync itself.
func notHeld(m string) string {
	return ` unless on (` + appKey + `) ` + selector("crowsnest_app_sync_window_held", m) + ` == 1`
}

// notRolledOut drops the apps an ApplicationSet's RollingSync holds back
// (Waiting for their step, or Pending their sync): their drift is a
// rollout's step not reached yet, which the rollout series show.
func notRolledOut(m string) string {
	return ` unless on (` + appKey + `) ` + `crowsnest_app_rollout_status{status=~"Waiting|Pending"` + m + `} == 1`
}

// prodAndOthers returns a as two alerts: prodName, critical, for prod (in
// GroupProd), and a's own name, a warning, for every other env (in a's
// group). One name per severity:
// Alertmanager's usual inhibition (kube-prometheus-stack's default: a
// critical inhibits the warnings of the same alertname and namespace) would
// otherwise let one prod critical silence that alert of every dev and stage
// app, which share the Application namespace (argocd).
func prodAndOthers(a Alert, prodName string) []Alert {
	prod := a
	prod.Name, prod.Variants, prod.Group = prodName, []Variant{{Prod, Critical}}, GroupProd
	a.Variants = []Variant{{NonProd, Warning}}
	return []Alert{prod, a}
}

// Alerts returns crowsnest's alerts.
func Alerts() []Alert {
	return slices.Concat(prodAndOthers(Alert{
		Name:  "CrowsnestSyncFailed",
		Group: GroupSync,
		Expr: func(m string) string {
			return perApp(`crowsnest_app_operation_phase{phase=~"Failed|Error"`+m+`} == 1`, "phase")
		},
		Summary:     "Argo CD sync failed",
		Description: "The last sync operation of " + appDescription + " failed. Argo CD's message is in the app's status; the sync's trace shows which wave and resource.",
		// Failed and Error only: an operation a person ended with
		// terminate-op is exposed as Terminated and does not page; one
		// the controller's sync timeout ended is Failed and pages.
		Check: func(a AppState) bool { return a.Phase == "Failed" || a.Phase == "Error" },
	}, "CrowsnestProdSyncFailed"), prodAndOthers(Alert{
		Name:  "CrowsnestAppDegraded",
		Group: GroupHealth,
		Expr: func(m string) string {
			return perApp(`crowsnest_app_health_status{status="Degraded"`+m+`} == 1`, "status")
		},
		For:         5 * time.Minute,
		Summary:     "Argo CD app degraded",
		Description: appDescription + " has been Degraded for 5 minutes.",
		Check:       func(a AppState) bool { return a.Health == "Degraded" },
	}, "CrowsnestProdAppDegraded"), []Alert{
		{
			// Live drift only: a release waiting for its manual sync (a
			// merge, a changed source, Git ahead of a rollback) is
			// CrowsnestProdReleaseWaiting's. Quiet for deleting apps and
			// apps a window holds; terminations and dry runs change
			// nothing live; two replicas aggregate to one alert.
			Name:  "CrowsnestProdDrift",
			Group: GroupProd,
			Expr: func(m string) string {
				return perApp(selector("crowsnest_app_live_drift_since_timestamp_seconds", m)+` > 0`) + notDeleting(m) + notHeld(m)
			},
			For:         5 * time.Minute,
			Variants:    []Variant{{Prod, Critical}},
			Summary:     "Production differs from what was synced",
			Description: "The live state of " + appDescription + " has differed for 5 minutes from the revisions and sources last synced (a hand edit, a deleted resource): prod syncs only by hand.",
			Check:       func(a AppState) bool { return a.LiveDrift && !a.Deleting && !a.HeldByWindow },
		},
		{
			// A release (a merge, a changed source, Git ahead of a
			// rollback) waiting for prod's manual sync: expected for a
			// while, a warning once it has waited too long. The wait is
			// the for (chart: prometheusRule.overrides). Quiet for
			// deleting apps and apps a window holds (a freeze holds
			// releases); two replicas aggregate to one alert.
			Name:  "CrowsnestProdReleaseWaiting",
			Group: GroupProd,
			Expr: func(m string) string {
				return perApp(selector("crowsnest_app_awaiting_sync_since_timestamp_seconds", m)+` > 0`) + notDeleting(m) + notHeld(m)
			},
			For:         ReleaseWaitingFor,
			Variants:    []Variant{{Prod, Warning}},
			Summary:     "Production release waiting for its sync",
			Description: appDescription + " has waited a day for its sync: Git (or the app's source) moved from what was last synced, and prod syncs only by hand. Approve and sync, roll Git back, or close the change.",
			// No Check: its for of a day is Prometheus's to hold (the
			// pager keeps no state across restarts that long).
		},
		{
			Name:  "CrowsnestDriftNotHealed",
			Group: GroupDrift,
			Expr: func(m string) string {
				return perApp(`crowsnest_app_sync_status{status="OutOfSync"`+m+`} == 1`, "status") +
					` and on (` + appKey + `) crowsnest_app_info{autosync="true"` + m + `}` +
					notDeleting(m) + notHeld(m) + notRolledOut(m)
			},
			For:         15 * time.Minute,
			Variants:    []Variant{{NonProd, Warning}},
			Summary:     "Auto-sync did not heal drift",
			Description: appDescription + " auto-syncs but has been OutOfSync for 15 minutes.",
			Check: func(a AppState) bool {
				return a.SyncStatus == "OutOfSync" && a.AutoSync && !a.Deleting && !a.HeldByWindow && !a.HeldByRollout
			},
		},
		{
			Name:  "CrowsnestSyncStuck",
			Group: GroupStuck,
			Expr: func(m string) string {
				return perApp(`crowsnest_app_operation_phase{phase=~"Pending|Running|Terminating"`+m+`} == 1`, "phase")
			},
			For:      30 * time.Minute,
			Variants: []Variant{{AllEnvs, Warning}},
			Summary:  "Argo CD sync requested or running for 30 minutes",
			Description: "A sync operation of " + appDescription + " has been requested or running for 30 minutes:" +
				" a hook or a resource's health is holding it, or no application controller is picking it up" +
				" (controller down or wedged, or the app's cluster in no shard).",
			Check: func(a AppState) bool {
				return a.Phase == "Pending" || a.Phase == "Running" || a.Phase == "Terminating"
			},
		},
		{
			// A sync retrying past RetryingThreshold: a retry limit
			// above it or none (limit < 0), and every attempt failing.
			// Quiet for terminated syncs, dry runs (no phase change) and
			// syncs a window holds (they wait, they do not retry: the
			// series exists only while Running), deleting apps; two
			// replicas aggregate to one alert.
			Name:  "CrowsnestSyncRetrying",
			Group: GroupSync,
			Expr: func(m string) string {
				return perApp(selector("crowsnest_app_operation_retries", m)+fmt.Sprintf(` >= %d`, RetryingThreshold)) + notDeleting(m)
			},
			For:      5 * time.Minute,
			Variants: []Variant{{AllEnvs, Warning}},
			Summary:  "Argo CD sync retrying without end",
			Description: "The running sync of " + appDescription + fmt.Sprintf(" has been retried %d times or more", RetryingThreshold) +
				" and still retries: its retry limit is above that or unlimited, and every attempt fails. Argo CD's message says why.",
			Check: func(a AppState) bool { return a.Phase == "Running" && a.Retries >= RetryingThreshold && !a.Deleting },
		},
		{
			// Self-heal and something else fighting over the live state:
			// auto-sync repairs the drift, the other writer reverts it.
			// Quiet for one or two repairs an hour, dry runs and manual
			// syncs (not self-heals), deleting apps; two replicas count
			// the same syncs (max).
			Name:  "CrowsnestSelfHealLoop",
			Group: GroupHealth,
			Expr: func(m string) string {
				return perApp(`increase(`+selector("crowsnest_app_self_heals_total", m)+`[`+promDuration(SelfHealLoopWindow)+`]) >= `+fmt.Sprint(SelfHealLoopCount)) + notDeleting(m)
			},
			Variants: []Variant{{AllEnvs, Warning}},
			Summary:  "Argo CD self-heal fighting another writer",
			Description: "Argo CD self-healed " + appDescription + fmt.Sprintf(" %d times or more in %s:", SelfHealLoopCount, promDuration(SelfHealLoopWindow)) +
				" something (a person, an operator, an HPA, a mutating webhook) keeps changing what Argo CD applies.",
			// No Check: it counts self-heals over a window, which
			// AppState does not carry.
		},
		{
			// Argo CD stopped comparing an app while it compares others:
			// a stuck refresh, a shard that lost the app's cluster.
			// Quiet when no app was compared lately (the controller is
			// down: CrowsnestWatchStale's and Argo CD's own alerts),
			// for deleting apps; two replicas aggregate to one alert.
			Name:  "CrowsnestAppNotReconciled",
			Group: GroupReconcile,
			Expr: func(m string) string {
				reconciled := selector("crowsnest_app_reconciled_timestamp_seconds", m)
				return `time() - ` + perApp(reconciled+fmt.Sprintf(` < time() - %d`, int(NotReconciledAfter.Seconds()))) +
					` and on (cluster) count by (cluster) (` + reconciled + ` > time() - 900)` + notDeleting(m)
			},
			For:      10 * time.Minute,
			Variants: []Variant{{AllEnvs, Warning}},
			Summary:  "Argo CD stopped reconciling an app",
			Description: "Argo CD has not compared " + appDescription + " with Git for over " + promDuration(NotReconciledAfter) +
				" (status.reconciledAt) while it compares other apps: its state on every dashboard is stale.",
			// No Check: it judges the time since reconciledAt.
		},
		{
			Name:  "CrowsnestDeletionStuck",
			Group: GroupStuck,
			Expr: func(m string) string {
				return perApp(`time() - `+selector("crowsnest_app_deletion_timestamp_seconds", m)) + ` > 1800`
			},
			For:         5 * time.Minute,
			Variants:    []Variant{{AllEnvs, Warning}},
			Summary:     "Argo CD app deleting for 30 minutes",
			Description: appDescription + " has been deleting for more than 30 minutes: a finalizer, a PostDelete hook or an unreachable cluster is holding it.",
			// No Check: it judges the time since the deletionTimestamp,
			// which AppState does not carry.
		},
		{
			// No false page from what else makes it true: a deleting app is
			// dropped (notDeleting); two replicas aggregate to one alert;
			// terminations, dry runs and sync windows concern syncs, not
			// hydration; a retried failure keeps the lag running (it is
			// the lag's start, not the current operation's).
			Name:  "CrowsnestHydrationLagging",
			Group: GroupStuck,
			Expr: func(m string) string {
				return perApp(`time() - `+selector("crowsnest_app_hydration_lagging_since_timestamp_seconds", m)) + ` > 1800` + notDeleting(m)
			},
			For:      5 * time.Minute,
			Variants: []Variant{{AllEnvs, Warning}},
			Summary:  "Argo CD Source Hydrator behind the dry source for 30 minutes",
			Description: "The hydrated branch of " + appDescription + " has lagged its dry source for more than 30 minutes: hydration fails or hangs," +
				" so new commits do not reach the cluster while the app still shows Synced (to the last hydrated commit).",
			// No Check: it judges time since the lag began, which
			// AppState does not carry.
		},
		{
			Name:  "CrowsnestSyncSlow",
			Group: GroupDuration,
			Expr: func(m string) string {
				// The max merges the copies of the HA replicas of one
				// shard (the histogram carries a shard label only with
				// --total-shards > 1); the sum adds the shards, whose
				// operations are disjoint.
				return `(` + perApp(selector("crowsnest_app_last_sync_duration_seconds", m)) +
					` > on (cluster, project, env) group_left 2 * histogram_quantile(0.9, sum by (cluster, project, env, le) (max by (cluster, shard, project, env, le) (rate(crowsnest_sync_duration_seconds_bucket{result="Succeeded"` + m + `}[1d])))))` +
					` > 120`
			},
			Variants:    []Variant{{AllEnvs, Warning}},
			Summary:     "Argo CD sync much slower than usual",
			Description: "The last sync of " + appDescription + " took more than twice the 90th percentile of its project and env over the last day (and over 2 minutes).",
		},
		{
			Name:  "CrowsnestAppUnknown",
			Group: GroupUnknown,
			Expr: func(m string) string {
				return perApp(`crowsnest_app_sync_status{status="Unknown"`+m+`} == 1`, "status") +
					` or ` + perApp(`crowsnest_app_health_status{status="Unknown"`+m+`} == 1`, "status")
			},
			For:         15 * time.Minute,
			Variants:    []Variant{{AllEnvs, Warning}},
			Summary:     "Argo CD cannot tell an app's state",
			Description: "Argo CD has reported the sync or health status of " + appDescription + " as Unknown for 15 minutes: usually a failed manifest generation or comparison.",
			Check:       func(a AppState) bool { return a.SyncStatus == "Unknown" || a.Health == "Unknown" },
		},
		{
			Name:  "CrowsnestPolicyViolated",
			Group: GroupPolicy,
			Expr: func(m string) string {
				// The policies of each env come from crowsnest's
				// configuration (default: the deployment model's).
				return perApp(selector("crowsnest_app_policy_violation", m) + ` == 1`)
			},
			For:         10 * time.Minute,
			Variants:    []Variant{{AllEnvs, Warning}},
			Summary:     "Argo CD app breaks a GitOps policy",
			Description: appDescription + " breaks the {{ $labels.policy }} policy of its environment (by default: prod syncs by hand with images pinned by digest; dev and stage auto-sync with self-heal and prune).",
		},
		{
			// Fleet-level (by env and project), on the DORA recording
			// rules: two replicas, restarts, apps deleted and re-created
			// and few deployments are dealt with in the records and the
			// minimum count (docs/runbook.md, alerts/tests/dora.test.yaml).
			Name:  "CrowsnestChangeFailureRateHigh",
			Group: DORAGroup,
			Expr: func(m string) string {
				return selector(RecordChangeFailureRate, m) + fmt.Sprintf(" > %g", ChangeFailureRateThreshold) +
					" and on (cluster, env, project) " + selector(RecordDeployments7d, m) + fmt.Sprintf(" >= %d", ChangeFailureRateMinDeployments)
			},
			For:         time.Hour,
			Variants:    []Variant{{Prod, Warning}},
			Summary:     "Change failure rate high over 7 days",
			Description: changeFailureRateDescription(),
		},
		{
			Name:  "CrowsnestDown",
			Group: GroupSelf,
			// A target that fails, the whole job gone, or (sharded) a
			// shard with no process serving it: a shard's pod that was
			// never scheduled has no target to fail, and absent() sees
			// only every target gone.
			Expr: func(string) string {
				return `up{job="crowsnest"} == 0 or absent(up{job="crowsnest"})` +
					` or count by (cluster) (max by (cluster, shard) (crowsnest_shard_info)) < max by (cluster) (crowsnest_total_shards)`
			},
			For:         5 * time.Minute,
			Variants:    []Variant{{AllEnvs, Warning}},
			Summary:     "crowsnest is down",
			Description: "Prometheus has not scraped crowsnest for 5 minutes (job crowsnest), or fewer of its shards serve than --total-shards: Argo CD apps are not watched.",
		},
		{
			Name:  "CrowsnestWatchStale",
			Group: GroupSelf,
			Expr: func(string) string {
				return `crowsnest_source_up == 0 or time() - crowsnest_source_last_event_timestamp_seconds > 900`
			},
			For:         5 * time.Minute,
			Variants:    []Variant{{AllEnvs, Warning}},
			Summary:     "crowsnest's watch of Argo CD is stale",
			Description: "crowsnest's source {{ $labels.source }} has failed or has had no event for 15 minutes (Argo CD refreshes every app every 3 minutes): its metrics are stale.",
		},
		{
			Name:  "CrowsnestClusterDown",
			Group: GroupSelf,
			// Per destination cluster of each installation (cluster),
			// over crowsnest's replicas and shards (each watches every
			// spoke): one alert per cluster, only when none reaches it.
			Expr: func(string) string {
				return `max by (cluster, dest_server, dest_cluster) (crowsnest_cluster_up) == 0`
			},
			For:         10 * time.Minute,
			Variants:    []Variant{{AllEnvs, Warning}},
			Summary:     "crowsnest cannot read a destination cluster",
			Description: "crowsnest has not reached the API server of cluster {{ $labels.dest_cluster }} ({{ $labels.dest_server }}) for 10 minutes, or cannot authenticate to it: the workload series, events and hook waves of apps deployed there are stale or missing.",
		},
	})
}

// Rule is one Prometheus rule: an alerting rule (Alert set) or a
// recording rule (Record set).
type Rule struct {
	Record      string            `yaml:"record,omitempty" json:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty" json:"alert,omitempty"`
	Expr        string            `yaml:"expr" json:"expr"`
	For         string            `yaml:"for,omitempty" json:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// Rules renders the alerts as Prometheus rules, one per variant, with the
// for durations scaled by forScale (1 for the real thing; tests shorten
// them), for prod named ProdEnv, linking to links.
func Rules(alerts []Alert, forScale float64, links Links) []Rule {
	return RulesFor(alerts, forScale, ProdEnv, links)
}

// RulesFor is Rules with prod, a regular expression, naming the
// environments that page.
func RulesFor(alerts []Alert, forScale float64, prod string, links Links) []Rule {
	var out []Rule
	for i := range alerts {
		a := &alerts[i]
		for _, v := range a.Variants {
			r := Rule{
				Alert:  a.Name,
				Expr:   a.Expr(v.Scope.matcher(prod)),
				Labels: map[string]string{"severity": string(v.Severity)},
				Annotations: map[string]string{
					"summary":     a.Summary,
					"description": a.Description,
					"runbook_url": RunbookURL + "#" + a.Anchor(),
				},
			}
			for k, v := range linkAnnotations(a, links) {
				r.Annotations[k] = v
			}
			if d := time.Duration(float64(a.For) * forScale); d > 0 {
				r.For = promDuration(d)
			}
			out = append(out, r)
		}
	}
	return out
}

// promDuration formats d as a Prometheus duration.
func promDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
