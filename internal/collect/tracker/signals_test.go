package tracker

import (
	"bytes"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/model"
)

// requested sets .operation as the CLI, the UI and auto-sync do
// (argo.SetAppOperation clears the operation state too).
func requested(dryRun bool) func(*v1alpha1.Application) {
	return func(a *v1alpha1.Application) {
		a.Operation = &v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{DryRun: dryRun}, InitiatedBy: v1alpha1.OperationInitiator{Username: "alice"}}
		a.Status.OperationState = nil
	}
}

func withMessage(msg string) func(*v1alpha1.Application) {
	return func(a *v1alpha1.Application) { a.Status.OperationState.Message = msg }
}

func asDryRun(a *v1alpha1.Application) {
	a.Status.OperationState.Operation.Sync = &v1alpha1.SyncOperation{DryRun: true}
}

// TestPendingTerminatedDryRunDeleting walks one app through what the
// CLI and the controller write: a requested sync waits (Pending), runs,
// is terminated (Terminated, not Failed); the next sync succeeds; a dry
// run changes nothing but its own counter; then the app is deleted.
func TestPendingTerminatedDryRunDeleting(t *testing.T) {
	tr, s, reg := newTrackerWithRegistry(false)
	phase := func() string {
		t.Helper()
		for _, p := range model.OperationPhases() {
			if v, ok := value(t, s, "crowsnest_app_operation_phase", "name", "web", "phase", p); ok && v == 1 {
				return p
			}
		}
		return ""
	}
	gauge := func(name string, labels ...string) (float64, bool) {
		t.Helper()
		return value(t, s, name, append([]string{"name", "web"}, labels...)...)
	}
	step := func(d time.Duration, mutate ...func(*v1alpha1.Application)) {
		tr.Handle(model.Event{Type: model.Modified, Time: at(d), App: newApp(mutate...)})
	}

	step(0)
	if p := phase(); p != "" {
		t.Fatalf("phase %q before any operation, want none", p)
	}
	step(time.Second, requested(false))
	if p := phase(); p != "Pending" {
		t.Fatalf("phase %q after the CLI asked for a sync, want Pending", p)
	}
	step(5*time.Second, requested(false)) // still waiting: the clock keeps its start
	if v, ok := gauge("crowsnest_app_operation_pending_since_timestamp_seconds"); !ok || v != unixSeconds(at(time.Second)) {
		t.Errorf("pending since %v (present %v), want when first seen", v, ok)
	}
	step(10*time.Second, operation(synccommon.OperationRunning, at(10*time.Second), nil))
	if _, ok := gauge("crowsnest_app_operation_pending_since_timestamp_seconds"); ok || phase() != "Running" {
		t.Errorf("phase %q, pending gauge present %v: want Running and no pending gauge", phase(), ok)
	}
	step(20*time.Second, operation(synccommon.OperationTerminating, at(10*time.Second), nil))
	step(25*time.Second, operation(synccommon.OperationFailed, at(10*time.Second), ptr(at(24*time.Second))), withMessage("Operation terminated"))
	if p := phase(); p != "Terminated" {
		t.Errorf("phase %q after terminate-op, want Terminated", p)
	}
	for result, want := range map[string]float64{"Terminated": 1, "Failed": 0} {
		if v, _ := gauge("crowsnest_app_syncs_total", "result", result); v != want {
			t.Errorf("syncs_total{%s} = %v, want %v", result, v, want)
		}
	}
	// The next sync runs: the last one's gauges stay until it ends.
	step(60*time.Second, operation(synccommon.OperationRunning, at(60*time.Second), nil))
	if v, ok := gauge("crowsnest_app_last_sync_finished_timestamp_seconds", "result", "Terminated"); !ok || v != unixSeconds(at(24*time.Second)) {
		t.Errorf("last_sync_finished{Terminated} = %v (present %v) while the next sync runs, want the terminated one's", v, ok)
	}
	step(70*time.Second, operation(synccommon.OperationSucceeded, at(60*time.Second), ptr(at(69*time.Second))))
	lastOK, _ := gauge("crowsnest_app_last_successful_sync_timestamp_seconds")
	durations, _ := histogram(t, reg, "crowsnest_sync_duration_seconds")

	// A dry run: asked for, run, failed. Nothing but its counter moves.
	step(80*time.Second, requested(true))
	step(81*time.Second, operation(synccommon.OperationRunning, at(81*time.Second), nil), asDryRun)
	if p := phase(); p != "Succeeded" {
		t.Errorf("phase %q while a dry run runs, want the last real sync's Succeeded", p)
	}
	step(85*time.Second, operation(synccommon.OperationFailed, at(81*time.Second), ptr(at(84*time.Second))), asDryRun)
	if p := phase(); p != "Succeeded" {
		t.Errorf("phase %q after a failed dry run, want Succeeded (a dry run pages nothing)", p)
	}
	if v, _ := gauge("crowsnest_app_dry_runs_total"); v != 1 {
		t.Errorf("dry_runs_total = %v, want 1", v)
	}
	for result, want := range map[string]float64{"Succeeded": 1, "Failed": 0, "Terminated": 1} {
		if v, _ := gauge("crowsnest_app_syncs_total", "result", result); v != want {
			t.Errorf("syncs_total{%s} = %v after the dry run, want %v", result, v, want)
		}
	}
	if v, _ := gauge("crowsnest_app_last_successful_sync_timestamp_seconds"); v != lastOK {
		t.Errorf("last successful sync moved to %v with a dry run, want %v", v, lastOK)
	}
	if v, ok := gauge("crowsnest_app_last_sync_finished_timestamp_seconds", "result", "Succeeded"); !ok || v != unixSeconds(at(69*time.Second)) {
		t.Errorf("last_sync_finished = %v (present %v), want the real sync's", v, ok)
	}
	if n, _ := histogram(t, reg, "crowsnest_sync_duration_seconds"); n != durations {
		t.Errorf("sync duration histogram count %d after a dry run, want %d", n, durations)
	}

	// Deletion asked for: the app shows as deleting until it is gone.
	deleted := metav1.NewTime(at(90 * time.Second))
	step(91*time.Second, func(a *v1alpha1.Application) { a.DeletionTimestamp = &deleted })
	if v, ok := gauge("crowsnest_app_deletion_timestamp_seconds"); !ok || v != unixSeconds(deleted.Time) {
		t.Errorf("deletion timestamp %v (present %v), want the app's deletionTimestamp", v, ok)
	}
}

