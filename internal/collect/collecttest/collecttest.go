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
