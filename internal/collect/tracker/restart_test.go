package tracker

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// names lists the facts' names, with "+first_look" on those marked so.
func (f *factsSeen) names() []string {
	var out []string
	for _, fc := range f.list {
		n := fc.Name
		for i := 0; i+1 < len(fc.Attrs); i += 2 {
			if fc.Attrs[i] == "first_look" && fc.Attrs[i+1] == true {
				n += "+first_look"
			}
		}
		out = append(out, n)
	}
	return out
}

// TestFirstLookIsNoNews: what crowsnest finds at its first look at apps and
// workloads that existed before it started (a restart) began unseen: no
// drift_began, sync_started or workload_degraded fact for it (a start is no
// flood of events), and the drift_ended after it says its clock ran from
// the first look. The same states of objects created after the start are
// news.
func TestFirstLookIsNoNews(t *testing.T) {
	tr, _ := newTestTracker()
	var facts factsSeen
	tr.subs.Facts = append(tr.subs.Facts, &facts)
	old := metav1.NewTime(t0.Add(-24 * time.Hour))
	drifting := func(a *v1alpha1.Application) {
		a.CreationTimestamp = old
		a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
		a.Status.Sync.Revision = "aaa"
	}
	degraded := func(created time.Time) model.WorkloadEvent {
		e := deployment("backend", "", "web", 2, 0)
		e.Workload.App, e.Workload.Namespace, e.Workload.Created = "web", "web", created
		return e
	}
	tr.HandleWorkload(degraded(old.Time))
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(drifting, operation(synccommon.OperationRunning, t0.Add(-time.Minute), nil))})
	if got := facts.names(); len(got) != 0 {
		t.Fatalf("first look: facts %v, want none", got)
	}
	// Later events are news.
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: newApp(func(a *v1alpha1.Application) {
		a.CreationTimestamp = old
		a.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	})})
	tr.HandleWorkload(model.WorkloadEvent{Type: model.Modified, Time: at(time.Minute), Workload: func() model.Workload {
		w := degraded(old.Time).Workload
		w.Replicas = map[string]int64{"desired": 2, "ready": 2, "updated": 2, "available": 2}
		return w
	}()})
	if got, want := facts.names(), []string{model.FactDriftEnded + "+first_look", model.FactWorkloadRecovered}; !slices.Equal(got, want) {
		t.Errorf("after the first look: facts %v, want %v", got, want)
	}

	// An app and a workload created after the start: their first states
	// are news.
	facts.list = nil
	created := metav1.NewTime(at(2 * time.Minute))
	fresh := newApp(drifting, operation(synccommon.OperationRunning, at(2*time.Minute), nil), func(a *v1alpha1.Application) {
		a.Name, a.UID, a.CreationTimestamp = "api", "uid-api", created
	})
	tr.Handle(model.Event{Type: model.Added, Time: at(2 * time.Minute), App: fresh})
	w := degraded(created.Time)
	w.Workload.App, w.Workload.Name, w.Time = "api", "api", at(2*time.Minute)
	tr.HandleWorkload(w)
	if got, want := facts.names(), []string{model.FactDriftBegan, model.FactSyncStarted, model.FactWorkloadDegraded}; !slices.Equal(got, want) {
		t.Errorf("new objects: facts %v, want %v", got, want)
	}
}

// TestDegradedDatedByArgoCD: an app's Degraded spell dates from
// status.health.lastTransitionTime, which Argo CD sets when it writes a new
// health: the failure's onset, and the recovery time, are Argo CD's, not
// when crowsnest happened to look.
func TestDegradedDatedByArgoCD(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	turned := at(g.now + 5*time.Second).Truncate(time.Second)
	g.app.Status.Health.LastTransitionTime = mtime(turned)
	g.health(health.HealthStatusDegraded, 2*time.Minute)
	g.app.Status.Health.LastTransitionTime = nil
	g.health(health.HealthStatusHealthy, time.Minute)
	var rec *model.DeploymentNotice
	for i := range g.notices.list {
		if g.notices.list[i].Kind == model.NoticeRecovered {
			rec = &g.notices.list[i]
		}
	}
	if rec == nil || !rec.Onset.Equal(turned) {
		t.Fatalf("notices %+v, want a recovery from %v", g.notices.list, turned)
	}
}