// A terminated sync is known by its message even when crowsnest never saw
// it Terminating (it finished between two observations, or before start).
func TestTerminatedByMessageAlone(t *testing.T) {
	tr, s := newTestTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(operation(synccommon.OperationRunning, t0, nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: newApp(
		operation(synccommon.OperationFailed, t0, ptr(at(50*time.Second))), withMessage("Operation terminated"))})
	if v, _ := value(t, s, "crowsnest_app_syncs_total", "name", "web", "result", "Terminated"); v != 1 {
		t.Errorf("syncs_total{Terminated} = %v, want 1", v)
	}
	if v, _ := value(t, s, "crowsnest_app_operation_phase", "name", "web", "phase", "Failed"); v != 0 {
		t.Error("a terminated sync shows as Failed")
	}
}

// What Argo CD v3.6.1's controller writes for an operation that ran past its
// --sync-timeout (ApplicationController.processRequestedAppOperation).
const (
	timeoutTerminating = "operation is terminating due to timeout"
	timeoutFailed      = "Operation terminated, triggered by controller sync timeout"
)

// TestSyncTimeoutIsFailure: a sync the controller terminates for its sync
// timeout is a failure (phase and result Failed, counted once), however
// crowsnest saw it: Terminating then Failed with the timeout in the final
// message; Terminating then Failed with the bare message the controller
// writes when it resumes the termination after a restart (the cause is in
// the Terminating message only); or only its end, with the retries the
// final message may count. (The last two held before crowsnest told the
// timeout apart too, as it matched the bare message only: they keep it so.)
func TestSyncTimeoutIsFailure(t *testing.T) {
	for _, tc := range []struct {
		name        string
		terminating string // the Terminating state's message; "" if not seen
		final       string
	}{
		{"terminating then failed", timeoutTerminating, timeoutFailed},
		{"cause in the terminating state only", timeoutTerminating, "Operation terminated"},
		{"failed only", "", timeoutFailed},
		{"failed only, after retries", "", timeoutFailed + " (retried 2 times)."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, s := newTestTracker()
			step := func(d time.Duration, mutate ...func(*v1alpha1.Application)) {
				tr.Handle(model.Event{Type: model.Modified, Time: at(d), App: newApp(mutate...)})
			}
			step(0)
			step(10*time.Second, operation(synccommon.OperationRunning, at(10*time.Second), nil), withMessage("waiting for completion of hook batch/Job/presync"))
			if tc.terminating != "" {
				step(70*time.Second, operation(synccommon.OperationTerminating, at(10*time.Second), nil), withMessage(tc.terminating))
				if v, _ := value(t, s, "crowsnest_app_operation_phase", "name", "web", "phase", "Terminating"); v != 1 {
					t.Errorf("phase Terminating = %v while the controller terminates the sync, want 1", v)
				}
			}
			for _, d := range []time.Duration{71 * time.Second, 90 * time.Second} { // seen twice: counted once
				step(d, operation(synccommon.OperationFailed, at(10*time.Second), ptr(at(71*time.Second))), withMessage(tc.final))
			}
			expectPhasesAndSyncs(t, s, "after the sync timeout", map[string]float64{"Failed": 1, "Terminated": 0}, map[string]float64{"Failed": 1, "Terminated": 0})
		})
	}
}

