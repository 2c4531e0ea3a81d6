package rules

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest/crowsnest/internal/rules/promtest"

	"gopkg.in/yaml.v3"
)

// The promtool tests of the DORA recording rules and of
// CrowsnestChangeFailureRateHigh, rendered into alerts/tests/dora.test.yaml
// (go test ./internal/rules -update) and run by `promtool test rules
// alerts/tests/*.yaml` (make rules). They are evaluated every 5 minutes,
// the group's interval (promtool evaluates every group at the file's
// evaluation_interval), on series scraped every 5 minutes.

const doraTestFile = "alerts/tests/dora.test.yaml"

// doraStep is the evaluation interval of the tests and the step of their
// series.
const doraStep = 5 * time.Minute

const week = 7 * 24 * time.Hour

// pt is where a series' value changes: from time at on, the value v, or no
// sample (gone: crowsnest not scraped), or a staleness marker then no
// sample (ended: the series went away, as when crowsnest's target is
// removed).
type pt struct {
	at    time.Duration
	v     float64
	gone  bool
	ended bool
}

func val(at time.Duration, v float64) pt { return pt{at: at, v: v} }
func gone(at time.Duration) pt           { return pt{at: at, gone: true} }
func ended(at time.Duration) pt          { return pt{at: at, ended: true} }

// timeline renders the values of a series from 0 to end, one every
// doraStep: 0 until the first point, then each point's value from its time
// on, in promtool's notation.
func timeline(end time.Duration, pts ...pt) string {
	n := int(end/doraStep) + 1
	tokens := make([]string, n)
	cur := "0"
	next := 0
	for i := range n {
		t := time.Duration(i) * doraStep
		for next < len(pts) && pts[next].at <= t {
			p := pts[next]
			switch {
			case p.ended:
				cur = "stale"
			case p.gone:
				cur = "_"
			default:
				cur = strconv.FormatFloat(p.v, 'g', -1, 64)
			}
			next++
		}
		tokens[i] = cur
		if cur == "stale" {
			cur = "_" // one marker, then nothing
		}
	}
	var out []string
	for i := 0; i < n; {
		j := i
		for j < n && tokens[j] == tokens[i] {
			j++
		}
		switch k := j - i; {
		case k == 1 || tokens[i] == "stale":
			for range k {
				out = append(out, tokens[i])
			}
		case tokens[i] == "_":
			out = append(out, fmt.Sprintf("_x%d", k)) // _xN is N samples
		default:
			out = append(out, fmt.Sprintf("%sx%d", tokens[i], k-1)) // vxN is N+1
		}
		i = j
	}
	return strings.Join(out, " ")
}

// doraSeries is a series of a crowsnest replica (1 or 2) for the apps of
// project in env.
func doraSeries(metric, project, env string, replica int, extra ...string) string {
	l := fmt.Sprintf(`project=%q,env=%q,job="crowsnest",instance="crowsnest-%d:9829"`, project, env, replica)
	for i := 0; i+1 < len(extra); i += 2 {
		l += fmt.Sprintf(",%s=%q", extra[i], extra[i+1])
	}
	return metric + "{" + l + "}"
}

// envHistory is the deployment and failure counters one replica serves for
// the apps of a project in an env: each result and reason from 0, changing
// at its points (none: 0 throughout).
type envHistory struct {
	project, env                  string
	replica                       int
	end                           time.Duration
	succeeded, failed, rolledBack []pt
	// The change failures by reason.
	syncFailed, degraded, rolledBackFailure []pt
	// noFailureSeries: no failure counter is served.
	noFailureSeries bool
}

func (h envHistory) series() []series {
	var out []series
	add := func(metric, label, value string, pts []pt) {
		out = append(out, series{doraSeries(metric, h.project, h.env, h.replica, label, value), timeline(h.end, pts...)})
	}
	add("crowsnest_deployments_total", "result", "succeeded", h.succeeded)
	add("crowsnest_deployments_total", "result", "failed", h.failed)
	add("crowsnest_deployments_total", "result", "rolled_back", h.rolledBack)
	if !h.noFailureSeries {
		add("crowsnest_change_failures_total", "reason", "sync_failed", h.syncFailed)
		add("crowsnest_change_failures_total", "reason", "degraded", h.degraded)
		add("crowsnest_change_failures_total", "reason", "rolled_back", h.rolledBackFailure)
	}
	return out
}