// restart stops the sim's crowsnest with a checkpoint (through its JSON, as
// the ConfigMap keeps it), lets Argo CD run while down, and starts a new
// tracker restored from it.
func (g *argoSim) restart(whileDown func()) {
	g.t.Helper()
	cp, cut := g.tr.Checkpoint()
	if cut != 0 {
		g.t.Fatalf("checkpoint left out %d apps", cut)
	}
	b, err := json.Marshal(cp)
	if err != nil {
		g.t.Fatal(err)
	}
	var back Checkpoint
	if err := json.Unmarshal(b, &back); err != nil {
		g.t.Fatal(err)
	}
	g.down = true
	whileDown()
	g.down = false
	g.newTracker()
	g.tr.Restore(back)
	g.observe(time.Second)
}

// oldApp makes the sim's app one created before crowsnest started.
func oldApp(a *v1alpha1.Application) { a.CreationTimestamp = metav1.NewTime(t0.Add(-24 * time.Hour)) }

// TestRestartCountsWhatFinishedWhileDown: syncs that finished while
// crowsnest was down are counted after its restart from the checkpoint,
// each once, with their facts and deployment notices (the same trace ids
// as without the restart); what was counted before is not counted again,
// and the first look logs no drift or sync start.
func TestRestartCountsWhatFinishedWhileDown(t *testing.T) {
	g := newArgoSim(t, oldApp)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	var traces []string
	g.restart(func() {
		g.sync(synccommon.OperationSucceeded, false, "alice", "ccc") // a deployment
		g.sync(synccommon.OperationSucceeded, false, "alice", "ccc") // a re-sync
		g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync  // and drift
		for _, h := range g.app.Status.History[2:] {
			traces = append(traces, model.OperationSeqID(string(g.app.UID), h.DeployStartedAt.Time, 0))
		}
	})
	if got := g.counter("crowsnest_app_syncs_total", "result", "Succeeded"); got != 2 {
		t.Errorf("syncs counted after the restart: %v, want the 2 that finished while down", got)
	}
	g.wantCounts("after the restart", map[string]float64{"succeeded": 1}, nil)
	var finished []string
	for _, f := range g.facts.list {
		switch f.Name {
		case model.FactSyncFinished:
			finished = append(finished, f.TraceID)
		case model.FactDriftBegan, model.FactSyncStarted:
			t.Errorf("fact %s at the first look", f.Name)
		}
	}
	slices.Sort(finished)
	slices.Sort(traces)
	if !slices.Equal(finished, traces) {
		t.Errorf("sync_finished trace ids %v, want %v (those of the syncs while down)", finished, traces)
	}
	if n := g.notices.kinds(); !slices.Equal(n, []string{"deployed", "healthy"}) || g.notices.list[0].Deployment.Revision != "ccc" || g.notices.list[0].Deployment.PreviousRevision != "bbb" {
		t.Errorf("notices %v, want ccc deployed after bbb (and Healthy)", n)
	}
}

// TestRestartKeepsCountedOperationsOfTheLastSecond: an operation counted
// in the watermark's second (Argo CD keeps whole seconds) is not counted
// again after the restart.
func TestRestartKeepsCountedOperationsOfTheLastSecond(t *testing.T) {
	tr, _ := newTestTracker()
	done := newApp(oldApp, operation(synccommon.OperationSucceeded, at(2*time.Second), ptr(at(10*time.Second))))
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(oldApp, operation(synccommon.OperationRunning, at(2*time.Second), nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(10*time.Second + 400*time.Millisecond), App: done})
	cp, _ := tr.Checkpoint()
	if len(cp.Recent) != 1 || !cp.Watermark.Equal(at(10*time.Second+400*time.Millisecond)) {
		t.Fatalf("checkpoint %+v, want the watermark at the last event and its second's operation", cp)
	}
	if got := syncsAfterRestart(t, cp, done); got != 0 {
		t.Errorf("syncs counted after the restart: %v, want 0 (counted before it)", got)
	}
}

// syncsAfterRestart starts a tracker restored from cp, shows it app a
// minute after t0, and returns the successful syncs it counted.
func syncsAfterRestart(t *testing.T, cp Checkpoint, app *v1alpha1.Application) float64 {
	t.Helper()
	again, s := newTestTracker()
	again.Restore(cp)
	again.Handle(model.Event{Type: model.Added, Time: at(time.Minute), App: app})
	return syncs(t, s, "Succeeded")
}

