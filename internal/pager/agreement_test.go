package pager

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	prommodel "github.com/prometheus/common/model"

	"github.com/crowsnest/crowsnest/internal/rules"
	"github.com/crowsnest/crowsnest/internal/rules/promtest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"gopkg.in/yaml.v3"
)

// The agreement test: every alert direct paging evaluates is defined twice,
// as PromQL (for Prometheus) and as a Go check (for the pager). Both judge
// the table of app states below. The Go side runs the real pager on the
// table; the PromQL side is a promtool unit test, alerts/tests/agreement.yaml,
// generated from the same table with the series crowsnest exposes for each
// app and expecting exactly what the pager fires. `go test ./internal/rules
// -update` rewrites it; `promtool test rules alerts/tests/*.yaml` (make rules)
// runs it.

// agreementFile is the generated promtool test, relative to the repository
// root.
const agreementFile = "alerts/tests/agreement.yaml"

// agreementInterval is the evaluation interval of the promtool test and the
// step of its series.
const agreementInterval = time.Minute

// agreementSkipped names the alerts the agreement test does not check, and
// why: they have no Go check, since direct paging cannot judge them on one
// app's AppState. Every other alert must have a Check and is checked.
func agreementSkipped() map[string]string {
	return map[string]string{
		"CrowsnestDeletionStuck":         "judges the time elapsed since the Application's deletionTimestamp (time() - crowsnest_app_deletion_timestamp_seconds); rules.AppState carries only whether the app is deleting, not since when",
		"CrowsnestSelfHealLoop":          "counts self-heals over an hour (increase of crowsnest_app_self_heals_total); rules.AppState carries no history; alerts/tests/crowsnest.test.yaml tests it",
		"CrowsnestAppNotReconciled":      "judges the time since status.reconciledAt against the fleet's (time() - crowsnest_app_reconciled_timestamp_seconds); rules.AppState carries neither; alerts/tests/crowsnest.test.yaml tests it",
		"CrowsnestProdReleaseWaiting":    "its for is a day (rules.ReleaseWaitingFor), which would make this test's timeline a day of one-minute evaluations; it has no Go check, and alerts/tests/crowsnest.test.yaml tests it, quiet cases included",
		"CrowsnestHydrationLagging":      "judges the time elapsed since the hydrated branch began to lag (time() - crowsnest_app_hydration_lagging_since_timestamp_seconds); rules.AppState does not carry the Source Hydrator",
		"CrowsnestSyncSlow":              "histogram-based: compares the last sync's duration with the day's p90 (rate, histogram_quantile) of its project and env",
		"CrowsnestPolicyViolated":        "reads crowsnest_app_policy_violation, which crowsnest computes from the env's configured policies; rules.AppState does not carry them",
		"CrowsnestDown":                  "judges Prometheus's scrape of crowsnest (up), not an app",
		"CrowsnestChangeFailureRateHigh": "fleet-level: judges a project's change failure rate in an env over 7 days (increase() of every app's deployment and failure counters, recorded by env and project), not one app's AppState",
		"CrowsnestWatchStale":            "judges crowsnest's source (fleet-wide), not an app",
		"CrowsnestClusterDown":           "judges crowsnest's reach of a destination cluster (crowsnest_cluster_up), not an app",
	}
}

// The state sets crowsnest exposes, as README's metric table documents
// them (internal/collect builds the series): one 0/1 series per state. A
// sync or health value outside its set is exposed as Unknown; an operation
// phase outside its set sets every series to 0; an app without an operation
// has no phase series. An app being deleted has
// crowsnest_app_deletion_timestamp_seconds, an app not being deleted none.
func exposedSyncStatuses() []string { return []string{"Synced", "OutOfSync", "Unknown"} }