// A person's terminate-op of a sync that had been retried ends "Operation
// terminated (retried N times).": seen only at its end it is Terminated,
// counted so, and pages nobody.
func TestTerminateOpAfterRetriesSeenOnlyAtTheEnd(t *testing.T) {
	tr, s := newTestTracker()
	tr.Handle(model.Event{Type: model.Modified, Time: t0, App: newApp()})
	tr.Handle(model.Event{Type: model.Modified, Time: at(90 * time.Second), App: newApp(
		operation(synccommon.OperationFailed, at(10*time.Second), ptr(at(80*time.Second))), withMessage("Operation terminated (retried 2 times)."))})
	expectPhasesAndSyncs(t, s, "seen only at its end", map[string]float64{"Failed": 0, "Terminated": 1}, map[string]float64{"Failed": 0, "Terminated": 1})
}

// TestSyncTimeoutAfterRestart: crowsnest started after the controller
// ended the sync for its timeout shows it Failed (it pages), without
// counting it: it finished before crowsnest watched. (Held before too;
// kept so.)
func TestSyncTimeoutAfterRestart(t *testing.T) {
	tr, s := newTestTracker()
	tr.Handle(model.Event{Type: model.Added, Time: at(time.Hour), App: newApp(
		operation(synccommon.OperationFailed, t0, ptr(at(5*time.Minute))), withMessage(timeoutFailed))})
	if v, _ := value(t, s, "crowsnest_app_operation_phase", "name", "web", "phase", "Failed"); v != 1 {
		t.Errorf("phase Failed = %v, want 1", v)
	}
	if v := syncs(t, s, "Failed"); v != 0 {
		t.Errorf("syncs_total{Failed} = %v for a sync that ended before crowsnest started, want 0", v)
	}
}

// TestTerminateOpAfterSyncTimeout: a person's terminate-op stays
// Terminated, also after an earlier operation of the app timed out (what
// crowsnest remembers of that one's Terminating state is not this one's).
func TestTerminateOpAfterSyncTimeout(t *testing.T) {
	tr, s := newTestTracker()
	step := func(d time.Duration, mutate ...func(*v1alpha1.Application)) {
		tr.Handle(model.Event{Type: model.Modified, Time: at(d), App: newApp(mutate...)})
	}
	step(0, operation(synccommon.OperationRunning, t0, nil))
	step(61*time.Second, operation(synccommon.OperationTerminating, t0, nil), withMessage(timeoutTerminating))
	step(62*time.Second, operation(synccommon.OperationFailed, t0, ptr(at(62*time.Second))), withMessage(timeoutFailed))
	// The next sync: terminate-op keeps the running message, then
	// gitops-engine ends it.
	step(2*time.Minute, operation(synccommon.OperationRunning, at(2*time.Minute), nil), withMessage("waiting for completion of hook batch/Job/presync"))
	step(130*time.Second, operation(synccommon.OperationTerminating, at(2*time.Minute), nil), withMessage("waiting for completion of hook batch/Job/presync"))
	step(131*time.Second, operation(synccommon.OperationFailed, at(2*time.Minute), ptr(at(131*time.Second))), withMessage("Operation terminated"))
	expectPhasesAndSyncs(t, s, "after terminate-op", map[string]float64{"Failed": 0, "Terminated": 1}, map[string]float64{"Failed": 1, "Terminated": 1})
}

