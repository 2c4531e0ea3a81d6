package tracker

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

type releaseCall struct {
	uid               types.UID
	started, finished time.Time
}

// The tracker releases an operation's results once it handed the operation
// off, or took it as a baseline, and forgets an app that is gone.
func TestTrackerReleasesHandedOffOperations(t *testing.T) {
	tr, _ := newTestTracker()
	var calls []releaseCall
	tr.SetOnRelease(func(uid types.UID, started, finished time.Time) {
		calls = append(calls, releaseCall{uid, started, finished})
	})
	withOp := func(phase synccommon.OperationPhase, started time.Time, finished *time.Time) *v1alpha1.Application {
		return newApp(func(a *v1alpha1.Application) {
			a.Status.OperationState = &v1alpha1.OperationState{Phase: phase, StartedAt: *mtime(started),
				Operation:  v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: "abc"}},
				SyncResult: &v1alpha1.SyncOperationResult{Revision: "abc", Resources: v1alpha1.ResourceResults{{Kind: "ConfigMap", Name: "cm", Status: synccommon.ResultCodeSynced, SyncPhase: synccommon.SyncPhaseSync}}}}
			if finished != nil {
				a.Status.OperationState.FinishedAt = mtime(*finished)
			}
		})
	}
	// A baseline: finished before the first event.
	baseStart, baseEnd := t0.Add(-time.Hour), t0.Add(-time.Hour+time.Minute)
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: withOp(synccommon.OperationSucceeded, baseStart, &baseEnd)})
	if len(calls) != 1 || calls[0] != (releaseCall{"uid-web", baseStart, baseEnd}) {
		t.Fatalf("after a baseline: release calls %+v, want the baseline's", calls)
	}
	// A watched operation: released when it is handed off, not before.
	start := t0.Add(time.Minute)
	tr.Handle(model.Event{Type: model.Modified, Time: start, App: withOp(synccommon.OperationRunning, start, nil)})
	if len(calls) != 1 {
		t.Fatalf("a running operation was released: %+v", calls)
	}
	end := start.Add(30 * time.Second)
	tr.Handle(model.Event{Type: model.Modified, Time: end, App: withOp(synccommon.OperationSucceeded, start, &end)})
	if len(calls) != 2 || calls[1] != (releaseCall{"uid-web", start, end}) {
		t.Fatalf("after the operation finished: release calls %+v, want it released", calls)
	}
	// Seen again: not released twice.
	tr.Handle(model.Event{Type: model.Modified, Time: end.Add(time.Minute), App: withOp(synccommon.OperationSucceeded, start, &end)})
	if len(calls) != 2 {
		t.Errorf("released again: %+v", calls)
	}
	tr.Handle(model.Event{Type: model.Deleted, Time: end.Add(2 * time.Minute), App: newApp()})
	if len(calls) != 3 || calls[2] != (releaseCall{uid: "uid-web"}) {
		t.Errorf("after the deletion: release calls %+v, want the app forgotten (zero times)", calls)
	}
}
