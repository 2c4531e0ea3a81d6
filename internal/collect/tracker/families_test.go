package tracker

import (
	"bytes"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/model"
)

// t0 is when the tests' tracker starts: operations finished before it are
// a baseline, not counted.
var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// envByLabel classifies by the "env" label, defaulting to "unknown".
type envByLabel struct{}

func (envByLabel) Env(app *v1alpha1.Application) string {
	if e := app.Labels["env"]; e != "" {
		return e
	}
	return "unknown"
}

// CheckPolicies checks the default policies (the deployment model's).
func (envByLabel) CheckPolicies(app *v1alpha1.Application, env string, auto model.AutoSyncPolicy) []model.PolicyResult {
	return (&config.Config{}).CheckPolicies(app, env, auto)
}

func newTestTracker() (*Tracker, *exposition.Store) {
	tr, s, _ := newTrackerWithRegistry(false)
	return tr, s
}

// newTrackerWithRegistry wires a tracker to the outputs /metrics is made
// of, as cmd/exporter does, and returns the registry of the aggregated
// histograms; perApp adds the per-app ones.
func newTrackerWithRegistry(perApp bool) (*Tracker, *exposition.Store, *prometheus.Registry) {
	s := exposition.NewStore(perApp)
	reg := prometheus.NewRegistry()
	d := exposition.NewDurations(reg)
	return New(envByLabel{}, Subscribers{Views: []ViewSubscriber{s}, Operations: []OperationSubscriber{d, s}}, promslog.NewNopLogger()), s, reg
}

// addOperationSubscriber adds sub to the tracker's operation subscribers.
func (t *Tracker) addOperationSubscriber(sub OperationSubscriber) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs.Operations = append(t.subs.Operations, sub)
}

func mtime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

// newApp returns a minimal Application "web" in namespace argocd.
func newApp(mutate ...func(*v1alpha1.Application)) *v1alpha1.Application {
	a := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "argocd", UID: types.UID("uid-web")},
		Spec: v1alpha1.ApplicationSpec{
			Project: "shop",
			Source: &v1alpha1.ApplicationSource{
				RepoURL: "https://git.example.com/deploy.git", Path: "apps/web", TargetRevision: "main",
			},
			Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: "web"},
		},
	}
	for _, m := range mutate {
		m(a)
	}
	return a
}