// replicas are h as each of the replicas given serves it.
func (h envHistory) replicas(rs ...int) []series {
	var out []series
	for _, r := range rs {
		h.replica = r
		out = append(out, h.series()...)
	}
	return out
}

// histogram is the buckets of an aggregated histogram one replica serves
// (labels: its own, besides le), 0 until at, then the cumulative counts.
func histogram(metric string, labels []string, replica int, end, at time.Duration, les []string, counts []float64) []series {
	var out []series
	for i, le := range les {
		l := fmt.Sprintf(`job="crowsnest",instance="crowsnest-%d:9829",le=%q`, replica, le)
		for j := 0; j+1 < len(labels); j += 2 {
			l += fmt.Sprintf(",%s=%q", labels[j], labels[j+1])
		}
		out = append(out, series{metric + "_bucket{" + l + "}", timeline(end, val(at, counts[i]))})
	}
	return out
}

// envProject is one recorded series' labels and expected value.
type envProject struct {
	env, project string
	v            float64
}

// doraValue expects the samples of a record at a time (none: no sample).
type doraValue struct {
	at     time.Duration
	record string
	want   []envProject
}

// doraExprValue expects the samples of expr, over record, by env and
// project, at a time.
type doraExprValue struct {
	at           time.Duration
	record, expr string
	want         []envProject
}

// cfrFiring is a CrowsnestChangeFailureRateHigh alert expected firing, with
// its description's values as Prometheus prints them.
type cfrFiring struct {
	env, project          string
	rate                  string // humanizePercentage
	failures, deployments int
}

// doraAlertCheck expects the CrowsnestChangeFailureRateHigh alerts firing
// at a time (none: quiet).
type doraAlertCheck struct {
	at     time.Duration
	firing []cfrFiring
}

type doraCase struct {
	series []series
	values []doraValue
	exprs  []doraExprValue
	alerts []doraAlertCheck
}

// cfrDescription is the description expected for f.
func cfrDescription(f cfrFiring) string {
	return fmt.Sprintf("%s of the deployments of project %s in env %s in the last 7 days were failed changes (%d of %d):"+
		" their sync failed, the app turned Degraded within the failure window, or a rollback undid them."+
		" The threshold is 30%% of at least 5 deployments.", f.rate, f.project, f.env, f.failures, f.deployments)
}

