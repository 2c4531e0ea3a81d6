package tracker

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/collecttest"
	"github.com/crowsnest/crowsnest/internal/model"
)

// The benchmarks of the tracker's work per update include rendering the
// app's series in the store: pipeline benchmarks, on purpose (BenchmarkScrape
// and the store's are in the exposition package).

// benchApp is the i-th app of the benchmarks' fleet.
func benchApp(i int) *v1alpha1.Application { return collecttest.BenchApp(i, t0) }

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