// samples returns the sample lines of the store's exposition, sorted.
func samples(t *testing.T, s *exposition.Store) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func trimLines(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

const noStatusInfo = `crowsnest_app_info{namespace="argocd",name="web",project="shop",env="unknown",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",dest_server="https://kubernetes.default.svc",dest_namespace="web",autosync="false",self_heal="false",prune="false"} 1
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",source="0",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",ref=""} 1`

// zeroSyncs are the syncs_total series of an app with no counted operation.
const zeroSyncs = `
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",reason="degraded"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",reason="rolled_back"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="unknown",reason="sync_failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",result="failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",result="rolled_back"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="unknown",result="succeeded"} 0
crowsnest_app_dry_runs_total{namespace="argocd",name="web",project="shop",env="unknown"} 0
crowsnest_app_self_heals_total{namespace="argocd",name="web",project="shop",env="unknown"} 0
crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="unknown"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",result="Error"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",result="Failed"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",result="Succeeded"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="unknown",result="Terminated"} 0
`

const unknownHealth = `
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Degraded"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Healthy"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Unknown"} 1
`

const unknownSync = `
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",status="OutOfSync"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",status="Synced"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",status="Unknown"} 1
`

// TestFamilies feeds one Application to a fresh tracker and checks every
// series the store then exposes, literally.
func TestFamilies(t *testing.T) {
	for _, tc := range []struct {
		desc string
		app  *v1alpha1.Application
		want string
	}{
		{
			desc: "no status at all",
			app:  newApp(),
			want: noStatusInfo + zeroSyncs + unknownHealth + unknownSync,
		},
		{
			desc: "synced and healthy, last operation finished before crowsnest started",
			app: newApp(func(a *v1alpha1.Application) {
				a.Labels = map[string]string{"env": "prod"}
				a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{Prune: new(true)}}
				a.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
				a.Status.Health.Status = health.HealthStatusHealthy
				a.Status.History = v1alpha1.RevisionHistories{
					{ID: 1, DeployedAt: metav1.NewTime(t0.Add(-time.Hour)), DeployStartedAt: mtime(t0.Add(-time.Hour - time.Minute))},
				}
				a.Status.OperationState = &v1alpha1.OperationState{
					Phase:      synccommon.OperationFailed,
					StartedAt:  metav1.NewTime(t0.Add(-10 * time.Minute)),
					FinishedAt: mtime(t0.Add(-9 * time.Minute)),
				}
			}),
			want: `
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="prod",reason="degraded"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="prod",reason="rolled_back"} 0
crowsnest_app_change_failures_total{namespace="argocd",name="web",project="shop",env="prod",reason="sync_failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="prod",result="failed"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="prod",result="rolled_back"} 0
crowsnest_app_deployments_total{namespace="argocd",name="web",project="shop",env="prod",result="succeeded"} 0
crowsnest_app_info{namespace="argocd",name="web",project="shop",env="prod",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",dest_server="https://kubernetes.default.svc",dest_namespace="web",autosync="true",self_heal="false",prune="true"} 1
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="prod",source="0",repo="https://git.example.com/deploy.git",path="apps/web",target_revision="main",ref=""} 1
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="prod",status="Synced"} 1
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="prod",status="OutOfSync"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="prod",status="Unknown"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",status="Healthy"} 1
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",status="Degraded"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="prod",status="Unknown"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",phase="Running"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",phase="Succeeded"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",phase="Failed"} 1
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",phase="Error"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",phase="Pending"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",phase="Terminated"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="prod",phase="Terminating"} 0
crowsnest_app_policy_violation{namespace="argocd",name="web",project="shop",env="prod",policy="auto_sync"} 1
crowsnest_app_policy_violation{namespace="argocd",name="web",project="shop",env="prod",policy="images_by_digest"} 0
crowsnest_app_self_heals_total{namespace="argocd",name="web",project="shop",env="prod"} 0
crowsnest_app_last_sync_finished_timestamp_seconds{namespace="argocd",name="web",project="shop",env="prod",result="Failed"} 1.79568306e+09
crowsnest_app_last_successful_sync_timestamp_seconds{namespace="argocd",name="web",project="shop",env="prod"} 1.79568e+09
crowsnest_app_last_sync_duration_seconds{namespace="argocd",name="web",project="shop",env="prod"} 60
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",result="Succeeded"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",result="Terminated"} 0
crowsnest_app_dry_runs_total{namespace="argocd",name="web",project="shop",env="prod"} 0
crowsnest_app_sync_window_held{namespace="argocd",name="web",project="shop",env="prod"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",result="Failed"} 0
crowsnest_app_syncs_total{namespace="argocd",name="web",project="shop",env="prod",result="Error"} 0
`,
		},
		{
			desc: "out of sync: drifted resources by group and kind, drift since the event; never synced, so awaiting its first sync",
			app: newApp(func(a *v1alpha1.Application) {
				a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
				a.Status.Health.Status = health.HealthStatusDegraded
				a.Status.Resources = []v1alpha1.ResourceStatus{
					{Group: "apps", Kind: "Deployment", Name: "a", Status: v1alpha1.SyncStatusCodeOutOfSync},
					{Group: "apps", Kind: "Deployment", Name: "b", Status: v1alpha1.SyncStatusCodeOutOfSync},
					{Group: "apps", Kind: "Deployment", Name: "c", Status: v1alpha1.SyncStatusCodeSynced},
					{Kind: "ConfigMap", Name: "d", Status: v1alpha1.SyncStatusCodeOutOfSync},
					{Kind: "Service", Name: "e", Status: v1alpha1.SyncStatusCodeSynced},
				}
				a.Status.Conditions = []v1alpha1.ApplicationCondition{
					{Type: v1alpha1.ApplicationConditionSyncError},
					{Type: v1alpha1.ApplicationConditionComparisonError},
					{Type: v1alpha1.ApplicationConditionSyncError},
				}
			}),
			want: noStatusInfo + zeroSyncs + `
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",status="Synced"} 0
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",status="OutOfSync"} 1
crowsnest_app_sync_status{namespace="argocd",name="web",project="shop",env="unknown",status="Unknown"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Healthy"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Progressing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Degraded"} 1
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Suspended"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Missing"} 0
crowsnest_app_health_status{namespace="argocd",name="web",project="shop",env="unknown",status="Unknown"} 0
crowsnest_app_out_of_sync_resources{namespace="argocd",name="web",project="shop",env="unknown",group="",kind="ConfigMap"} 1
crowsnest_app_out_of_sync_resources{namespace="argocd",name="web",project="shop",env="unknown",group="apps",kind="Deployment"} 2
crowsnest_app_drift_since_timestamp_seconds{namespace="argocd",name="web",project="shop",env="unknown"} 1.7956836e+09
crowsnest_app_awaiting_sync_since_timestamp_seconds{namespace="argocd",name="web",project="shop",env="unknown"} 1.7956836e+09
crowsnest_app_conditions{namespace="argocd",name="web",project="shop",env="unknown",type="ComparisonError"} 1
crowsnest_app_conditions{namespace="argocd",name="web",project="shop",env="unknown",type="SyncError"} 2
`,
		},
		{
			desc: "statuses and phases crowsnest does not know",
			app: newApp(func(a *v1alpha1.Application) {
				a.Status.Sync.Status = "Drifting"
				a.Status.Health.Status = "Exploded"
				a.Status.OperationState = &v1alpha1.OperationState{Phase: "Pausing", StartedAt: metav1.NewTime(t0)}
			}),
			want: noStatusInfo + zeroSyncs + unknownHealth + unknownSync + `
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",phase="Running"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",phase="Succeeded"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",phase="Failed"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",phase="Error"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",phase="Pending"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",phase="Terminated"} 0
crowsnest_app_operation_phase{namespace="argocd",name="web",project="shop",env="unknown",phase="Terminating"} 0
`,
		},
		{
			desc: "credentials in the repo URL, odd characters in label values, multi-source, named cluster",
			app: newApp(func(a *v1alpha1.Application) {
				a.Spec.Source = nil
				// The values source comes first, as is common: crowsnest_app_info
				// shows the chart's source all the same.
				a.Spec.Sources = v1alpha1.ApplicationSources{
					{RepoURL: "https://other.example.com/values.git", Ref: "values"},
					{RepoURL: "https://deploy-bot:glpat-s3cr3t@gitlab.example.com/platform/charts.git", Chart: `we"ird\chart`, TargetRevision: "1.2.*"},
				}
				a.Spec.Destination = v1alpha1.ApplicationDestination{Name: "prod-eu", Namespace: "web"}
			}),
			want: zeroSyncs + unknownHealth + unknownSync + `
crowsnest_app_info{namespace="argocd",name="web",project="shop",env="unknown",repo="https://gitlab.example.com/platform/charts.git",path="we\"ird\\chart",target_revision="1.2.*",dest_server="prod-eu",dest_namespace="web",autosync="false",self_heal="false",prune="false"} 1
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",source="0",repo="https://other.example.com/values.git",path="",target_revision="",ref="values"} 1
crowsnest_app_source_info{namespace="argocd",name="web",project="shop",env="unknown",source="1",repo="https://gitlab.example.com/platform/charts.git",path="we\"ird\\chart",target_revision="1.2.*",ref=""} 1
`,
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tr, s := newTestTracker()
			tr.Handle(model.Event{Type: model.Added, Time: t0, App: tc.app})
			if got, want := samples(t, s), trimLines(tc.want); got != want {
				t.Errorf("exposition differs\n got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestExpositionParses checks the whole output, headers included, with the
// Prometheus text parser, and that every family has HELP and TYPE.
func TestExpositionParses(t *testing.T) {
	tr, s := newTestTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	other := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID = "api", "uid-api"
		a.Labels = map[string]string{"env": "prod"}
		a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
		a.Status.Resources = []v1alpha1.ResourceStatus{{Kind: "ConfigMap", Name: "c", Status: v1alpha1.SyncStatusCodeOutOfSync}}
		a.Status.Conditions = []v1alpha1.ApplicationCondition{{Type: v1alpha1.ApplicationConditionSyncError}}
		a.Status.ReconciledAt = mtime(t0)
		a.Status.OperationState = &v1alpha1.OperationState{
			Phase: synccommon.OperationSucceeded, StartedAt: metav1.NewTime(t0), FinishedAt: mtime(t0.Add(time.Second)),
		}
	})
	// Seen running first, so its waves are timed.
	running := other.DeepCopy()
	running.Status.OperationState = &v1alpha1.OperationState{Phase: synccommon.OperationRunning, StartedAt: metav1.NewTime(t0)}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: running})
	other.Status.OperationState.SyncResult = &v1alpha1.SyncOperationResult{Revision: "abc", Resources: v1alpha1.ResourceResults{
		{Kind: "ConfigMap", Name: "c", SyncPhase: synccommon.SyncPhaseSync},
	}}
	tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(time.Second), App: other})
	mfs := parseStore(t, s)
	for name, typ := range s.Families() {
		switch {
		case strings.HasPrefix(name, "crowsnest_app_workload_"):
			continue // no workloads here; see TestWorkloadsJoinTheirApps
		case name == "crowsnest_app_operation_pending_since_timestamp_seconds", name == "crowsnest_app_deletion_timestamp_seconds":
			continue // only while pending or deleting; see TestPendingTerminatedDryRunDeleting
		case name == "crowsnest_app_operation_retries":
			continue // only while an operation runs; see TestRetriesAndSelfHeals
		case name == "crowsnest_app_live_drift_since_timestamp_seconds":
			continue // only while the live state drifts; see TestDriftKinds (the OutOfSync app here was never synced: awaiting sync)
		case strings.Contains(name, "hydration"):
			continue // only for apps with a source hydrator; see TestHydration
		case name == "crowsnest_app_rollout_status":
			continue // only for apps a RollingSync syncs; see TestRollingSync
		case strings.HasPrefix(name, "crowsnest_app_sync_") && name != "crowsnest_app_sync_status" && name != "crowsnest_app_sync_window_held":
			continue // only while an operation runs; see TestProgress
		}
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("family %s missing", name)
			continue
		}
		if mf.GetHelp() == "" {
			t.Errorf("family %s has no HELP", name)
		}
		if got := strings.ToLower(mf.GetType().String()); got != typ {
			t.Errorf("family %s has TYPE %s, want %s", name, got, typ)
		}
	}
	if got := len(mfs["crowsnest_app_info"].GetMetric()); got != 2 {
		t.Errorf("crowsnest_app_info has %d series, want 2 (one per app)", got)
	}
}

