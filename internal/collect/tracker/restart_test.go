package tracker

import (
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
	tr.Handle(model.Event{Type: model.Modified, Time: at(time.Minute), App: newApp(func(a *v1alpha1.Application) { a.CreationTimestamp = old; a.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced })})
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