func doraCases() []doraCase {
	h := time.Hour
	d := 24 * time.Hour
	m := time.Minute
	return []doraCase{
		{ // fires in prod above 30% of at least 5 deployments (two replicas: one alert, counted once); quiet at 20%, in dev, and once the failures leave the 7 days
			series: slices.Concat(
				// 10 deployments (7 succeeded, 3 failed; a rollback is no
				// deployment), 4 failed changes: 40%.
				envHistory{project: "shop", env: "prod", end: week + 2*h,
					succeeded: []pt{val(h, 7)}, failed: []pt{val(h, 3)}, rolledBack: []pt{val(h, 1)},
					syncFailed: []pt{val(h, 3)}, rolledBackFailure: []pt{val(h, 1)}}.replicas(1, 2),
				// 5 deployments, 2 failed: 40% of just enough.
				envHistory{project: "pay", env: "prod", replica: 1, end: week + 2*h,
					succeeded: []pt{val(h, 3)}, failed: []pt{val(h, 2)}, syncFailed: []pt{val(h, 2)}}.series(),
				// 10 deployments, 2 failed: 20%.
				envHistory{project: "web", env: "prod", replica: 1, end: week + 2*h,
					succeeded: []pt{val(h, 8)}, failed: []pt{val(h, 2)}, syncFailed: []pt{val(h, 2)}}.series(),
				// 50% in dev: not prod.
				envHistory{project: "shop", env: "dev", replica: 1, end: week + 2*h,
					succeeded: []pt{val(h, 5)}, failed: []pt{val(h, 5)}, syncFailed: []pt{val(h, 5)}}.series(),
			),
			values: []doraValue{
				{2 * h, RecordDeployments7d, []envProject{{"dev", "shop", 10}, {"prod", "pay", 5}, {"prod", "shop", 10}, {"prod", "web", 10}}},
				{2 * h, RecordChangeFailures7d, []envProject{{"dev", "shop", 5}, {"prod", "pay", 2}, {"prod", "shop", 4}, {"prod", "web", 2}}},
				{2 * h, RecordChangeFailureRate, []envProject{{"dev", "shop", 0.5}, {"prod", "pay", 0.4}, {"prod", "shop", 0.4}, {"prod", "web", 0.2}}},
				// A week after, the deployments have left the window: no rate.
				{week + h, RecordDeployments7d, []envProject{{"dev", "shop", 0}, {"prod", "pay", 0}, {"prod", "shop", 0}, {"prod", "web", 0}}},
				{week + h, RecordChangeFailureRate, nil},
			},
			alerts: []doraAlertCheck{
				{0, nil},
				{h + 55*m, nil}, // pending for an hour
				{2 * h, []cfrFiring{{"prod", "pay", "40%", 2, 5}, {"prod", "shop", "40%", 4, 10}}},
				{week + 55*m, []cfrFiring{{"prod", "pay", "40%", 2, 5}, {"prod", "shop", "40%", 4, 10}}},
				{week + h, nil},
			},
		},
		{ // few deployments: 3 of 3 failed (two failed syncs, a deployment rolled back) is 100% but stays quiet
			series: envHistory{project: "shop", env: "prod", replica: 1, end: 6 * h,
				succeeded: []pt{val(2*h, 1)}, failed: []pt{val(h, 2)}, rolledBack: []pt{val(3*h, 1)},
				syncFailed: []pt{val(h, 2)}, rolledBackFailure: []pt{val(3*h, 1)}}.series(),
			values: []doraValue{
				{4 * h, RecordDeployments7d, []envProject{{"prod", "shop", 3}}},
				{4 * h, RecordChangeFailureRate, []envProject{{"prod", "shop", 1}}},
			},
			alerts: []doraAlertCheck{{5 * h, nil}, {6 * h, nil}},
		},
		{ // two replicas serve the same 4 deployments, 2 failed: 4, not 8 (which would reach the minimum of 5)
			series: envHistory{project: "shop", env: "prod", end: 3 * h,
				succeeded: []pt{val(h, 2)}, failed: []pt{val(h, 2)}, syncFailed: []pt{val(h, 2)}}.replicas(1, 2),
			values: []doraValue{
				{2 * h, RecordDeployments7d, []envProject{{"prod", "shop", 4}}},
				{2 * h, RecordDeployments1d, []envProject{{"prod", "shop", 4}}},
				{2 * h, RecordChangeFailures7d, []envProject{{"prod", "shop", 2}}},
				{2 * h, RecordChangeFailureRate, []envProject{{"prod", "shop", 0.5}}},
			},
			// The sampled counters keep both replicas' copies (2
			// succeeded, 2 failed and 2 sync failures each).
			exprs: []doraExprValue{
				{2 * h, RecordDeploymentsSampled, "sum by (env, project) (" + RecordDeploymentsSampled + ")", []envProject{{"prod", "shop", 8}}},
				{2 * h, RecordChangeFailuresSampled, "sum by (env, project) (" + RecordChangeFailuresSampled + ")", []envProject{{"prod", "shop", 4}}},
			},
			alerts: []doraAlertCheck{{3 * h, nil}},
		},
		{ // a restart resets the counters (and crowsnest is not scraped meanwhile): 10 deployments, 2 failed, then 2 more: 2 of 12
			series: envHistory{project: "shop", env: "prod", replica: 1, end: 6 * h,
				succeeded: []pt{val(h, 10), gone(3 * h), val(3*h+15*m, 0), val(4*h, 2)},
				failed:    []pt{gone(3 * h), val(3*h+15*m, 0)}, rolledBack: []pt{gone(3 * h), val(3*h+15*m, 0)},
				degraded:   []pt{val(h+30*m, 2), gone(3 * h), val(3*h+15*m, 0)},
				syncFailed: []pt{gone(3 * h), val(3*h+15*m, 0)}, rolledBackFailure: []pt{gone(3 * h), val(3*h+15*m, 0)}}.series(),
			values: []doraValue{
				{5 * h, RecordDeployments7d, []envProject{{"prod", "shop", 12}}},
				{5 * h, RecordChangeFailures7d, []envProject{{"prod", "shop", 2}}},
				{5 * h, RecordChangeFailureRate, []envProject{{"prod", "shop", 2.0 / 12}}},
			},
			alerts: []doraAlertCheck{{6 * h, nil}},
		},
		{ // two replicas, one restarted and missed a deployment while down: the other's complete count
			series: slices.Concat(
				envHistory{project: "shop", env: "prod", replica: 1, end: 6 * h,
					succeeded: []pt{val(h, 10), val(4*h, 12)}, degraded: []pt{val(h+30*m, 2)}}.series(),
				envHistory{project: "shop", env: "prod", replica: 2, end: 6 * h,
					succeeded: []pt{val(h, 10), gone(3 * h), val(4*h+30*m, 1)},
					failed:    []pt{gone(3 * h), val(4*h+30*m, 0)}, rolledBack: []pt{gone(3 * h), val(4*h+30*m, 0)},
					degraded:   []pt{val(h+30*m, 2), gone(3 * h), val(4*h+30*m, 0)},
					syncFailed: []pt{gone(3 * h), val(4*h+30*m, 0)}, rolledBackFailure: []pt{gone(3 * h), val(4*h+30*m, 0)}}.series(),
			),
			values: []doraValue{
				{5 * h, RecordDeployments7d, []envProject{{"prod", "shop", 12}}},
				{5 * h, RecordChangeFailureRate, []envProject{{"prod", "shop", 2.0 / 12}}},
			},
			alerts: []doraAlertCheck{{6 * h, nil}},
		},
		{ // crowsnest gone (its target removed: the series end) and back a day later (counters from 0): 3 deployments, 1 failed, then 3: 1 of 6
			series: envHistory{project: "shop", env: "prod", replica: 1, end: d + 3*h,
				succeeded: []pt{val(h, 2), ended(2 * h), val(d, 0), val(d+h, 3)},
				failed:    []pt{val(h, 1), ended(2 * h), val(d, 0)}, rolledBack: []pt{ended(2 * h), val(d, 0)},
				syncFailed: []pt{val(h, 1), ended(2 * h), val(d, 0)},
				degraded:   []pt{ended(2 * h), val(d, 0)}, rolledBackFailure: []pt{ended(2 * h), val(d, 0)}}.series(),
			values: []doraValue{
				{d + 2*h, RecordDeployments7d, []envProject{{"prod", "shop", 6}}},
				{d + 2*h, RecordChangeFailures7d, []envProject{{"prod", "shop", 1}}},
				{d + 2*h, RecordChangeFailureRate, []envProject{{"prod", "shop", 1.0 / 6}}},
			},
			alerts: []doraAlertCheck{{d + 3*h, nil}},
		},
		{ // above the threshold for half an hour only (more deployments dilute it): never fires
			series: envHistory{project: "shop", env: "prod", replica: 1, end: 3 * h,
				succeeded: []pt{val(h, 3), val(h+30*m, 8)}, failed: []pt{val(h, 2)}, syncFailed: []pt{val(h, 2)}}.series(),
			values: []doraValue{
				{h + 25*m, RecordChangeFailureRate, []envProject{{"prod", "shop", 0.4}}},
				{h + 30*m, RecordChangeFailureRate, []envProject{{"prod", "shop", 0.2}}},
			},
			alerts: []doraAlertCheck{{2*h + 5*m, nil}, {3 * h, nil}},
		},
		{ // deployments per day (rollbacks are none; two replicas count once); a rate of 0 without failure series; at most 1
			series: slices.Concat(
				envHistory{project: "shop", env: "prod", end: 2*d + 2*h,
					succeeded: []pt{val(h, 1), val(13*h, 2), val(d+h, 3)}, failed: []pt{val(20*h, 1)}, rolledBack: []pt{val(21*h, 1)},
					syncFailed: []pt{val(20*h, 1)}}.replicas(1, 2),
				envHistory{project: "shop", env: "dev", replica: 1, end: 2*d + 2*h,
					succeeded: []pt{val(h, 4)}}.series(),
				// No failure series at all: 0%, not nothing.
				envHistory{project: "noop", env: "prod", replica: 1, end: 2*d + 2*h,
					succeeded: []pt{val(h, 2)}, noFailureSeries: true}.series(),
				// More failed changes than deployments (a rollback can
				// undo one older than the window): 2 of 1, recorded as 1.
				envHistory{project: "old", env: "prod", replica: 1, end: 2*d + 2*h,
					succeeded: []pt{val(h, 1)}, rolledBack: []pt{val(h, 1)}, degraded: []pt{val(h, 1)}, rolledBackFailure: []pt{val(h, 1)}}.series(),
			),
			values: []doraValue{
				{d, RecordDeployments1d, []envProject{{"dev", "shop", 4}, {"prod", "noop", 2}, {"prod", "old", 1}, {"prod", "shop", 3}}},
				{d + 2*h, RecordDeployments1d, []envProject{{"dev", "shop", 0}, {"prod", "noop", 0}, {"prod", "old", 0}, {"prod", "shop", 3}}},
				{2*d + 2*h, RecordDeployments1d, []envProject{{"dev", "shop", 0}, {"prod", "noop", 0}, {"prod", "old", 0}, {"prod", "shop", 0}}},
				{d + 2*h, RecordDeployments7d, []envProject{{"dev", "shop", 4}, {"prod", "noop", 2}, {"prod", "old", 1}, {"prod", "shop", 4}}},
				{d, RecordChangeFailures7d, []envProject{{"dev", "shop", 0}, {"prod", "old", 2}, {"prod", "shop", 1}}},
				{d, RecordChangeFailureRate, []envProject{{"dev", "shop", 0}, {"prod", "noop", 0}, {"prod", "old", 1}, {"prod", "shop", 1.0 / 3}}},
			},
		},
		{ // lead time p50 and p90 until deployed: two replicas, one restarted with fewer observations; until="healthy" and a week without deployments are left out
			series: slices.Concat(
				histogram("crowsnest_change_lead_time_seconds", []string{"project", "shop", "env", "prod", "until", "deployed"}, 1, 3*h, h,
					[]string{"3600", "86400", "604800", "+Inf"}, []float64{2, 8, 10, 10}),
				histogram("crowsnest_change_lead_time_seconds", []string{"project", "shop", "env", "prod", "until", "deployed"}, 2, 3*h, h,
					[]string{"3600", "86400", "604800", "+Inf"}, []float64{1, 5, 6, 6}),
				histogram("crowsnest_change_lead_time_seconds", []string{"project", "shop", "env", "prod", "until", "healthy"}, 1, 3*h, h,
					[]string{"3600", "86400", "604800", "+Inf"}, []float64{0, 0, 10, 10}),
				histogram("crowsnest_change_lead_time_seconds", []string{"project", "shop", "env", "dev", "until", "deployed"}, 1, 3*h, h,
					[]string{"3600", "86400", "604800", "+Inf"}, []float64{0, 0, 0, 0}),
			),
			values: []doraValue{
				// 2 in the first hour, 6 within a day, 2 within a week:
				// the 5th is halfway through (1 h, 1 d], the 9th halfway
				// through (1 d, 7 d].
				{2 * h, RecordLeadTimeP50, []envProject{{"prod", "shop", 45000}}},
				{2 * h, RecordLeadTimeP90, []envProject{{"prod", "shop", 345600}}},
			},
		},
		{ // recovery p50 of two replicas; none once the recoveries leave the 7 days
			series: slices.Concat(
				histogram("crowsnest_deployment_recovery_seconds", []string{"project", "shop", "env", "prod"}, 1, week+2*h, h,
					[]string{"3600", "86400", "+Inf"}, []float64{2, 6, 6}),
				histogram("crowsnest_deployment_recovery_seconds", []string{"project", "shop", "env", "prod"}, 2, week+2*h, h,
					[]string{"3600", "86400", "+Inf"}, []float64{2, 6, 6}),
			),
			values: []doraValue{
				// 2 within an hour, 4 within a day: the 3rd is a quarter
				// through (1 h, 1 d].
				{2 * h, RecordRecoveryP50, []envProject{{"prod", "shop", 24300}}},
				{week + 2*h, RecordRecoveryP50, nil},
			},
		},
		{ // recovery p50 of two shards (--total-shards=2), each an HA pair: the shards' observations add up, each shard's replicas' do not
			series: slices.Concat(
				histogram("crowsnest_deployment_recovery_seconds", []string{"project", "shop", "env", "prod", "shard", "0"}, 1, 3*h, h,
					[]string{"3600", "86400", "+Inf"}, []float64{2, 2, 2}),
				histogram("crowsnest_deployment_recovery_seconds", []string{"project", "shop", "env", "prod", "shard", "0"}, 2, 3*h, h,
					[]string{"3600", "86400", "+Inf"}, []float64{2, 2, 2}),
				histogram("crowsnest_deployment_recovery_seconds", []string{"project", "shop", "env", "prod", "shard", "1"}, 3, 3*h, h,
					[]string{"3600", "86400", "+Inf"}, []float64{0, 4, 4}),
				histogram("crowsnest_deployment_recovery_seconds", []string{"project", "shop", "env", "prod", "shard", "1"}, 4, 3*h, h,
					[]string{"3600", "86400", "+Inf"}, []float64{0, 4, 4}),
			),
			values: []doraValue{
				// Shard 0: 2 within an hour; shard 1: 4 within a day.
				// Together the 3rd of 6 is a quarter through (1 h, 1 d];
				// a max over the shards would keep 4 and answer 3600.
				{2 * h, RecordRecoveryP50, []envProject{{"prod", "shop", 24300}}},
			},
		},
	}
}