// Policies of the app's env: prod syncs by hand and pins images by digest,
// dev auto-syncs with self-heal and prune.
func TestPolicyViolations(t *testing.T) {
	tr, s := newTestTracker()
	prod := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID, a.Labels = "prod-api", "uid-prod", map[string]string{"env": "prod"}
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{}}
		a.Status.Summary.Images = []string{"registry/api@sha256:0123", "registry/sidecar:1.2"}
	})
	dev := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID, a.Labels = "dev-api", "uid-dev", map[string]string{"env": "dev"}
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{SelfHeal: new(true)}}
	})
	// Argo CD v3.1+: automated.enabled: false keeps the block but turns
	// auto-sync off, self-heal and prune with it.
	paused := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID, a.Labels = "prod-paused", "uid-paused", map[string]string{"env": "prod"}
		a.Spec.SyncPolicy = &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{Enabled: new(false), SelfHeal: new(true), Prune: new(true)}}
	})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: prod})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: dev})
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: paused})
	for _, c := range []struct {
		app, policy string
		want        float64
	}{
		{"prod-api", "auto_sync", 1}, {"prod-api", "images_by_digest", 1}, {"prod-paused", "auto_sync", 0},
		{"dev-api", "auto_sync", 0}, {"dev-api", "self_heal", 0}, {"dev-api", "prune", 1},
	} {
		if v, ok := value(t, s, "crowsnest_app_policy_violation", "name", c.app, "policy", c.policy); !ok || v != c.want {
			t.Errorf("%s %s: %v (present %v), want %v", c.app, c.policy, v, ok, c.want)
		}
	}
	if _, ok := value(t, s, "crowsnest_app_policy_violation", "name", "prod-api", "policy", "prune"); ok {
		t.Error("prod has no prune policy, yet a series for it")
	}
	for app, want := range map[string][3]string{"prod-api": {"true", "false", "false"}, "prod-paused": {"false", "false", "false"}, "dev-api": {"true", "true", "false"}} {
		if _, ok := value(t, s, "crowsnest_app_info", "name", app, "autosync", want[0], "self_heal", want[1], "prune", want[2]); !ok {
			t.Errorf("%s: no crowsnest_app_info with autosync=%s self_heal=%s prune=%s", app, want[0], want[1], want[2])
		}
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// storeHistogram returns the sample count and sum of the store's histogram
// series of metric with the given labels (a subset match), added up.
func storeHistogram(t *testing.T, s *exposition.Store, metric string, labels ...string) (uint64, float64) {
	t.Helper()
	var n uint64
	var sum float64
	for _, m := range parseStore(t, s)[metric].GetMetric() {
		if labelsMatch(m, labels) {
			n += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return n, sum
}