// TestRestartKeepsFailureWindows: a deployment's failure window and an open
// failed change survive a restart: Degraded after it fails the deployment
// from before the restart, and the recovery runs from the onset before it.
func TestRestartKeepsFailureWindows(t *testing.T) {
	g := newArgoSim(t, oldApp)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	bbb := g.lastDeployment()
	g.restart(func() {})
	g.health(health.HealthStatusDegraded, 10*time.Minute)
	if n := g.notices.list; len(n) != 1 || n[0].Kind != model.NoticeChangeFailed || n[0].Reason != model.FailureDegraded || n[0].Deployment.TraceID != bbb.TraceID {
		t.Fatalf("notices %+v, want bbb's deployment failed for degraded", n)
	}
	degradedAt := at(g.now)
	g.restart(func() {})
	g.health(health.HealthStatusHealthy, 5*time.Minute)
	last := g.notices.list[len(g.notices.list)-1]
	if last.Kind != model.NoticeRecovered || !last.Onset.Equal(degradedAt) {
		t.Errorf("notices %+v, want a recovery from %v, the onset before the restart", g.notices.list, degradedAt)
	}
}

// TestRestartKeepsCountedOperationsOfTheLastSecond, when a selective sync
// and the full sync after it started in one second (seen on the real
// controller): the full sync is the operation state's second of that
// second but the history's first (a selective sync writes no history
// entry). Counted before the restart, it is not counted again after it.
func TestRestartAfterTwoOperationsInOneSecond(t *testing.T) {
	tr, _ := newTestTracker()
	start := at(2 * time.Second)
	selective := func(phase synccommon.OperationPhase, finished *time.Time) func(*v1alpha1.Application) {
		return func(a *v1alpha1.Application) {
			operation(phase, start, finished)(a)
			a.Status.OperationState.Operation.Sync = &v1alpha1.SyncOperation{Resources: []v1alpha1.SyncOperationResource{{Kind: "ConfigMap", Name: "first"}}}
		}
	}
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp(oldApp)})
	tr.Handle(model.Event{Type: model.Modified, Time: at(2*time.Second + 100*time.Millisecond), App: newApp(oldApp, selective(synccommon.OperationRunning, nil))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(2*time.Second + 300*time.Millisecond), App: newApp(oldApp, selective(synccommon.OperationSucceeded, ptr(start)))})
	tr.Handle(model.Event{Type: model.Modified, Time: at(2*time.Second + 700*time.Millisecond), App: newApp(oldApp, operation(synccommon.OperationRunning, start, nil))})
	full := newApp(oldApp, operation(synccommon.OperationSucceeded, start, ptr(at(7*time.Second))), func(a *v1alpha1.Application) {
		a.Status.History = v1alpha1.RevisionHistories{{ID: 1, DeployStartedAt: mtime(start), DeployedAt: metav1.NewTime(at(7 * time.Second))}}
	})
	tr.Handle(model.Event{Type: model.Modified, Time: at(7*time.Second + 400*time.Millisecond), App: full})
	cp, _ := tr.Checkpoint()

	if got := syncsAfterRestart(t, cp, full); got != 0 {
		t.Errorf("syncs counted after the restart: %v, want 0 (the full sync was counted before it)", got)
	}
}

// TestRestartWithoutHistory: an app whose sync history cannot show what it
// ran before (revisionHistoryLimit 0) has its last deployment from the
// checkpoint: its first sync after the restart, a re-sync, is no
// deployment, and the next one's previous revision is known.
func TestRestartWithoutHistory(t *testing.T) {
	g := newArgoSim(t, oldApp)
	noHistory := func() { g.app.Status.History = nil; g.observe(time.Second) }
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	noHistory()
	g.observe(2 * time.Hour) // past its failure window: only Previous keeps it
	g.restart(func() {})
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	noHistory()
	g.wantCounts("a re-sync after the restart", nil, nil)
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.wantCounts("bbb", map[string]float64{"succeeded": 1}, nil)
	if d := g.lastDeployment(); d == nil || d.PreviousRevision != "aaa" {
		t.Errorf("bbb: %+v, want aaa as its previous revision", d)
	}
}
