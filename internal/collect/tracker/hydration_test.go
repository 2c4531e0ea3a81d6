package tracker

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// hydratedApp returns "web" with a source hydrator whose current operation
// is op (nil: none yet) and whose last success hydrated dry into hydrated.
func hydratedApp(op *v1alpha1.HydrateOperation, dry, hydrated string) *v1alpha1.Application {
	return newApp(func(a *v1alpha1.Application) {
		a.Spec.Source = nil
		a.Spec.SourceHydrator = &v1alpha1.SourceHydrator{
			DrySource:  v1alpha1.DrySource{RepoURL: "https://git.example.com/deploy.git", Path: "apps/web", TargetRevision: "HEAD"},
			SyncSource: v1alpha1.SyncSource{TargetBranch: "env/prod", Path: "web"},
		}
		a.Status.SourceHydrator.CurrentOperation = op
		if dry != "" {
			a.Status.SourceHydrator.LastSuccessfulOperation = &v1alpha1.SuccessfulHydrateOperation{DrySHA: dry, HydratedSHA: hydrated}
		}
	})
}

func hydrateOp(phase v1alpha1.HydrateOperationPhase, started time.Time, finished *time.Time, dry, hydrated string) *v1alpha1.HydrateOperation {
	op := &v1alpha1.HydrateOperation{Phase: phase, StartedAt: metav1.NewTime(started), DrySHA: dry, HydratedSHA: hydrated}
	if finished != nil {
		op.FinishedAt = mtime(*finished)
	}
	return op
}