// evalTime renders a test time.
func evalTime(d time.Duration) string {
	if d == 0 {
		return "0m"
	}
	return promDuration(d)
}

func renderDoraTests(t *testing.T) []byte {
	t.Helper()
	var alert *Alert
	for _, a := range Alerts() {
		if a.Name == "CrowsnestChangeFailureRateHigh" {
			alert = &a
		}
	}
	if alert == nil {
		t.Fatal("no alert CrowsnestChangeFailureRateHigh")
	}
	doc := struct {
		RuleFiles []string         `yaml:"rule_files"`
		Interval  string           `yaml:"evaluation_interval"`
		Tests     []promtest.Group `yaml:"tests"`
	}{RuleFiles: []string{"../crowsnest.rules.yaml"}, Interval: promDuration(doraStep)}
	valued := map[string]bool{}
	fires, quiet := false, false
	for _, c := range doraCases() {
		ty := promtest.Group{Interval: promDuration(doraStep)}
		for _, s := range c.series {
			ty.Input = append(ty.Input, promtest.Series(s))
		}
		for _, v := range c.values {
			et := promtest.ExprTest{Expr: v.record, EvalTime: evalTime(v.at), ExpSamples: []promtest.ExpSample{}}
			for _, w := range v.want {
				et.ExpSamples = append(et.ExpSamples, promtest.ExpSample{Labels: fmt.Sprintf("%s{env=%q,project=%q}", v.record, w.env, w.project), Value: w.v})
			}
			if len(v.want) > 0 {
				valued[v.record] = true
			}
			ty.ExprTest = append(ty.ExprTest, et)
		}
		for _, v := range c.exprs {
			et := promtest.ExprTest{Expr: v.expr, EvalTime: evalTime(v.at), ExpSamples: []promtest.ExpSample{}}
			for _, w := range v.want {
				et.ExpSamples = append(et.ExpSamples, promtest.ExpSample{Labels: fmt.Sprintf("{env=%q,project=%q}", w.env, w.project), Value: w.v})
			}
			if len(v.want) > 0 {
				valued[v.record] = true
			}
			ty.ExprTest = append(ty.ExprTest, et)
		}
		for _, a := range c.alerts {
			rt := promtest.AlertTest{EvalTime: evalTime(a.at), Alertname: alert.Name, ExpAlerts: []promtest.ExpAlert{}}
			for _, f := range a.firing {
				rt.ExpAlerts = append(rt.ExpAlerts, promtest.ExpAlert{
					Labels: map[string]string{"env": f.env, "project": f.project, "severity": string(Warning)},
					Annotations: map[string]string{
						"summary":       alert.Summary,
						"description":   cfrDescription(f),
						"runbook_url":   RunbookURL + "#" + alert.Anchor(),
						"dashboard_url": Links{}.DashboardURL(alert, map[string]string{"env": f.env, "project": f.project}),
					},
				})
			}
			fires = fires || len(a.firing) > 0
			quiet = quiet || len(a.firing) == 0
			ty.AlertTest = append(ty.AlertTest, rt)
		}
		doc.Tests = append(doc.Tests, ty)
	}
	for _, g := range RecordingGroups() {
		for _, r := range g.Recordings {
			if !valued[r.Record] {
				t.Errorf("%s: no promtool case checks its value", r.Record)
			}
		}
	}
	if !fires || !quiet {
		t.Errorf("%s: want cases where it fires and where it stays quiet", alert.Name)
	}
	var b bytes.Buffer
	b.WriteString("# Generated from internal/rules/dora_test.go by `go test ./internal/rules -update`. DO NOT EDIT.\n" +
		"# The DORA recording rules' values and CrowsnestChangeFailureRateHigh, evaluated every 5m (the group's interval).\n" +
		"# Run: promtool test rules alerts/tests/*.yaml\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDoraPromtoolTestsUpToDate(t *testing.T) {
	checkGenerated(t, doraTestFile, renderDoraTests(t))
}

// The timeline notation is promtool's: vxN is N+1 samples, _xN is N.
func TestTimeline(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{timeline(20 * time.Minute), "0x4"},
		{timeline(20*time.Minute, val(10*time.Minute, 2.5)), "0x1 2.5x2"},
		{timeline(20*time.Minute, val(5*time.Minute, 1), gone(10*time.Minute), val(20*time.Minute, 0)), "0 1 _x2 0"},
		{timeline(20*time.Minute, val(0, 3), ended(10*time.Minute)), "3x1 stale _x2"},
		{timeline(10*time.Minute, ended(5*time.Minute), val(10*time.Minute, 0)), "0 stale 0"},
	} {
		if c.got != c.want {
			t.Errorf("timeline %q, want %q", c.got, c.want)
		}
	}
}

