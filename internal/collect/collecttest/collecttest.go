// Package collecttest holds the fixtures the tests and benchmarks of the
// collect packages share (tracker, exposition): one definition of the
// fleet they measure.
package collecttest

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	"github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// WebApp returns the Application "web" in namespace argocd, of project
// shop, from one Git source to the local cluster, changed by mutate: the
// app the unit tests of the collect packages start from.
func WebApp(mutate ...func(*v1alpha1.Application)) *v1alpha1.Application {
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

// BenchApp returns a realistic Application, the i-th of a fleet: 30
// resources in 5 waves, a few drifted, conditions, a finished operation
// (ten minutes before t0) and a full history, as the benchmarks of the
// tracker and the exposition measure them.
func BenchApp(i int, t0 time.Time) *v1alpha1.Application {
	a := &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("app-%05d", i), Namespace: "argocd", UID: types.UID(fmt.Sprintf("uid-%05d", i)),
			Labels: map[string]string{"env": []string{"dev", "stage", "prod"}[i%3]},
		},
		Spec: v1alpha1.ApplicationSpec{
			Project: fmt.Sprintf("team-%02d", i%40),
			Source: &v1alpha1.ApplicationSource{
				RepoURL: "https://git.example.com/platform/deploy.git", Path: fmt.Sprintf("apps/app-%05d", i), TargetRevision: "main",
			},
			Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: fmt.Sprintf("ns-%05d", i)},
			SyncPolicy:  &v1alpha1.SyncPolicy{Automated: &v1alpha1.SyncPolicyAutomated{Prune: new(true), SelfHeal: new(true)}},
		},
	}
	st := &a.Status
	st.Sync.Status = v1alpha1.SyncStatusCodeSynced
	st.Health.Status = health.HealthStatusHealthy
	kinds := []struct{ group, kind string }{{"", "ConfigMap"}, {"", "Service"}, {"apps", "Deployment"}, {"", "Secret"}, {"networking.k8s.io", "Ingress"}}
	for r := 0; r < 30; r++ {
		k := kinds[r%len(kinds)]
		status := v1alpha1.SyncStatusCodeSynced
		if i%10 == 0 && r%7 == 0 {
			status = v1alpha1.SyncStatusCodeOutOfSync
			st.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
		}
		st.Resources = append(st.Resources, v1alpha1.ResourceStatus{Group: k.group, Kind: k.kind, Name: fmt.Sprintf("r%d", r), Status: status, SyncWave: int64(r % 5)})
	}
	if i%20 == 0 {
		st.Conditions = []v1alpha1.ApplicationCondition{{Type: v1alpha1.ApplicationConditionSyncError}}
	}
	for h := 0; h < 10; h++ {
		start := t0.Add(time.Duration(h-20) * time.Minute)
		st.History = append(st.History, v1alpha1.RevisionHistory{ID: int64(h), DeployStartedAt: mtime(start), DeployedAt: metav1.NewTime(start.Add(40 * time.Second))})
	}
	st.OperationState = &v1alpha1.OperationState{
		Phase: synccommon.OperationSucceeded, StartedAt: metav1.NewTime(t0.Add(-11 * time.Minute)), FinishedAt: mtime(t0.Add(-10 * time.Minute)),
	}
	return a
}

func mtime(t time.Time) *metav1.Time {
	m := metav1.NewTime(t)
	return &m
}

// FamilyCase is an Application first seen at t0 (View.App) and the view the
// tracker hands on for it. The tracker's TestFamilyViews checks that view;
// the exposition's family tests render it and want each family's samples
// literally: the two halves of one test, joined here on the same inputs.
type FamilyCase struct {
	Name string
	View *model.AppView
}

// FamilyCases returns the cases, fresh each time, the Applications first
// seen at t0.
func FamilyCases(t0 time.Time) []FamilyCase {
	return []FamilyCase{
		// No status at all.
		{"no status", &model.AppView{App: WebApp(), Env: "unknown", Dest: "in-cluster"}},
		// Synced and healthy, last operation finished before crowsnest started.
		{"synced", &model.AppView{
			App: WebApp(func(a *v1alpha1.Application) {
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
			Env:            "prod",
			Dest:           "in-cluster",
			Policies:       []model.PolicyResult{{Policy: "auto_sync", Violated: true}, {Policy: "images_by_digest"}},
			Phase:          "Failed",
			LastFinished:   &model.FinishedOperation{Result: model.ResultFailed, Started: t0.Add(-10 * time.Minute), Finished: t0.Add(-9 * time.Minute)},
			LastSuccessful: t0.Add(-time.Hour),
		}},
		// Out of sync: drifted resources by group and kind, drift since the event; never synced, so awaiting its first sync.
		{"out of sync", &model.AppView{
			App: WebApp(func(a *v1alpha1.Application) {
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
			Env:               "unknown",
			Dest:              "in-cluster",
			DriftSince:        t0,
			AwaitingSyncSince: t0,
		}},
		// Statuses and phases crowsnest does not know.
		{"unknown states", &model.AppView{
			App: WebApp(func(a *v1alpha1.Application) {
				a.Status.Sync.Status = "Drifting"
				a.Status.Health.Status = "Exploded"
				a.Status.OperationState = &v1alpha1.OperationState{Phase: "Pausing", StartedAt: metav1.NewTime(t0)}
			}),
			Env:      "unknown",
			Dest:     "in-cluster",
			Phase:    "Pausing",
			Progress: &model.SyncProgress{Wave: model.UnknownWave},
		}},
		// Credentials in the repo URL, odd characters in label values, multi-source, named cluster.
		{"odd labels", &model.AppView{
			App: WebApp(func(a *v1alpha1.Application) {
				a.Spec.Source = nil
				// The values source comes first, as is common: crowsnest_app_info
				// shows the chart's source all the same.
				a.Spec.Sources = v1alpha1.ApplicationSources{
					{RepoURL: "https://other.example.com/values.git", Ref: "values"},
					{RepoURL: "https://deploy-bot:glpat-s3cr3t@gitlab.example.com/platform/charts.git", Chart: `we"ird\chart`, TargetRevision: "1.2.*"},
				}
				a.Spec.Destination = v1alpha1.ApplicationDestination{Name: "prod-eu", Namespace: "web"}
			}),
			Env:  "unknown",
			Dest: "prod-eu",
		}},
	}
}
