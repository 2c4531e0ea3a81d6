package source

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/crowsnest/crowsnest/internal/argocd/client/fake"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The real API server outage is covered end to end in test/e2e; this checks
// the bookkeeping quickly with client-go's fake clientset.
func TestKubeSourceUpFollowsListAndWatchCalls(t *testing.T) {
	client := fake.NewSimpleClientset(newApp())
	var failing atomic.Bool
	var failedLists atomic.Int32
	failing.Store(true)
	client.PrependReactor("list", "applications", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			failedLists.Add(1)
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	reg := prometheus.NewRegistry()
	src := NewKubeSource(client, nil, NewSourceMetrics(reg), promslog.NewNopLogger())
	store := newAppsSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, store)

	up := func() float64 { return gathered(t, reg, "crowsnest_source_up", "source", "kubernetes") }
	// Wait for the source to have failed (twice: a retry too), rather
	// than for a time that may pass before it ran at all.
	waitFor(t, "two failed lists", func() bool { return failedLists.Load() >= 2 })
	if src.Ready() || up() != 0 {
		t.Fatalf("while lists fail: ready=%v up=%v, want false and 0", src.Ready(), up())
	}
	failing.Store(false)
	waitFor(t, "the source to recover", func() bool { return src.Ready() && up() == 1 })
	waitFor(t, "the app in the store", func() bool { return store.Len() == 1 })

	// Watched changes flow through.
	next := newApp(func(a *v1alpha1.Application) { a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync })
	if err := client.Tracker().Update(fake.ApplicationsResource, next, "argocd"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the update", func() bool {
		a, ok := store.get("argocd/web")
		return ok && a.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync
	})
	if err := client.Tracker().Delete(fake.ApplicationsResource, "argocd", "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion", func() bool { return store.Len() == 0 })
	if got := gathered(t, reg, "crowsnest_source_events_total", "type", "deleted"); got != 1 {
		t.Errorf("crowsnest_source_events_total{type=deleted} = %v, want 1", got)
	}
}

func TestKubeSourceWatchesOnlyTheGivenNamespaces(t *testing.T) {
	other := newApp(func(a *v1alpha1.Application) { a.Namespace, a.UID = "team-b", "uid-b" })
	third := newApp(func(a *v1alpha1.Application) { a.Namespace, a.UID = "team-c", "uid-c" })
	client := fake.NewSimpleClientset(newApp(), other, third)
	src := NewKubeSource(client, []string{"argocd", "team-b"}, NewSourceMetrics(prometheus.NewRegistry()), promslog.NewNopLogger())
	store := newAppsSink()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, store)
	waitFor(t, "ready", src.Ready)
	if _, ok := store.get("team-c/web"); ok || store.Len() != 2 {
		t.Errorf("store holds %d apps (team-c present: %v), want the 2 of the watched namespaces", store.Len(), ok)
	}
}