// The group holds what the rule file's readers and the alert rely on: its
// records before the alert, names in Prometheus' level:metric:operations
// form, deduplication of the replicas before every sum.
func TestRecordingGroups(t *testing.T) {
	out, err := Render(Alerts(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name     string `yaml:"name"`
			Interval string `yaml:"interval"`
			Rules    []Rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range AlertGroups() {
		names = append(names, g.Name)
	}
	names = append(names, DORAGroup)
	var got []string
	for _, g := range doc.Groups {
		got = append(got, g.Name)
	}
	if last := len(doc.Groups) - 1; !slices.Equal(got, names) || doc.Groups[last].Interval != "5m" {
		t.Fatalf("groups %v (the last's interval %q), want %v, %s's 5m", got, doc.Groups[len(doc.Groups)-1].Interval, names, DORAGroup)
	}
	dora := doc.Groups[len(doc.Groups)-1]
	recorded := map[string]bool{}
	for _, r := range dora.Rules {
		switch {
		case r.Record != "":
			if strings.Count(r.Record, ":") != 2 || !strings.HasPrefix(r.Record, "crowsnest:") {
				t.Errorf("record %s: want crowsnest:metric:operations", r.Record)
			}
			if strings.Contains(r.Expr, "sum by") && !strings.Contains(r.Expr, "max by (") {
				t.Errorf("record %s sums without first merging the replicas: %s", r.Record, r.Expr)
			}
			recorded[r.Record] = true
		case r.Alert != "":
			for _, name := range []string{RecordChangeFailureRate, RecordDeployments7d} {
				if strings.Contains(r.Expr, name) && !recorded[name] {
					t.Errorf("alert %s reads %s, recorded after it", r.Alert, name)
				}
			}
		}
	}
	for _, g := range doc.Groups[:len(doc.Groups)-1] {
		for _, r := range g.Rules {
			if r.Record != "" || strings.Contains(r.Expr, "crowsnest:") {
				t.Errorf("group %s's rule %s%s reads or writes a record; it belongs in %s", g.Name, r.Alert, r.Record, DORAGroup)
			}
		}
	}
	// Scaled for the e2e tests: the interval shrinks like the for.
	scaled, err := Render(Alerts(), 0.02)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(scaled, []byte("interval: 6s")) || !bytes.Contains(scaled, []byte("for: 72s")) {
		t.Errorf("scaled by 0.02, want interval 6s and for 72s:\n%s", scaled)
	}
	if _, err := Render([]Alert{{Name: "CrowsnestX", Group: "nope", Expr: func(string) string { return "1" }, Variants: []Variant{{AllEnvs, Warning}}}}, 1); err == nil {
		t.Error("an alert naming no group rendered")
	}
}

// Two installations (a cluster label from relabeling or a global view)
// never add up in the DORA records: every aggregation keeps cluster.
func TestDORARecordsKeepCluster(t *testing.T) {
	by := regexp.MustCompile(`\b(?:sum|max) by \(([^)]*)\)`)
	for _, g := range RecordingGroups() {
		for _, r := range g.Recordings {
			for _, m := range by.FindAllStringSubmatch(r.Expr, -1) {
				if !slices.Contains(strings.Split(strings.ReplaceAll(m[1], " ", ""), ","), "cluster") {
					t.Errorf("%s: %q drops cluster", r.Record, m[0])
				}
			}
		}
	}
}