// The hydrator's state as series: phase, SHAs of the last success, lag from
// the first operation that has not succeeded (across a failure and its
// retry), the last success's duration, and each finished operation counted
// once; an operation finished before crowsnest first looked is not counted.
func TestHydration(t *testing.T) {
	tr, s := newTestTracker()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ptr := func(d time.Duration) *time.Time { v := at(d); return &v }
	handle := func(d time.Duration, a *v1alpha1.Application) {
		tr.Handle(model.Event{Type: model.Modified, Time: at(d), App: a})
	}
	get := func(metric string, labels ...string) (float64, bool) {
		t.Helper()
		return value(t, s, metric, append([]string{"name", "web"}, labels...)...)
	}
	expect := func(step, phase string, lagSince time.Time, hydrated, failed float64) {
		t.Helper()
		if v, ok := get("crowsnest_app_hydration_phase", "phase", phase); !ok || v != 1 {
			t.Errorf("%s: hydration_phase{phase=%s} = %v (present %v), want 1", step, phase, v, ok)
		}
		v, ok := get("crowsnest_app_hydration_lagging_since_timestamp_seconds")
		switch {
		case lagSince.IsZero() && ok:
			t.Errorf("%s: lagging since %v, want no lag", step, v)
		case !lagSince.IsZero() && (!ok || v != unixSeconds(lagSince)):
			t.Errorf("%s: lagging since %v (present %v), want %v", step, v, ok, unixSeconds(lagSince))
		}
		for result, want := range map[string]float64{"Hydrated": hydrated, "Failed": failed} {
			if v, ok := get("crowsnest_app_hydrations_total", "result", result); !ok || v != want {
				t.Errorf("%s: hydrations_total{result=%s} = %v (present %v), want %v", step, result, v, ok, want)
			}
		}
	}

	// Already hydrated when crowsnest starts: the baseline, not counted.
	handle(0, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseHydrated, at(-time.Minute), ptr(-50*time.Second), "dry1", "hyd1"), "dry1", "hyd1"))
	expect("start", "Hydrated", time.Time{}, 0, 0)
	if v, ok := get("crowsnest_app_last_hydration_duration_seconds"); !ok || v != 10 {
		t.Errorf("last hydration duration = %v (present %v), want 10", v, ok)
	}
	if _, ok := get("crowsnest_app_hydration_info", "dry_sha", "dry1", "hydrated_sha", "hyd1", "sync_branch", "env/prod", "dry_path", "apps/web"); !ok {
		t.Error("no hydration_info for dry1/hyd1")
	}
	// A new dry commit: hydrating, then it fails, then the retry runs.
	handle(10*time.Second, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseHydrating, at(10*time.Second), nil, "", ""), "dry1", "hyd1"))
	expect("hydrating", "Hydrating", at(10*time.Second), 0, 0)
	failed := hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseFailed, at(10*time.Second), ptr(12*time.Second), "", ""), "dry1", "hyd1")
	handle(12*time.Second, failed)
	handle(13*time.Second, failed.DeepCopy()) // the same state again counts nothing
	expect("failed", "Failed", at(10*time.Second), 0, 1)
	handle(2*time.Minute+12*time.Second, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseHydrating, at(2*time.Minute+12*time.Second), nil, "", ""), "dry1", "hyd1"))
	expect("retrying", "Hydrating", at(10*time.Second), 0, 1)
	handle(2*time.Minute+15*time.Second, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseHydrated, at(2*time.Minute+12*time.Second), ptr(2*time.Minute+15*time.Second), "dry2", "hyd2"), "dry2", "hyd2"))
	expect("hydrated", "Hydrated", time.Time{}, 1, 1)
	if v, ok := get("crowsnest_app_last_hydration_duration_seconds"); !ok || v != 3 {
		t.Errorf("last hydration duration = %v (present %v), want 3", v, ok)
	}
	if _, ok := get("crowsnest_app_hydration_info", "dry_sha", "dry2", "hydrated_sha", "hyd2"); !ok {
		t.Error("no hydration_info for dry2/hyd2")
	}
	// The hydrator hydrates the same operation (same start) twice and
	// writes it Hydrated again a second later (argo-cd#27926): one
	// hydration, counted once.
	handle(2*time.Minute+16*time.Second, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseHydrated, at(2*time.Minute+12*time.Second), ptr(2*time.Minute+16*time.Second), "dry2", "hyd2"), "dry2", "hyd2"))
	expect("hydrated twice", "Hydrated", time.Time{}, 1, 1)

	// Argo CD keeps whole seconds: a hydration that starts and fails in the
	// second the last one started and succeeded is still a new one, and so
	// is the retry that succeeds within that second again.
	same := 2*time.Minute + 15*time.Second
	handle(same, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseHydrating, at(same), nil, "", ""), "dry2", "hyd2"))
	handle(same, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseFailed, at(same), ptr(same), "", ""), "dry2", "hyd2"))
	expect("failed in the same second", "Failed", at(same), 1, 2)
	handle(same, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseHydrating, at(same), nil, "", ""), "dry2", "hyd2"))
	handle(same, hydratedApp(hydrateOp(v1alpha1.HydrateOperationPhaseFailed, at(same), ptr(same), "", ""), "dry2", "hyd2"))
	expect("failed again in the same second", "Failed", at(same), 1, 3)

	// An app without a source hydrator has none of these series.
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(func(a *v1alpha1.Application) { a.Name, a.UID = "plain", "uid-plain" })})
	for _, m := range []string{"crowsnest_app_hydration_info", "crowsnest_app_hydration_phase", "crowsnest_app_hydrations_total", "crowsnest_app_last_hydration_duration_seconds"} {
		for _, series := range parseStore(t, s)[m].GetMetric() {
			if labelsMatch(series, []string{"name", "plain"}) {
				t.Errorf("%s has a series for an app without a source hydrator", m)
			}
		}
	}
}

// A sync to the hydrated SHA carries the dry commit it renders, for its
// trace; a sync to another revision does not.
func TestSyncOfHydratedRevisionCarriesDrySHA(t *testing.T) {
	for _, c := range []struct{ synced, want string }{{"hyd2", "dry2"}, {"other", ""}} {
		tr, _ := newTestTracker()
		var got operations
		tr.addOperationSubscriber(&got)
		app := hydratedApp(nil, "dry2", "hyd2")
		app.Status.OperationState = &v1alpha1.OperationState{Phase: synccommon.OperationRunning, StartedAt: metav1.NewTime(t0),
			Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: c.synced}}}
		tr.Handle(model.Event{Type: model.Added, Time: t0, App: app})
		done := app.DeepCopy()
		done.Status.OperationState.Phase, done.Status.OperationState.FinishedAt = synccommon.OperationSucceeded, mtime(t0.Add(2*time.Second))
		done.Status.OperationState.SyncResult = &v1alpha1.SyncOperationResult{Revision: c.synced}
		tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(2 * time.Second), App: done})
		if len(got.ops) != 1 || got.ops[0].DrySHA != c.want {
			t.Errorf("sync to %s: operations %+v, want one with DrySHA %q", c.synced, got.ops, c.want)
		}
	}
}