// A multi-source app's operation carries every source's revision: Argo CD
// fills only syncResult.revisions (and history revisions) for it.
func TestMultiSourceRevisions(t *testing.T) {
	tr, _ := newTestTracker()
	var got operations
	tr.addOperationSubscriber(&got)
	var facts factsSeen
	tr.subs.Facts = append(tr.subs.Facts, &facts)
	multi := func(a *v1alpha1.Application) {
		a.Spec.Source = nil
		a.Spec.Sources = v1alpha1.ApplicationSources{{RepoURL: "https://git.example.com/values.git", Ref: "values"}, {RepoURL: "https://git.example.com/chart.git", Path: "chart"}}
	}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(multi, operation(synccommon.OperationRunning, t0, nil))})
	done := newApp(multi, operation(synccommon.OperationSucceeded, t0, ptr(at(5*time.Second))), func(a *v1alpha1.Application) {
		a.Status.OperationState.SyncResult = &v1alpha1.SyncOperationResult{Revisions: []string{"aaa111", "bbb222"}}
	})
	tr.Handle(model.Event{Type: model.Modified, Time: at(6 * time.Second), App: done})
	ops := got.get()
	if len(ops) != 1 || len(ops[0].Revisions) != 2 || ops[0].RevisionText() != "aaa111,bbb222" {
		t.Fatalf("operations %+v, want one with both sources' revisions", ops)
	}
	found := false
	for _, f := range facts.list {
		for i := 0; i+1 < len(f.Attrs); i += 2 {
			if f.Name == model.FactSyncFinished && f.Attrs[i] == "revision" && f.Attrs[i+1] == "aaa111,bbb222" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no sync_finished fact with revision aaa111,bbb222 among %+v", facts.list)
	}
}

// A dry run waiting for a controller keeps the last real phase and shows
// no pending clock: only a real sync waiting can page (CrowsnestSyncStuck).
func TestDryRunWaitingIsNotPending(t *testing.T) {
	tr, s := newTestTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(operation(synccommon.OperationSucceeded, t0, ptr(at(time.Second))))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: newApp(requested(true))})
	if v, _ := value(t, s, "crowsnest_app_operation_phase", "name", "web", "phase", "Succeeded"); v != 1 {
		t.Error("a dry run waiting for a controller changed the phase")
	}
	if _, ok := value(t, s, "crowsnest_app_operation_pending_since_timestamp_seconds", "name", "web"); ok {
		t.Error("a dry run waiting for a controller shows a pending clock")
	}
}

// Two operations that start in the same second (a CI loop running `argocd
// app sync` twice, a zero-backoff self-heal) are two: counted twice, timed
// twice, each with its own trace id, as Argo CD writes them (startedAt in
// whole seconds, one history entry each).
func TestTwoOperationsInOneSecond(t *testing.T) {
	tr, s, reg := newTrackerWithRegistry(false)
	var got operations
	tr.addOperationSubscriber(&got)
	start := at(10 * time.Second)
	hist := func(n int) func(*v1alpha1.Application) {
		return func(a *v1alpha1.Application) {
			a.Status.History = nil
			for i := 0; i < n; i++ {
				a.Status.History = append(a.Status.History, v1alpha1.RevisionHistory{ID: int64(i), DeployStartedAt: mtime(start), DeployedAt: metav1.NewTime(start.Add(time.Duration(i+1) * 300 * time.Millisecond))})
			}
		}
	}
	step := func(d time.Duration, mutate ...func(*v1alpha1.Application)) {
		tr.Handle(model.Event{Type: model.Modified, Time: at(d), App: newApp(mutate...)})
	}
	step(0)
	step(10*time.Second, operation(synccommon.OperationRunning, start, nil))
	step(10*time.Second+400*time.Millisecond, operation(synccommon.OperationSucceeded, start, ptr(start.Add(300*time.Millisecond))), hist(1))
	// The second sync, asked for at once, starts in the same second.
	step(10*time.Second+700*time.Millisecond, operation(synccommon.OperationRunning, start, nil), hist(1))
	step(11*time.Second, operation(synccommon.OperationSucceeded, start, ptr(start.Add(600*time.Millisecond))), hist(2))
	step(12*time.Second, operation(synccommon.OperationSucceeded, start, ptr(start.Add(600*time.Millisecond))), hist(2)) // a resync
	if v, _ := value(t, s, "crowsnest_app_syncs_total", "name", "web", "result", "Succeeded"); v != 2 {
		t.Errorf("syncs_total{Succeeded} = %v, want 2", v)
	}
	if n, _ := histogram(t, reg, "crowsnest_sync_duration_seconds"); n != 2 {
		t.Errorf("duration histogram count %d, want 2", n)
	}
	ops := got.get()
	if len(ops) != 2 || ops[0].TraceID() == ops[1].TraceID() || ops[0].TraceID() != model.OperationID("uid-web", start) {
		t.Fatalf("operations %+v, want two with distinct trace ids, the first the usual one", ops)
	}
	// Each was watched from its start: from its operation state, not
	// pieced together from the history.
	for i, op := range ops {
		if op.Partial || op.Seq != i {
			t.Errorf("operation %d: partial %v, seq %d; want whole, seq %d", i, op.Partial, op.Seq, i)
		}
	}
}

