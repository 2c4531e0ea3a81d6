package rules

import (
	"fmt"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
)

// DORA's four keys as recording rules, per env and project, over the
// aggregated deployment and change failure counters and the aggregated
// lead time and recovery histograms (docs/dora.md).
//
// Every crowsnest replica counts the same deployments and observes the
// same histograms, and only the scrape's target labels (instance, pod...)
// tell the copies apart. So each expression first takes the max over the
// replicas of each series, by the labels that identify it (project, env,
// the counter's result or reason; the histogram's own labels and le), then
// sums: summing the copies would double the counts (and so the deployments
// the alert asks for at least). A quantile alone would not move, since
// doubling every bucket keeps it; the max also takes the most complete
// count when a replica restarted in the window (it counted fewer, never
// more). A restart resets a replica's counters, which increase() handles.
//
// Sharded (--total-shards > 1), the aggregated series carry the shard's
// number in a shard label, kept by the max (which then merges only the
// replicas of one shard) and summed over after it. Without the label
// nothing changes.

// DORAGroup is the rule group of the DORA recording rules and of the alert
// on them.
const DORAGroup = "crowsnest-dora"

// doraInterval is how often DORAGroup is evaluated. Its records change
// slowly (windows of a day and a week) and its increase over 7 days reads
// every sample of a week of every app's deployment and failure counters,
// 5 series per app and replica: 5 minutes costs a fifth of 1 minute. The
// alert evaluated in the group reads the records of the same evaluation,
// so its for never sees a gap; a dashboard sees each record's sample for the
// 5 minutes of Prometheus' lookback, until the next evaluation writes one.
const doraInterval = 5 * time.Minute

// Names of the recorded series (level:metric:operations), each by env and
// project.
const (
	// RecordDeployments1d is the number of deployments (succeeded and
	// failed; rollbacks are not counted) in the last day.
	RecordDeployments1d = "crowsnest:deployments:increase1d"
	// RecordDeployments7d is the number of deployments (succeeded and
	// failed) in the last 7 days: the change failure rate's denominator.
	RecordDeployments7d = "crowsnest:deployments:increase7d"
	// RecordChangeFailures7d is the number of failed changes (every reason)
	// in the last 7 days: the change failure rate's numerator.
	RecordChangeFailures7d = "crowsnest:change_failures:increase7d"
	// RecordChangeFailureRate is failed changes per deployment over 7
	// days, at most 1; absent without deployments.
	RecordChangeFailureRate = "crowsnest:change_failure_rate:ratio_7d"
	// RecordLeadTimeP50 and RecordLeadTimeP90 are the median and 90th
	// percentile of the change lead time until deployed, over 7 days.
	RecordLeadTimeP50 = "crowsnest:change_lead_time_seconds:p50_7d"
	RecordLeadTimeP90 = "crowsnest:change_lead_time_seconds:p90_7d"
	// RecordRecoveryP50 is the median time to recover from a failed
	// change, over 7 days.
	RecordRecoveryP50 = "crowsnest:deployment_recovery_seconds:p50_7d"
	// RecordDeploymentsSampled and RecordChangeFailuresSampled are the
	// aggregated counters, every series as scraped (each replica's), one
	// sample per evaluation of the group (doraInterval): what the
	// increases over a day and a week read.
	RecordDeploymentsSampled    = "crowsnest:deployments_total:sampled"
	RecordChangeFailuresSampled = "crowsnest:change_failures_total:sampled"
)

// The change failure rate alert fires above this rate over 7 days, with at
// least this many deployments in them (fewer say little: 1 failure of 2 is
// 50%).
const (
	ChangeFailureRateThreshold      = 0.3
	ChangeFailureRateMinDeployments = 5
)

// Recording is one recording rule.
type Recording struct {
	// Record is the name of the series it records.
	Record string
	// Expr is its PromQL expression.
	Expr string
}

// RecordingGroup is a rule group of recording rules, rendered after the
// alert groups (AlertGroups), with the alerts whose Group names it after its records.
type RecordingGroup struct {
	Name string
	// Interval is how often Prometheus evaluates the group.
	Interval   time.Duration
	Recordings []Recording
}

// deploymentResults matches the results counted as deployments: a
// rollback is the remedy of a failed change, not a change.
var deploymentResults = `result=~"` + model.DeploymentSucceeded + `|` + model.DeploymentFailed + `"`

