package source

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/client/fake"
	"github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/collect/tracker"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/demo"
)

// A finished operation's resource results leave the informer's cache at
// the app's next update once the tracker handed the operation off, and the
// sync is still counted once; a later operation keeps its own until then.
func TestHandedOffResultsLeaveTheCache(t *testing.T) {
	conf, err := config.Parse(demo.Config())
	if err != nil {
		t.Fatal(err)
	}
	store := exposition.NewStore(false)
	tr := tracker.New(conf, tracker.Subscribers{Views: []tracker.ViewSubscriber{store}}, promslog.NewNopLogger())
	client := fake.NewSimpleClientset()
	src := NewKubeSource(client, nil, NewSourceMetrics(prometheus.NewRegistry()), promslog.NewNopLogger())
	tr.SetOnRelease(src.Released)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, tr)
	waitFor(t, "ready", src.Ready)

	start := metav1.NewTime(time.Now().Truncate(time.Second))
	op := func(phase synccommon.OperationPhase, finished *metav1.Time, reconciled int) *v1alpha1.Application {
		return newApp(func(a *v1alpha1.Application) {
			r := metav1.NewTime(start.Add(time.Duration(reconciled) * time.Second))
			a.Status.ReconciledAt = &r
			a.Status.OperationState = &v1alpha1.OperationState{Phase: phase, StartedAt: start, FinishedAt: finished,
				Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: "abc"}},
				SyncResult: &v1alpha1.SyncOperationResult{Revision: "abc", Resources: v1alpha1.ResourceResults{
					{Kind: "ConfigMap", Namespace: "web", Name: "cm", Status: synccommon.ResultCodeSynced, SyncPhase: synccommon.SyncPhaseSync, Message: "configured"}}}}
		})
	}
	cachedResults := func() int {
		src.mu.Lock()
		defer src.mu.Unlock()
		obj, ok, _ := src.informers[0].GetStore().GetByKey("argocd/web")
		if !ok {
			return -1
		}
		return len(obj.(*v1alpha1.Application).Status.OperationState.SyncResult.Resources)
	}
	apps := client.Tracker()
	if err := apps.Add(op(synccommon.OperationRunning, nil, 0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the running operation", func() bool { return cachedResults() == 1 })
	finished := metav1.NewTime(start.Add(2 * time.Second))
	if err := apps.Update(fake.ApplicationsResource, op(synccommon.OperationSucceeded, &finished, 1), "argocd"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sync counted", func() bool { return syncsSucceeded(t, store) == 1 })
	if n := cachedResults(); n != 1 {
		t.Errorf("the update that finished the operation lost its results (%d): the tracker reads them", n)
	}
	// Argo CD's next status update of the app (reconciledAt).
	if err := apps.Update(fake.ApplicationsResource, op(synccommon.OperationSucceeded, &finished, 3), "argocd"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the results dropped from the cache", func() bool { return cachedResults() == 0 })
	if n := syncsSucceeded(t, store); n != 1 {
		t.Errorf("crowsnest_app_syncs_total{result=Succeeded} = %v after the results left, want 1", n)
	}
}

// syncsSucceeded reads crowsnest_app_syncs_total{result="Succeeded"} of
// argocd/web from the store's exposition; -1 if absent.
func syncsSucceeded(t *testing.T, store *exposition.Store) float64 {
	t.Helper()
	var b strings.Builder
	if _, err := store.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "crowsnest_app_syncs_total{") && strings.Contains(l, `name="web"`) && strings.Contains(l, `result="Succeeded"`) {
			v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return -1
}