// An operation that started and ended in the same second as the one
// before, between two observations, is a new one too: the finish time
// changed and no retry explains it.
func TestOperationFinishedBetweenObservationsInTheSameSecond(t *testing.T) {
	tr, s := newTestTracker()
	start := at(10 * time.Second)
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(operation(synccommon.OperationRunning, start, nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(12 * time.Second), App: newApp(operation(synccommon.OperationSucceeded, start, ptr(at(11*time.Second))))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(14 * time.Second), App: newApp(operation(synccommon.OperationFailed, start, ptr(at(13*time.Second))))})
	for result, want := range map[string]float64{"Succeeded": 1, "Failed": 1} {
		if v, _ := value(t, s, "crowsnest_app_syncs_total", "name", "web", "result", result); v != want {
			t.Errorf("syncs_total{%s} = %v, want %v", result, v, want)
		}
	}
}

// An Application anyone may create with a 4 MB project name and bytes that
// are not UTF-8 neither blows up the exposition nor breaks the scrape.
func TestHostileLabelValues(t *testing.T) {
	tr, s := newTestTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(func(a *v1alpha1.Application) {
		a.Spec.Project = strings.Repeat("p", 4<<20)
		a.Spec.Source.TargetRevision = "main\xff\xfe"
	})})
	var buf bytes.Buffer
	if _, err := s.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 200<<10 {
		t.Errorf("the exposition of one app is %d bytes, want the labels capped", buf.Len())
	}
	parseStore(t, s) // fails the test if the text does not parse
	if !strings.Contains(buf.String(), `target_revision="main`+"\uFFFD"+`"`) {
		t.Error("invalid UTF-8 not replaced")
	}
}

// factsSeen collects the tracker's facts.
type factsSeen struct{ list []model.Fact }

func (f *factsSeen) Fact(fact *model.Fact) { f.list = append(f.list, *fact) }

// A recording line with "syncResult":{"resources":[null]} (hand-made, or a
// bug elsewhere) must not crash the daemon.
func TestNilResourceResults(t *testing.T) {
	tr, s := newTestTracker()
	var got operations
	tr.addOperationSubscriber(&got)
	withNil := func(a *v1alpha1.Application) {
		a.Status.OperationState.SyncResult = &v1alpha1.SyncOperationResult{Resources: v1alpha1.ResourceResults{nil,
			{Kind: "ConfigMap", Name: "cm", SyncPhase: synccommon.SyncPhaseSync, Status: synccommon.ResultCodeSyncFailed}, nil}}
	}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(operation(synccommon.OperationRunning, t0, nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: newApp(operation(synccommon.OperationRunning, t0, nil), withNil)})
	tr.Handle(model.Event{Type: model.Modified, Time: at(2 * time.Second), App: newApp(operation(synccommon.OperationFailed, t0, ptr(at(2*time.Second))), withNil)})
	if v, _ := value(t, s, "crowsnest_app_syncs_total", "name", "web", "result", "Failed"); v != 1 {
		t.Errorf("syncs_total{Failed} = %v, want 1", v)
	}
	if ops := got.get(); len(ops) != 1 || len(ops[0].Waves) != 1 || len(ops[0].Waves[0].Resources) != 1 {
		t.Errorf("operations %+v, want one with the one real result", ops)
	}
}

// expectPhasesAndSyncs checks app web's operation phase state set and its
// syncs_total per result, when (a few words) saying after what.
func expectPhasesAndSyncs(t *testing.T, s *exposition.Store, when string, phases, results map[string]float64) {
	t.Helper()
	for phase, want := range phases {
		if v, _ := value(t, s, "crowsnest_app_operation_phase", "name", "web", "phase", phase); v != want {
			t.Errorf("phase %s = %v %s, want %v", phase, v, when, want)
		}
	}
	for result, want := range results {
		if v := syncs(t, s, result); v != want {
			t.Errorf("syncs_total{%s} = %v %s, want %v", result, v, when, want)
		}
	}
}