// fleetIncrease is the increase over window of an aggregated counter
// (crowsnest_deployments_total, crowsnest_change_failures_total: by
// project, env and label), by env and project. The max merges the copies
// of the HA replicas of one shard (the counters carry a shard label only
// with --total-shards > 1), the sum adds the shards, whose apps are
// disjoint, and the label's values. Every aggregation keeps cluster, the
// label a user's relabeling or a global view (Thanos, Mimir) gives each
// installation, so that two installations never add up; without it
// nothing changes.
//
// The per-app counters (crowsnest_app_deployments_total...) count the
// same, but an increase over 7 days of every app's series reads every
// sample of a week of 50,000 series at 10,000 apps: minutes an evaluation
// (docs/scale.md). These are a few series per project and env.
func fleetIncrease(metric, matchers, label, window string) string {
	return `sum by (cluster, env, project) (max by (cluster, shard, project, env, ` + label + `) (increase(` + metric + matchers + `[` + window + `])))`
}

// quantile7d is the q-quantile over 7 days of an aggregated histogram with
// labels (besides le) whose series matchers selects, by env and project.
// With no observation in the window histogram_quantile gives NaN, which
// the comparison drops: no record rather than NaN.
func quantile7d(q float64, histogram, matchers, labels string) string {
	return fmt.Sprintf(`histogram_quantile(%g, sum by (cluster, env, project, le) (max by (cluster, shard, %s, le) (increase(%s_bucket%s[7d])))) >= 0`,
		q, labels, histogram, matchers)
}

// RecordingGroups returns the recording rule groups: DORA's four keys.
func RecordingGroups() []RecordingGroup {
	const leadTime = "crowsnest_change_lead_time_seconds"
	const leadTimeUntil = `{until="deployed"}`
	return []RecordingGroup{{
		Name:     DORAGroup,
		Interval: doraInterval,
		Recordings: []Recording{
			// A week of the counters as scraped (every 30 s) is 20,160
			// samples a series: 18 ms an evaluation per project and env
			// (docs/scale.md). Their copy at the group's step is a tenth
			// of that; the increases read it, and merge the replicas as
			// before. It is evaluated first, so they read this
			// evaluation's sample.
			{RecordDeploymentsSampled, "crowsnest_deployments_total"},
			{RecordChangeFailuresSampled, "crowsnest_change_failures_total"},
			{RecordDeployments1d, fleetIncrease(RecordDeploymentsSampled, "{"+deploymentResults+"}", "result", "1d")},
			{RecordDeployments7d, fleetIncrease(RecordDeploymentsSampled, "{"+deploymentResults+"}", "result", "7d")},
			{RecordChangeFailures7d, fleetIncrease(RecordChangeFailuresSampled, "", "reason", "7d")},
			// No failure series (none yet) with deployments is a rate of
			// 0; no deployment is no rate. A rollback can undo a
			// deployment older than the window: at most 1.
			{RecordChangeFailureRate, `clamp_max((` + RecordChangeFailures7d + ` or 0 * ` + RecordDeployments7d + `) / (` + RecordDeployments7d + ` > 0), 1)`},
			{RecordLeadTimeP50, quantile7d(0.5, leadTime, leadTimeUntil, "project, env, until")},
			{RecordLeadTimeP90, quantile7d(0.9, leadTime, leadTimeUntil, "project, env, until")},
			{RecordRecoveryP50, quantile7d(0.5, "crowsnest_deployment_recovery_seconds", "", "project, env")},
		},
	}}
}

// Rules renders the group's recording rules.
func (g *RecordingGroup) Rules() []Rule {
	out := make([]Rule, 0, len(g.Recordings))
	for _, r := range g.Recordings {
		out = append(out, Rule{Record: r.Record, Expr: r.Expr})
	}
	return out
}

// countOf is an annotation template printing the value of the record for
// the alert's env and project, rounded (increase() extrapolates).
func countOf(record string) string {
	return `{{ with printf "` + record + `{env=%q,project=%q}" $labels.env $labels.project | query }}{{ . | first | value | printf "%.0f" }}{{ end }}`
}

// changeFailureRateDescription is the description of
// CrowsnestChangeFailureRateHigh: the rate, and the failures and
// deployments it comes from.
func changeFailureRateDescription() string {
	return "{{ $value | humanizePercentage }} of the deployments of project {{ $labels.project }} in env {{ $labels.env }} in the last 7 days were failed changes (" +
		countOf(RecordChangeFailures7d) + " of " + countOf(RecordDeployments7d) + "): their sync failed, the app turned Degraded within the failure window, or a rollback undid them." +
		fmt.Sprintf(" The threshold is %g%% of at least %d deployments.", ChangeFailureRateThreshold*100, ChangeFailureRateMinDeployments)
}
