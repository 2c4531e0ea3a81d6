package tracker

import (
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// operations collects what the tracker hands on for traces.
type operations struct {
	mu  sync.Mutex
	ops []model.Operation
}

func (o *operations) Finished(op *model.Operation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ops = append(o.ops, *op)
}

// TestRecordedTraces replays what a real Argo CD wrote and checks the
// operations the tracker hands on for traces: one per counted operation,
// waves in order, back to back, within Argo CD's own start and finish; the
// app-of-apps root's five waves each at least Argo CD's 2 s wave delay; and
// every child's first sync linked to the root's wave that created it.
func TestRecordedTraces(t *testing.T) {
	for _, version := range recordingVersions() {
		for _, file := range []string{"argocd-scenarios-1-3.jsonl", "argocd-scenario-4-outage.jsonl"} {
			t.Run(version+"/"+file, func(t *testing.T) { checkRecordedTraces(t, version, file) })
		}
	}
}

// checkRecordedTraces is TestRecordedTraces on one recording.
func checkRecordedTraces(t *testing.T, version, file string) {
	var got operations
	store, _, apps, _, _ := replayFile(t, recordingPath(version, file), &got)
	counted := 0.0
	for name := range apps {
		for _, result := range []string{"Succeeded", "Failed", "Error"} {
			v, _ := value(t, store, "crowsnest_app_syncs_total", "name", name, "result", result)
			counted += v
		}
	}
	if float64(len(got.ops)) != counted {
		t.Errorf("%d operations handed on for traces, want the %v counted", len(got.ops), counted)
	}
	traces := map[string]bool{}
	live := 0
	for _, op := range got.ops {
		id := op.TraceID()
		if traces[id] {
			t.Errorf("%s/%s: trace id %s handed on twice", op.Namespace, op.Name, id)
		}
		traces[id] = true
		if !op.Partial {
			live++
			if len(op.Waves) == 0 {
				t.Errorf("%s/%s: watched whole but no waves", op.Namespace, op.Name)
			}
		}
		for i, w := range op.Waves {
			if w.Start.Before(op.StartedAt) || w.End.After(op.FinishedAt.Add(time.Second)) || w.End.Before(w.Start) {
				t.Errorf("%s/%s: wave %s/%d [%v, %v] outside the operation [%v, %v]", op.Namespace, op.Name, w.Phase, w.Wave, w.Start, w.End, op.StartedAt, op.FinishedAt)
			}
			if len(w.Resources) == 0 {
				t.Errorf("%s/%s: wave %s/%d has no resources", op.Namespace, op.Name, w.Phase, w.Wave)
			}
			if i > 0 {
				p := op.Waves[i-1]
				// Order by phase and wave is checked in first
				// attempts: a retry first reports the hooks the
				// attempt before left.
				if w.Attempt == 0 && !(waveKey{p.Attempt, p.Phase, p.Wave}).less(waveKey{w.Attempt, w.Phase, w.Wave}) || p.Attempt == w.Attempt && !p.End.Equal(w.Start) || p.End.After(w.Start) {
					t.Errorf("%s/%s: wave %s/%d [.., %v] then %s/%d [%v, ..]: out of order or not back to back", op.Namespace, op.Name, p.Phase, p.Wave, p.End, w.Phase, w.Wave, w.Start)
				}
			}
		}
	}
	// Partial: syncs during the API server outage, and the
	// selective sync Argo CD started with the last one's
	// results in it (argoproj/argo-cd#29332).
	if live*4 < len(got.ops)*3 {
		t.Errorf("%d of %d operations watched whole, want at least three in four", live, len(got.ops))
	}
	if file != "argocd-scenarios-1-3.jsonl" {
		return
	}
	root := got.ops[0]
	for _, op := range got.ops {
		if op.Name == "root" {
			root = op
			break
		}
	}
	if root.Name != "root" || root.Partial || len(root.Waves) != 5 {
		t.Fatalf("root operation %s partial=%v with %d waves, want root watched whole with 5", root.Name, root.Partial, len(root.Waves))
	}
	rootID := root.TraceID()
	waveOf := map[string]int64{} // child app -> the root wave that created it
	for i, w := range root.Waves {
		if w.Phase != "Sync" || w.Wave != int64(i) {
			t.Errorf("root wave %d is %s/%d, want Sync/%d", i, w.Phase, w.Wave, i)
		}
		// Argo CD waits 2 s after every wave but the last.
		if d := w.End.Sub(w.Start); i < 4 && d < 2*time.Second {
			t.Errorf("root wave %d lasted %v, less than Argo CD's 2 s wave delay", i, d)
		}
		for _, r := range w.Resources {
			waveOf[r.Name] = w.Wave
		}
	}
	linked := map[string]bool{}
	for _, op := range got.ops {
		wave, child := waveOf[op.Name]
		if !child || linked[op.Name] {
			continue
		}
		linked[op.Name] = true
		want := model.Link{TraceID: rootID, SpanID: model.SpanID(rootID, model.WavePath("Sync", wave))}
		if op.Parent == nil || *op.Parent != want {
			t.Errorf("%s: first sync links to %v, want root's wave %d %v", op.Name, op.Parent, wave, want)
		}
	}
	if len(linked) != 8 {
		t.Errorf("%d child apps synced, want the fixture's 8", len(linked))
	}
}

// handOn feeds snapshots through a tracker that has seen the app before
// (so nothing is a baseline) and returns the operations handed on.
func handOn(steps ...step) []model.Operation {
	tr, _, _ := newTrackerWithRegistry(false)
	var got operations
	tr.addOperationSubscriber(&got)
	tr.Handle(model.Event{Type: model.Added, Time: at(-time.Minute), App: newApp()})
	for _, s := range steps {
		tr.Handle(model.Event{Type: model.Modified, Time: at(s.at), App: s.app})
	}
	return got.ops
}

func TestOperationsForTraces(t *testing.T) {
	hook := [3]string{"PreSync", "Job", "migrate"}
	cm := [3]string{"Sync", "ConfigMap", "cm"}
	running, done, failed := synccommon.OperationRunning, synccommon.OperationSucceeded, synccommon.OperationFailed
	t.Run("watched whole", func(t *testing.T) {
		ops := handOn(step{0, snapshot(running, 0)}, step{3 * time.Second, snapshot(running, 0, hook)}, step{6 * time.Second, snapshot(running, 0, hook, cm)}, step{7 * time.Second, snapshot(done, 0, hook, cm)})
		if len(ops) != 1 || ops[0].Partial || len(ops[0].Waves) != 2 || ops[0].Result != "Succeeded" || len(ops[0].Waves[0].Resources) != 1 {
			t.Fatalf("got %+v, want one whole operation with 2 waves", ops)
		}
		if w := ops[0].Waves[0]; !w.Start.Equal(at(time.Second)) || !w.End.Equal(at(6*time.Second)) {
			t.Errorf("PreSync wave [%v, %v], want [1s, 6s]: seen at 3 s less Argo CD's 2 s delay", w.Start.Sub(t0), w.End.Sub(t0))
		}
	})
	t.Run("finished between two observations", func(t *testing.T) {
		ops := handOn(step{8 * time.Second, snapshot(failed, 0, hook, cm)})
		if len(ops) != 1 || !ops[0].Partial || len(ops[0].Waves) != 0 || len(ops[0].Resources) != 2 || ops[0].Result != "Failed" {
			t.Fatalf("got %+v, want one partial failed operation with its 2 results as resources", ops)
		}
	})
	t.Run("terminated", func(t *testing.T) {
		term := snapshot(synccommon.OperationTerminating, 0, hook)
		end := snapshot(failed, 0, hook)
		end.Status.OperationState.Message = "Operation terminated"
		ops := handOn(step{0, snapshot(running, 0)}, step{time.Second, snapshot(running, 0, hook)}, step{2 * time.Second, term}, step{3 * time.Second, end})
		if len(ops) != 1 || ops[0].Result != "Terminated" || ops[0].Message != "Operation terminated" || len(ops[0].Waves) != 1 {
			t.Fatalf("got %+v, want the operation with result Terminated (not Failed) and its wave", ops)
		}
	})
	t.Run("only in history", func(t *testing.T) {
		a := newApp(func(a *v1alpha1.Application) {
			a.Status.History = v1alpha1.RevisionHistories{{ID: 1, Revision: "r1", DeployStartedAt: mtime(at(time.Second)), DeployedAt: metav1.NewTime(at(5 * time.Second))}}
		})
		ops := handOn(step{10 * time.Second, a})
		if len(ops) != 1 || !ops[0].Partial || ops[0].Revision != "r1" || !ops[0].StartedAt.Equal(at(time.Second)) {
			t.Fatalf("got %+v, want the history's sync, partial", ops)
		}
	})
}

// A child app's sync links to the wave of the app-of-apps sync that
// changed it, not to one that left it unchanged.
func TestChildSyncLinksToParentWave(t *testing.T) {
	tr, _, _ := newTrackerWithRegistry(false)
	var got operations
	tr.addOperationSubscriber(&got)
	parent := func(phase synccommon.OperationPhase, msg string) *v1alpha1.Application {
		a := newApp(func(a *v1alpha1.Application) {
			a.Name, a.UID = "root", "uid-root"
			a.Status.Resources = []v1alpha1.ResourceStatus{{Group: "argoproj.io", Kind: "Application", Namespace: "argocd", Name: "web", SyncWave: 3}}
			a.Status.OperationState = &v1alpha1.OperationState{Phase: phase, StartedAt: metav1.NewTime(t0), SyncResult: &v1alpha1.SyncOperationResult{}}
			if msg != "" {
				a.Status.OperationState.SyncResult.Resources = []*v1alpha1.ResourceResult{{Group: "argoproj.io", Kind: "Application", Namespace: "argocd", Name: "web", SyncPhase: "Sync", Message: msg}}
			}
		})
		return a
	}
	child := func(phase synccommon.OperationPhase, start time.Duration) *v1alpha1.Application {
		return newApp(func(a *v1alpha1.Application) {
			a.Status.OperationState = &v1alpha1.OperationState{Phase: phase, StartedAt: metav1.NewTime(at(start)), FinishedAt: mtime(at(start + time.Second))}
		})
	}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: parent(synccommon.OperationRunning, "")})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Second), App: parent(synccommon.OperationRunning, "application.argoproj.io/web configured")})
	tr.Handle(model.Event{Type: model.Added, Time: at(2 * time.Second), App: child(synccommon.OperationSucceeded, 2*time.Second)})
	tr.Handle(model.Event{Type: model.Modified, Time: at(3 * time.Second), App: parent(synccommon.OperationSucceeded, "application.argoproj.io/web configured")})
	tr.Handle(model.Event{Type: model.Modified, Time: at(20 * time.Second), App: child(synccommon.OperationSucceeded, 20*time.Second)})
	var childOps []model.Operation
	for _, op := range got.ops {
		if op.Name == "web" {
			childOps = append(childOps, op)
		}
	}
	rootID := model.OperationID("uid-root", t0)
	want := model.Link{TraceID: rootID, SpanID: model.SpanID(rootID, model.WavePath("Sync", 3))}
	if len(childOps) != 2 || childOps[0].Parent == nil || *childOps[0].Parent != want {
		t.Fatalf("child operations %+v, want the first linked to %v", childOps, want)
	}
	if childOps[1].Parent != nil {
		t.Errorf("second child sync linked to %v; the link is used once", childOps[1].Parent)
	}
	// A child that syncs long after its parent's wave touched it (prod,
	// by hand) is not linked to it.
	later := func(msg string) *v1alpha1.Application {
		a := parent(synccommon.OperationRunning, msg)
		a.Status.OperationState.StartedAt = metav1.NewTime(at(time.Minute))
		return a
	}
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: later("")})
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute + time.Second), App: later("application.argoproj.io/web configured")})
	if _, touched := tr.children["argocd/web"]; !touched {
		t.Fatal("the second parent operation did not touch the child")
	}
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Hour), App: child(synccommon.OperationSucceeded, time.Hour)})
	if last := got.ops[len(got.ops)-1]; last.Name != "web" || last.Parent != nil {
		t.Errorf("late child sync %s linked to %v, want no link", last.Name, last.Parent)
	}
}

func (o *operations) get() []model.Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]model.Operation(nil), o.ops...)
}