func exposedHealthStatuses() []string {
	return []string{"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
}

func exposedPhases() []string {
	return []string{"Pending", "Running", "Terminating", "Succeeded", "Failed", "Error", "Terminated"}
}

// agreementEnvs are the envs the table covers: production, two other envs
// and the default env of apps no env rule matches.
func agreementEnvs() []string { return []string{rules.ProdEnv, "stage", "dev", "unknown"} }

// agreementApp is one app of the agreement table.
type agreementApp struct {
	// state is what the pager judges.
	state rules.AppState
	// replicas is how many crowsnest replicas expose the app: every
	// replica serves metrics and Prometheus scrapes each, so alerts must
	// not fire twice.
	replicas int
	// pagerMisses names alerts Prometheus fires on this state and the
	// pager does not: known divergences. The promtool test expects what
	// Prometheus does; the Go test fails once the pager agrees, so the
	// entry must then go.
	pagerMisses []string
}

// autoSyncOf says how a table row sets AutoSync.
type autoSyncOf int

const (
	autoSyncEnvDefault autoSyncOf = iota // as the env's default policy: off in prod, on elsewhere
	autoSyncFlipped                      // against the env's default policy
	autoSyncOn
	autoSyncOff
)

// agreementApps returns the table: each sync status, health status and
// operation phase (none, every known one, one crowsnest does not know) on
// an otherwise good app, auto-sync on and off, values Argo CD leaves empty,
// apps being deleted, combinations, and two apps of one name in two
// namespaces. Every row is
// an app in prod and in dev, one on each side of every alert's scopes; the
// rows that fire an alert whose severity depends on the env are apps in
// every env.
func agreementApps() []agreementApp {
	const unknownPhase = "Queued" // not a phase crowsnest exposes: stands for one Argo CD may add
	rows := []struct {
		name                string
		sync, health, phase string
		auto                autoSyncOf
		deleting            bool
		held                bool // by a sync window
		// awaiting: OutOfSync because the target moved (a release
		// waiting for its sync), not live drift; both: live drift too.
		// Any other OutOfSync row is live drift.
		awaiting, both bool
		retries        int64 // of a Running operation
		everyEnv       bool
		replicas       int
		pagerMisses    []string
	}{
		{name: "healthy", sync: "Synced", health: "Healthy", phase: "Succeeded", everyEnv: true},
		// Against the env's default policy: prod auto-syncing, the
		// others syncing by hand.
		{name: "autosync-flipped", sync: "Synced", health: "Healthy", phase: "Succeeded", auto: autoSyncFlipped, everyEnv: true},
		{name: "never-synced", sync: "Synced", health: "Healthy", phase: ""},
		// Sync statuses.
		{name: "drift-autosync", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOn, everyEnv: true},
		{name: "drift-manual", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOff, everyEnv: true},
		{name: "drift-no-operation", sync: "OutOfSync", health: "Healthy", phase: "", auto: autoSyncOn},
		{name: "sync-unknown", sync: "Unknown", health: "Healthy", phase: "Succeeded"},
		// Before Argo CD's first comparison: exposed as Unknown.
		{name: "sync-unset", sync: "", health: "Healthy", phase: ""},
		// Health statuses.
		{name: "progressing", sync: "Synced", health: "Progressing", phase: "Succeeded"},
		{name: "degraded", sync: "Synced", health: "Degraded", phase: "Succeeded", everyEnv: true},
		{name: "suspended", sync: "Synced", health: "Suspended", phase: "Succeeded"},
		{name: "missing", sync: "Synced", health: "Missing", phase: "Succeeded"},
		{name: "health-unknown", sync: "Synced", health: "Unknown", phase: "Succeeded"},
		// Before Argo CD's first health assessment: exposed as Unknown.
		{name: "health-unset", sync: "Synced", health: "", phase: "Succeeded"},
		// Operation phases.
		{name: "pending", sync: "Synced", health: "Healthy", phase: "Pending"},
		{name: "running", sync: "Synced", health: "Healthy", phase: "Running"},
		{name: "terminating", sync: "Synced", health: "Healthy", phase: "Terminating"},
		{name: "failed", sync: "Synced", health: "Healthy", phase: "Failed", everyEnv: true},
		{name: "error", sync: "Synced", health: "Healthy", phase: "Error", everyEnv: true},
		// Ended by a person's terminate-op: not a failure (the sync timeout is Failed).
		{name: "terminated", sync: "Synced", health: "Healthy", phase: "Terminated", everyEnv: true},
		{name: "phase-unknown", sync: "Synced", health: "Healthy", phase: unknownPhase},
		// Being deleted: drift is not paged, everything else is.
		{name: "deleting", sync: "Synced", health: "Healthy", phase: "Succeeded", deleting: true},
		{name: "deleting-drift-autosync", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOn, deleting: true, everyEnv: true},
		{name: "deleting-drift-manual", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOff, deleting: true, everyEnv: true},
		{name: "deleting-post-delete-hook", sync: "OutOfSync", health: "Missing", phase: "Running", auto: autoSyncOn, deleting: true},
		{name: "deleting-pending", sync: "Synced", health: "Healthy", phase: "Pending", deleting: true},
		// Combinations, some scraped from two replicas.
		{name: "all-wrong", sync: "OutOfSync", health: "Degraded", phase: "Failed", auto: autoSyncOn, everyEnv: true, replicas: 2},
		{name: "all-unknown", sync: "Unknown", health: "Unknown", phase: "Error", auto: autoSyncOff, everyEnv: true, replicas: 2},
		{name: "stuck-missing", sync: "OutOfSync", health: "Missing", phase: "Terminating", auto: autoSyncOff},
		{name: "syncing-drift", sync: "OutOfSync", health: "Progressing", phase: "Running", auto: autoSyncOn, everyEnv: true, replicas: 2},
		{name: "all-unset", sync: "", health: "", phase: "Running", auto: autoSyncOn},
		{name: "deleting-all-wrong", sync: "OutOfSync", health: "Degraded", phase: "Failed", auto: autoSyncOn, deleting: true, everyEnv: true, replicas: 2},
		{name: "deleting-unset", sync: "", health: "", phase: "Terminated", auto: autoSyncOn, deleting: true},
		{name: "held-drift-autosync", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOn, held: true, everyEnv: true},
		{name: "held-drift-manual", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOff, held: true, everyEnv: true, replicas: 2},
		{name: "held-synced", sync: "Synced", health: "Healthy", phase: "Succeeded", held: true},
		{name: "held-failed", sync: "OutOfSync", health: "Degraded", phase: "Failed", auto: autoSyncOn, held: true, everyEnv: true},
		// Drift told apart: a release waiting for its sync is no drift;
		// a hand edit while one waits is.
		{name: "awaiting-manual", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOff, awaiting: true, everyEnv: true, replicas: 2},
		{name: "awaiting-autosync", sync: "OutOfSync", health: "Healthy", phase: "Running", auto: autoSyncOn, awaiting: true},
		{name: "awaiting-never-synced", sync: "OutOfSync", health: "Missing", phase: "", auto: autoSyncOff, awaiting: true},
		{name: "awaiting-and-live", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOff, awaiting: true, both: true, everyEnv: true},
		{name: "awaiting-deleting", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOff, awaiting: true, both: true, deleting: true},
		{name: "awaiting-held", sync: "OutOfSync", health: "Healthy", phase: "Succeeded", auto: autoSyncOff, awaiting: true, both: true, held: true},
		// Retries of a running sync: past the threshold, below it,
		// while deleting, scraped from two replicas.
		{name: "retrying", sync: "OutOfSync", health: "Progressing", phase: "Running", auto: autoSyncOn, retries: 7, everyEnv: true, replicas: 2},
		{name: "retrying-few", sync: "OutOfSync", health: "Progressing", phase: "Running", auto: autoSyncOn, retries: 2},
		{name: "retrying-deleting", sync: "OutOfSync", health: "Progressing", phase: "Running", auto: autoSyncOn, retries: 9, deleting: true},
	}
	var out []agreementApp
	for _, env := range agreementEnvs() {
		envAuto := env != rules.ProdEnv // the default policies: prod syncs by hand, the others auto-sync
		for _, r := range rows {
			if !r.everyEnv && env != rules.ProdEnv && env != "dev" {
				continue
			}
			auto := map[autoSyncOf]bool{autoSyncEnvDefault: envAuto, autoSyncFlipped: !envAuto, autoSyncOn: true, autoSyncOff: false}[r.auto]
			drifted := r.sync == "OutOfSync"
			out = append(out, agreementApp{
				state: rules.AppState{Namespace: "argocd", Name: env + "-" + r.name, Project: "shop", Env: env, Dest: "in-cluster",
					SyncStatus: r.sync, Health: r.health, Phase: r.phase, AutoSync: auto, Deleting: r.deleting, HeldByWindow: r.held,
					LiveDrift: drifted && (!r.awaiting || r.both), AwaitingSync: drifted && r.awaiting, Retries: r.retries},
				replicas:    max(r.replicas, 1),
				pagerMisses: r.pagerMisses,
			})
		}
	}
	// One name in two namespaces (apps in any namespace), both drifted,
	// only one auto-syncing, each deployed to a cluster of its own:
	// DriftNotHealed joins on namespace and name, and each alert names its
	// destination cluster.
	for _, s := range []rules.AppState{
		{Namespace: "team-a", Name: "dev-shared", Project: "team-a", Env: "dev", Dest: "dev-eu", SyncStatus: "OutOfSync", Health: "Healthy", Phase: "Succeeded", AutoSync: true, LiveDrift: true},
		{Namespace: "team-b", Name: "dev-shared", Project: "team-b", Env: "dev", Dest: "https://dev-us.example.com:6443", SyncStatus: "OutOfSync", Health: "Healthy", Phase: "Succeeded", AutoSync: false, LiveDrift: true},
	} {
		out = append(out, agreementApp{state: s, replicas: 1})
	}
	return out
}

// exposedState is s with sync and health mapped into their state sets, as
// crowsnest's series show it.
func exposedState(s rules.AppState) rules.AppState {
	if !slices.Contains(exposedSyncStatuses(), s.SyncStatus) {
		s.SyncStatus = "Unknown"
	}
	if !slices.Contains(exposedHealthStatuses(), s.Health) {
		s.Health = "Unknown"
	}
	return s
}

// agreementSample is one input series of the promtool test.
type agreementSample struct {
	series string
	value  int
}

// exposeApp returns the series one crowsnest replica at instance exposes
// for s, as Prometheus stores them (with job and instance).
func exposeApp(s rules.AppState, instance string) []agreementSample {
	s = exposedState(s)
	labels := func(extra ...string) string {
		l := fmt.Sprintf(`namespace=%q,name=%q,project=%q,env=%q,dest_cluster=%q,job="crowsnest",instance=%q`, s.Namespace, s.Name, s.Project, s.Env, s.Dest, instance)
		for i := 0; i+1 < len(extra); i += 2 {
			l += fmt.Sprintf(",%s=%q", extra[i], extra[i+1])
		}
		return "{" + l + "}"
	}
	auto := fmt.Sprint(s.AutoSync)
	out := []agreementSample{{"crowsnest_app_info" + labels(
		"repo", "https://git.example.com/shop.git", "path", "deploy", "target_revision", "main",
		"dest_server", "https://kubernetes.default.svc", "dest_namespace", "shop",
		"autosync", auto, "self_heal", auto, "prune", auto), 1}}
	stateSet := func(metric, label string, states []string, current string) {
		for _, st := range states {
			v := 0
			if st == current {
				v = 1
			}
			out = append(out, agreementSample{metric + labels(label, st), v})
		}
	}
	stateSet("crowsnest_app_sync_status", "status", exposedSyncStatuses(), s.SyncStatus)
	stateSet("crowsnest_app_health_status", "status", exposedHealthStatuses(), s.Health)
	if s.Phase != "" {
		stateSet("crowsnest_app_operation_phase", "phase", exposedPhases(), s.Phase)
	}
	if s.Phase == "Running" {
		out = append(out, agreementSample{"crowsnest_app_operation_retries" + labels(), int(s.Retries)})
	}
	// Every app has the window series, 0 or 1, as crowsnest exposes it.
	held := 0
	if s.HeldByWindow {
		held = 1
	}
	out = append(out, agreementSample{"crowsnest_app_sync_window_held" + labels(), held})
	// The drift kinds' begin times, present while each holds.
	if s.LiveDrift {
		out = append(out, agreementSample{"crowsnest_app_live_drift_since_timestamp_seconds" + labels(), 1})
	}
	if s.AwaitingSync {
		out = append(out, agreementSample{"crowsnest_app_awaiting_sync_since_timestamp_seconds" + labels(), 1})
	}
	if s.Deleting {
		// The deletionTimestamp: the start of the test (its value matters
		// only to CrowsnestDeletionStuck, which the test does not check).
		out = append(out, agreementSample{"crowsnest_app_deletion_timestamp_seconds" + labels(), 0})
	}
	return out
}

// agreementFiring is one alert the pager posts.
type agreementFiring struct {
	labels, annotations map[string]string
}

// pagerFiring runs the pager on apps, unchanged since t0, and returns the
// alerts firing at t0+at by alertname/namespace/name.
func pagerFiring(t *testing.T, apps []rules.AppState, at time.Duration) map[string]agreementFiring {
	t.Helper()
	// Resend every evaluation, so the second returns every firing alert.
	p, err := NewPager(PagerConfig{Interval: time.Second, Resend: time.Nanosecond, Timeout: time.Second, ForScale: 1},
		rules.Alerts(), func() []rules.AppState { return apps }, prometheus.NewRegistry(), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	posted := p.Evaluate(t0)
	if at > 0 {
		posted = p.Evaluate(t0.Add(at))
	}
	out := map[string]agreementFiring{}
	for _, a := range posted {
		l := map[string]string(a.Labels)
		if !time.Time(a.EndsAt).After(t0.Add(at)) {
			t.Fatalf("pager resolved %v although no app changed", l)
		}
		key := firingKey(l["alertname"], l["namespace"], l["name"])
		if _, dup := out[key]; dup {
			t.Fatalf("pager posted %s twice", key)
		}
		out[key] = agreementFiring{labels: l, annotations: map[string]string(a.Annotations)}
	}
	return out
}

func firingKey(alertname, namespace, name string) string {
	return alertname + "/" + namespace + "/" + name
}

// agreementCheck is one alert_rule_test: the alerts that fire at an eval
// time.
type agreementCheck struct {
	at     time.Duration
	alert  string
	firing []agreementFiring // sorted by labels
}

// agreementExpect computes, from the Go side, what fires for every checked
// alert: at its for minus one interval (still pending), at its for, and
// after every checked alert's for. It fails the test on a pagerMisses entry the
// pager does not miss, or on a divergence the table does not declare.
func agreementExpect(t *testing.T, table []agreementApp) []agreementCheck {
	t.Helper()
	raw := make([]rules.AppState, len(table))
	exposed := make([]rules.AppState, len(table))
	misses := map[string]bool{}
	for i, a := range table {
		raw[i], exposed[i] = a.state, exposedState(a.state)
		for _, m := range a.pagerMisses {
			misses[firingKey(m, a.state.Namespace, a.state.Name)] = true
		}
	}
	var last time.Duration
	for _, a := range rules.Alerts() {
		if a.For%agreementInterval != 0 {
			t.Fatalf("%s: for %v is not a whole number of evaluation intervals (%v)", a.Name, a.For, agreementInterval)
		}
		if a.Check != nil { // the alerts checked
			last = max(last, a.For+agreementInterval)
		}
	}
	skipped := agreementSkipped()
	var out []agreementCheck
	byTime := map[time.Duration][2]map[string]agreementFiring{}
	for _, a := range rules.Alerts() {
		if a.Check == nil {
			if _, ok := skipped[a.Name]; !ok {
				t.Errorf("%s has no Go check: add it to agreementSkipped with the reason", a.Name)
			}
			continue
		}
		if _, ok := skipped[a.Name]; ok {
			t.Errorf("%s has a Go check: remove it from agreementSkipped", a.Name)
		}
		times := []time.Duration{0, last}
		if a.For > 0 {
			times = []time.Duration{a.For - agreementInterval, a.For, last}
		}
		for _, at := range times {
			if _, ok := byTime[at]; !ok {
				// What the pager fires on the states it is given, and on
				// the states as the series show them.
				byTime[at] = [2]map[string]agreementFiring{pagerFiring(t, raw, at), pagerFiring(t, exposed, at)}
			}
			onRaw, onExposed := byTime[at][0], byTime[at][1]
			c := agreementCheck{at: at, alert: a.Name}
			for _, app := range table {
				key := firingKey(a.Name, app.state.Namespace, app.state.Name)
				f, fires := onRaw[key]
				fe, firesExposed := onExposed[key]
				switch {
				case misses[key] && (fires || at >= a.For && !firesExposed):
					t.Errorf("%s at %v: the pager fires %v on %+v and %v on its series' state: remove the entry from pagerMisses",
						key, at, fires, app.state, firesExposed)
				case misses[key]:
					f, fires = fe, firesExposed // Prometheus fires; the pager does not
				case fires != firesExposed:
					t.Errorf("%s at %v: the pager fires %v on %+v but %v on the state its series show (%+v): an undeclared divergence",
						key, at, fires, app.state, firesExposed, exposedState(app.state))
				}
				if fires {
					c.firing = append(c.firing, f)
				}
			}
			sort.Slice(c.firing, func(i, j int) bool {
				return fmt.Sprint(c.firing[i].labels) < fmt.Sprint(c.firing[j].labels)
			})
			out = append(out, c)
		}
	}
	for name := range skipped {
		if !slices.ContainsFunc(rules.Alerts(), func(a rules.Alert) bool { return a.Name == name }) {
			t.Errorf("agreementSkipped names %s, which is no alert", name)
		}
	}
	return out
}

// renderAgreement returns alerts/tests/agreement.yaml.
func renderAgreement(t *testing.T, table []agreementApp, checks []agreementCheck) []byte {
	t.Helper()
	var last time.Duration
	for _, c := range checks {
		last = max(last, c.at)
	}
	steps := int((last + agreementInterval) / agreementInterval)
	ty := promtest.Group{Interval: prommodel.Duration(agreementInterval).String()}
	for _, a := range table {
		for r := range a.replicas {
			for _, s := range exposeApp(a.state, fmt.Sprintf("crowsnest-%d:9829", r)) {
				ty.Input = append(ty.Input, promtest.Series{Series: s.series, Values: fmt.Sprintf("%dx%d", s.value, steps)})
			}
		}
	}
	for _, c := range checks {
		rt := promtest.AlertTest{EvalTime: prommodel.Duration(c.at).String(), Alertname: c.alert, ExpAlerts: []promtest.ExpAlert{}}
		if c.at == 0 {
			rt.EvalTime = "0m"
		}
		for _, f := range c.firing {
			l := map[string]string{}
			for k, v := range f.labels {
				if k != "alertname" { // promtool adds it
					l[k] = v
				}
			}
			rt.ExpAlerts = append(rt.ExpAlerts, promtest.ExpAlert{Labels: l, Annotations: f.annotations})
		}
		ty.AlertTest = append(ty.AlertTest, rt)
	}
	doc := struct {
		RuleFiles []string         `yaml:"rule_files"`
		Interval  string           `yaml:"evaluation_interval"`
		Tests     []promtest.Group `yaml:"tests"`
	}{RuleFiles: []string{"../crowsnest.rules.yaml"}, Interval: prommodel.Duration(agreementInterval).String(), Tests: []promtest.Group{ty}}
	var b bytes.Buffer
	b.WriteString("# Generated from internal/pager/agreement_test.go by `go test ./internal/pager -update`. DO NOT EDIT.\n" +
		"# Each app alert's PromQL must fire exactly where its Go check (direct paging) does.\n" +
		"# Run: promtool test rules alerts/tests/*.yaml\n")
	var missed []string
	for _, a := range table {
		for _, m := range a.pagerMisses {
			missed = append(missed, fmt.Sprintf("%s on %s/%s", m, a.state.Namespace, a.state.Name))
		}
	}
	if len(missed) > 0 {
		b.WriteString("# Known divergences, expected as Prometheus fires them (the pager does not):\n")
		for _, m := range missed {
			b.WriteString("#   " + m + "\n")
		}
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The generated promtool test matches the table and the pager.
func TestAgreementPromtoolUpToDate(t *testing.T) {
	table := agreementApps()
	promtest.CheckGenerated(t, "internal/pager", agreementFile, renderAgreement(t, table, agreementExpect(t, table)), *update)
}

// The table covers every state, env and auto-sync setting, and every
// checked alert both fires, with each of its severities, and does not.
func TestAgreementTableCoverage(t *testing.T) {
	table := agreementApps()
	seen := map[string]bool{}
	syncs, healths, phases, envs, autos, deleting := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[bool]bool{}, map[bool]bool{}
	for _, a := range table {
		s := a.state
		if key := s.Namespace + "/" + s.Name; seen[key] {
			t.Errorf("app %s twice in the table", key)
		} else {
			seen[key] = true
		}
		if a.replicas < 1 || a.replicas > 2 {
			t.Errorf("%s/%s: %d replicas", s.Namespace, s.Name, a.replicas)
		}
		syncs[s.SyncStatus], healths[s.Health], phases[s.Phase], envs[s.Env], autos[s.AutoSync], deleting[s.Deleting] = true, true, true, true, true, true
	}
	covers := func(what string, have map[string]bool, want []string, outside bool) {
		for _, w := range want {
			if !have[w] {
				t.Errorf("no app has %s %q", what, w)
			}
		}
		n := 0
		for h := range have {
			if !slices.Contains(want, h) {
				n++
			}
		}
		if outside && n == 0 {
			t.Errorf("no app has a %s outside %v", what, want)
		}
	}
	covers("sync status", syncs, exposedSyncStatuses(), true)
	covers("health status", healths, exposedHealthStatuses(), true)
	covers("operation phase", phases, append(exposedPhases(), ""), true)
	covers("env", envs, agreementEnvs(), false)
	if !autos[true] || !autos[false] {
		t.Error("the table needs apps with auto-sync on and off")
	}
	if !deleting[true] || !deleting[false] {
		t.Error("the table needs apps being deleted and not")
	}

	checks := agreementExpect(t, table)
	for _, a := range rules.Alerts() {
		if a.Check == nil {
			continue
		}
		var final *agreementCheck
		for i := range checks {
			if checks[i].alert == a.Name && (final == nil || checks[i].at > final.at) {
				final = &checks[i]
			}
		}
		if final == nil {
			t.Errorf("%s: not checked", a.Name)
			continue
		}
		prod, err := rules.ProdMatcher(rules.ProdEnv)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range a.Variants {
			if !slices.ContainsFunc(final.firing, func(f agreementFiring) bool {
				return v.Scope.Covers(f.labels["env"], prod) && f.labels["severity"] == string(v.Severity)
			}) {
				t.Errorf("%s: no app fires it %s", a.Name, v.Severity)
			}
		}
		if len(final.firing) == len(table) {
			t.Errorf("%s: every app fires it", a.Name)
		}
	}
}

// The exposition the test models matches README's metric table.
func TestAgreementStateSetsDocumented(t *testing.T) {
	readme, err := os.ReadFile(promtest.RepoFile("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		metric, label string
		states        []string
	}{
		{"crowsnest_app_sync_status", "status", exposedSyncStatuses()},
		{"crowsnest_app_health_status", "status", exposedHealthStatuses()},
		{"crowsnest_app_operation_phase", "phase", exposedPhases()},
	} {
		m := regexp.MustCompile("(?m)^\\| `" + s.metric + "` \\| gauge \\| `([a-z_]+)`=([A-Za-z/]+) \\|").FindSubmatch(readme)
		if m == nil {
			t.Errorf("README.md's metric table has no state set for %s", s.metric)
			continue
		}
		if got, want := string(m[1])+"="+string(m[2]), s.label+"="+strings.Join(s.states, "/"); got != want {
			t.Errorf("README.md documents %s{%s}; agreement_test.go exposes %s", s.metric, got, want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite alerts/tests/agreement.yaml")
