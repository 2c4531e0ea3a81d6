package tracker

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// The benchmarks of the tracker's work per update include rendering the
// app's series in the store: pipeline benchmarks, on purpose (BenchmarkScrape
// and the store's are in the exposition package).

// benchApp returns a realistic Application: 30 resources in 5 waves, a few
// drifted, conditions, a finished operation and a full history.
func benchApp(i int) *v1alpha1.Application {
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

// BenchmarkHandle measures the work done per Application update, which is
// where crowsnest renders an app's series.
func BenchmarkHandle(b *testing.B) {
	tr, _ := newTestTracker()
	app := benchApp(1)
	for b.Loop() {
		tr.Handle(model.Event{Type: model.Modified, Time: t0, App: app})
	}
}

// BenchmarkHandleChange measures an update that changes an app's series
// (its health flips between Healthy and Degraded) in a store of 10,000
// apps, each update to another app than the one before, as when many apps
// change: the store re-renders the app and re-encodes what changed.
func BenchmarkHandleChange(b *testing.B) {
	const apps, flipped = 10000, 1024
	tr, _ := newTestTracker()
	var versions [2][]*v1alpha1.Application
	for i := 0; i < apps; i++ {
		a := benchApp(i)
		tr.Handle(model.Event{Type: model.Added, Time: t0, App: a})
		if i%(apps/flipped) == 0 && len(versions[0]) < flipped {
			degraded := a.DeepCopy()
			degraded.Status.Health.Status = health.HealthStatusDegraded
			versions[0], versions[1] = append(versions[0], degraded), append(versions[1], a)
		}
	}
	k := 0
	for b.Loop() {
		tr.Handle(model.Event{Type: model.Modified, Time: t0, App: versions[k/flipped%2][k%flipped]})
		k++
	}
}

// BenchmarkMemoryPerApp reports the heap crowsnest keeps per app (tracker
// state, views, rendered series) after each of 2,000 apps ran one sync of
// 50 resources in two waves, watched from its start.
func BenchmarkMemoryPerApp(b *testing.B) {
	const apps, resources = 2000, 50
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr, store := newTestTracker()
		for i := 0; i < apps; i++ {
			a := benchApp(i)
			a.Status.OperationState = &v1alpha1.OperationState{Phase: synccommon.OperationRunning, StartedAt: metav1.NewTime(t0)}
			tr.Handle(model.Event{Type: model.Modified, Time: t0, App: a})
			results := make(v1alpha1.ResourceResults, 0, resources)
			for r := 0; r < resources; r++ {
				results = append(results, &v1alpha1.ResourceResult{Kind: "ConfigMap", Namespace: "web", Name: fmt.Sprintf("cm-%03d", r),
					SyncPhase: synccommon.SyncPhaseSync, Status: synccommon.ResultCodeSynced, Message: "configmap/cm created"})
			}
			a = a.DeepCopy()
			a.Status.OperationState.SyncResult = &v1alpha1.SyncOperationResult{Resources: results[:resources/2]}
			tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(2 * time.Second), App: a})
			a = a.DeepCopy()
			a.Status.OperationState.SyncResult.Resources = results
			tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(4 * time.Second), App: a})
			a = a.DeepCopy()
			a.Status.OperationState.Phase, a.Status.OperationState.FinishedAt = synccommon.OperationSucceeded, mtime(t0.Add(5*time.Second))
			tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(5 * time.Second), App: a})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/apps, "heap-B/app")
		runtime.KeepAlive(tr)
		runtime.KeepAlive(store)
	}
}
