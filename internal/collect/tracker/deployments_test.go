package tracker

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/model"
)

// noticesSeen records the deployment notices.
type noticesSeen struct{ list []model.DeploymentNotice }

func (n *noticesSeen) Deployment(d *model.DeploymentNotice) { n.list = append(n.list, *d) }

func (n *noticesSeen) kinds() (out []string) {
	for _, d := range n.list {
		k := d.Kind
		if d.Reason != "" {
			k += "/" + d.Reason
		}
		out = append(out, k)
	}
	return out
}

// argoSim writes what Argo CD's controller writes for one app: operations
// that run and finish, the sync history of successful ones, health and
// sync status.
type argoSim struct {
	t       *testing.T
	tr      *Tracker
	s       *exposition.Store
	notices *noticesSeen
	ops     *opsSeen
	facts   *factsSeen
	now     time.Duration
	app     *v1alpha1.Application
	// message is the next operation's final message.
	message string
	// stale: observations do not move status.reconciledAt.
	stale bool
	// unchanged: the next operation applies its ConfigMap unchanged.
	unchanged bool
	// selfHeal: the next operation is a self-heal attempt.
	selfHeal bool
	// terminating: the next operation is seen Terminating with this
	// message before it finishes.
	terminating string
	// source is the digest of the source the next operation syncs
	// (zero: Argo CD writes none).
	source v1alpha1.SourceDigest
	// selected are the resources the next operation selects (a
	// selective sync: no history entry).
	selected []v1alpha1.SyncOperationResource
	// whileRunning, if set, runs once the next operation was seen
	// running (and may observe).
	whileRunning func()
	// down: crowsnest is not running; observations show nothing.
	down bool
}

type opsSeen struct{ list []*model.Operation }

func (o *opsSeen) Finished(op *model.Operation) { o.list = append(o.list, op) }

func newArgoSim(t *testing.T, mutate ...func(*v1alpha1.Application)) *argoSim {
	a := newApp(append([]func(*v1alpha1.Application){func(a *v1alpha1.Application) {
		a.Status.Health.Status = health.HealthStatusHealthy
		a.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	}}, mutate...)...)
	sim := &argoSim{t: t, app: a}
	sim.newTracker()
	sim.observe(0)
	return sim
}

// newTracker gives the sim a new tracker (a restart of crowsnest), with
// its own store and subscribers.
func (g *argoSim) newTracker() {
	g.notices, g.ops, g.facts = &noticesSeen{}, &opsSeen{}, &factsSeen{}
	g.s = exposition.NewStore(false)
	g.tr = New(envByLabel{}, Subscribers{
		Views: []ViewSubscriber{g.s}, Operations: []OperationSubscriber{g.ops}, Deployments: []DeploymentSubscriber{g.notices}, Facts: []FactSubscriber{g.facts},
	}, promslog.NewNopLogger())
}

// observe advances the clock by d and shows the app to the tracker, as
// Argo CD reconciled it then (unless stale: the write of an operation's end
// carries the last reconciliation's time).
func (g *argoSim) observe(d time.Duration) {
	g.now += d
	if g.down {
		return // crowsnest is not running: Argo CD goes on alone
	}
	if !g.stale {
		g.app.Status.ReconciledAt = mtime(at(g.now))
	}
	g.tr.Handle(model.Event{Type: model.Modified, Time: at(g.now), App: g.app.DeepCopy()})
}

func (g *argoSim) health(h health.HealthStatusCode, d time.Duration) {
	g.app.Status.Health.Status = h
	g.observe(d)
}

// sync runs one operation to revisions (one per source for a
// multi-source app) by initiator, seen running then finished in phase
// after 10 s; a successful real one joins the history.
func (g *argoSim) sync(phase synccommon.OperationPhase, dry bool, initiator string, revisions ...string) {
	start := at(g.now + time.Second).Truncate(time.Second)
	by := v1alpha1.OperationInitiator{Username: initiator, Automated: initiator == "automated"}
	op := &v1alpha1.OperationState{
		Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{DryRun: dry, Resources: g.selected}, InitiatedBy: by},
		Phase:     synccommon.OperationRunning, StartedAt: metav1.NewTime(start),
		// The controller writes the sync result's revisions and source
		// when the operation starts (controller/sync.go).
		SyncResult: &v1alpha1.SyncOperationResult{Source: g.source},
	}
	if len(revisions) == 1 {
		op.SyncResult.Revision = revisions[0]
	} else {
		op.SyncResult.Revisions = revisions
	}
	if g.selfHeal {
		op.Operation.Sync.SelfHealAttemptsCount = 1
	}
	g.app.Status.OperationState = op
	g.observe(2 * time.Second)
	if f := g.whileRunning; f != nil {
		g.whileRunning = nil
		f()
	}
	if g.terminating != "" {
		op = op.DeepCopy()
		op.Phase, op.Message = synccommon.OperationTerminating, g.terminating
		g.app.Status.OperationState = op
		g.observe(time.Second)
	}
	op = op.DeepCopy()
	op.Phase = phase
	op.Message = g.message
	op.FinishedAt = mtime(start.Add(10 * time.Second))
	msg := "configmap/cm configured"
	if g.unchanged {
		msg = "configmap/cm unchanged"
	}
	op.SyncResult = &v1alpha1.SyncOperationResult{Resources: v1alpha1.ResourceResults{
		{Kind: "ConfigMap", Name: "cm", Status: synccommon.ResultCodeSynced, Message: msg, SyncPhase: synccommon.SyncPhaseSync},
	}}
	if len(revisions) == 1 {
		op.SyncResult.Revision = revisions[0]
	} else {
		op.SyncResult.Revisions = revisions
	}
	op.SyncResult.Source = g.source
	g.app.Status.OperationState = op
	if phase == synccommon.OperationSucceeded && !dry && len(g.selected) == 0 {
		g.app.Status.History = append(g.app.Status.History, v1alpha1.RevisionHistory{
			ID: int64(len(g.app.Status.History)), Revision: op.SyncResult.Revision, Revisions: op.SyncResult.Revisions,
			Source: g.source, DeployStartedAt: mtime(start), DeployedAt: *op.FinishedAt, InitiatedBy: by,
		})
	}
	g.observe(10 * time.Second)
}

func (g *argoSim) counter(metric, label, labelValue string) float64 {
	g.t.Helper()
	v, ok := value(g.t, g.s, metric, "name", "web", label, labelValue)
	if !ok {
		g.t.Fatalf("no %s{%s=%q}", metric, label, labelValue)
	}
	return v
}

func (g *argoSim) wantCounts(step string, deployments map[string]float64, failures map[string]float64) {
	g.t.Helper()
	for _, r := range model.DeploymentResults() {
		if got := g.counter("crowsnest_app_deployments_total", "result", r); got != deployments[r] {
			g.t.Errorf("%s: deployments_total{result=%q} = %v, want %v", step, r, got, deployments[r])
		}
	}
	for _, r := range model.FailureReasons() {
		if got := g.counter("crowsnest_app_change_failures_total", "reason", r); got != failures[r] {
			g.t.Errorf("%s: change_failures_total{reason=%q} = %v, want %v", step, r, got, failures[r])
		}
	}
}

// TestDeploymentsAreChangesOfRevision: only syncs that change what runs
// are deployments; dry runs, re-syncs and self-heal are not.
func TestDeploymentsAreChangesOfRevision(t *testing.T) {
	g := newArgoSim(t)
	succeeded := synccommon.OperationSucceeded
	g.sync(succeeded, false, "alice", "aaa")
	g.wantCounts("first sync", map[string]float64{"succeeded": 1}, nil)
	g.sync(succeeded, false, "alice", "aaa")
	g.sync(succeeded, false, "automated", "aaa") // self-heal
	g.sync(succeeded, true, "alice", "bbb")      // dry run
	g.sync(synccommon.OperationFailed, false, "alice", "aaa")
	g.wantCounts("re-sync, self-heal, dry run, failed re-sync", map[string]float64{"succeeded": 1}, nil)
	g.unchanged = true
	g.sync(succeeded, false, "automated", "abc")
	g.unchanged = false
	g.wantCounts("a commit that changed none of the app's manifests", map[string]float64{"succeeded": 1}, nil)
	// A self-heal to a newer commit that Argo CD found brings no change
	// to the app: it counts the attempt.
	g.selfHeal = true
	g.sync(succeeded, false, "automated", "abd")
	g.selfHeal = false
	g.wantCounts("self-heal to a commit without changes", map[string]float64{"succeeded": 1}, nil)
	// A commit that changes nothing of the app: Argo CD shows it Synced to
	// it without a sync; drift, then a full auto-sync to it, repairs the
	// drift.
	g.app.Status.Sync.Revision = "abe"
	g.observe(time.Minute)
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
	g.observe(time.Minute)
	g.sync(succeeded, false, "automated", "abe")
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	g.wantCounts("drift repaired on a commit the app was Synced to", map[string]float64{"succeeded": 1}, nil)
	g.sync(succeeded, false, "automated", "bbb")
	g.wantCounts("new revision", map[string]float64{"succeeded": 2}, nil)
	// The dry run is no operation: 8 of them.
	if n := len(g.ops.list); n != 8 || g.ops.list[7].Deployment == nil || g.ops.list[6].Deployment != nil {
		t.Fatalf("%d operations; want 8, the last a deployment and the one before not", n)
	}
	d := g.ops.list[7].Deployment
	if d.Revision != "bbb" || d.PreviousRevision != "abe" || d.TraceID != g.ops.list[7].TraceID() || len(d.Changed) != 1 ||
		d.Changed[0] != (model.DeploymentSource{Index: 0, RepoURL: "https://git.example.com/deploy.git", Revision: "bbb"}) {
		t.Errorf("deployment %+v", d)
	}
	// Terminated: a person stopped it; no deployment, no failure.
	g.message = "Operation terminated"
	g.sync(synccommon.OperationFailed, false, "alice", "ccc")
	g.message = ""
	g.wantCounts("terminated", map[string]float64{"succeeded": 2}, nil)
	g.sync(synccommon.OperationFailed, false, "alice", "ccc")
	g.wantCounts("failed", map[string]float64{"succeeded": 2, "failed": 1}, map[string]float64{"sync_failed": 1})
	g.app.Status.OperationState = nil
	g.sync(synccommon.OperationFailed, false, "alice", "ccc")
	g.wantCounts("the same change failing again", map[string]float64{"succeeded": 2, "failed": 1}, map[string]float64{"sync_failed": 1})
	if ts, ok := value(t, g.s, "crowsnest_app_last_deployment_timestamp_seconds", "name", "web"); !ok || ts != unixSeconds(d.FinishedAt) {
		t.Errorf("last deployment timestamp %v (present %v), want %v", ts, ok, unixSeconds(d.FinishedAt))
	}
}

// TestSpecOnlyDeployments: a sync of the same revisions with other source
// settings (Image Updater's write-back, `argocd app set -p`, Kargo's
// argocd-update, a changed values file) is a deployment, compared by the
// sources' digests in the sync result and the history; re-syncs and
// self-heal of it are not; back to the settings before is a rollback; a
// record without digests is judged by its revisions.
func TestSpecOnlyDeployments(t *testing.T) {
	tag := func(v string) v1alpha1.SourceDigest {
		return v1alpha1.DigestOf([]byte(`{"repoURL":"https://git.example.com/deploy.git","path":"web","targetRevision":"main","helm":{"parameters":[{"name":"image.tag","value":"` + v + `"}]}}`))
	}
	succeeded := synccommon.OperationSucceeded
	g := newArgoSim(t)
	g.source = tag("v1")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.sync(succeeded, false, "alice", "aaa")
	g.sync(succeeded, false, "alice", "aaa")
	g.wantCounts("first sync, re-sync", map[string]float64{"succeeded": 1}, nil)

	// argocd app set -p image.tag=v2: the spec moves, Argo CD compares
	// with it and auto-syncs the same revision.
	g.source = tag("v2")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
	g.observe(time.Minute)
	g.sync(succeeded, false, "automated", "aaa")
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	g.wantCounts("the same revision with v2", map[string]float64{"succeeded": 2}, nil)
	d := g.ops.list[len(g.ops.list)-1].Deployment
	if d == nil || !d.SourceChanged || len(d.Changed) != 0 || d.Revision != "aaa" || d.PreviousRevision != "aaa" {
		t.Fatalf("spec-only deployment %+v", d)
	}
	g.selfHeal = true
	g.sync(succeeded, false, "automated", "aaa")
	g.selfHeal = false
	g.sync(succeeded, false, "alice", "aaa")
	g.wantCounts("self-heal and re-sync of v2", map[string]float64{"succeeded": 2}, nil)

	// Failing settings fail once, whatever the retries.
	g.source = tag("v3")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.sync(synccommon.OperationFailed, false, "automated", "aaa")
	g.sync(synccommon.OperationFailed, false, "automated", "aaa")
	g.wantCounts("v3 failing twice", map[string]float64{"succeeded": 2, "failed": 1}, map[string]float64{"sync_failed": 1})

	// Back to v1 while the spec says v3: a rollback of the v2 deployment.
	g.source = tag("v1")
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
	g.sync(succeeded, false, "alice", "aaa")
	g.wantCounts("rolled back to v1", map[string]float64{"succeeded": 2, "failed": 1, "rolled_back": 1}, map[string]float64{"sync_failed": 1, "rolled_back": 1})

	// Seen only in the history (crowsnest missed the operation state):
	// its entry's digest tells it.
	g.source = tag("v4")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	start := at(g.now + time.Second).Truncate(time.Second)
	g.app.Status.OperationState = nil
	g.app.Status.History = append(g.app.Status.History, v1alpha1.RevisionHistory{
		ID: int64(len(g.app.Status.History)), Revision: "aaa", Source: g.source,
		DeployStartedAt: mtime(start), DeployedAt: metav1.NewTime(start.Add(10 * time.Second)),
	})
	g.observe(20 * time.Second)
	g.wantCounts("v4 from the history", map[string]float64{"succeeded": 3, "failed": 1, "rolled_back": 1}, map[string]float64{"sync_failed": 1, "rolled_back": 1})

	// No digest written: judged by the revisions, as before.
	g.source = v1alpha1.SourceDigest{}
	g.sync(succeeded, false, "alice", "aaa")
	g.wantCounts("a sync without a digest", map[string]float64{"succeeded": 3, "failed": 1, "rolled_back": 1}, map[string]float64{"sync_failed": 1, "rolled_back": 1})
	g.sync(succeeded, false, "alice", "bbb")
	g.wantCounts("a new revision without a digest", map[string]float64{"succeeded": 4, "failed": 1, "rolled_back": 1}, map[string]float64{"sync_failed": 1, "rolled_back": 1})
}

// TestSyncTimeoutFailsDeployment: a sync to new revisions that the
// controller terminated for its sync timeout is a failed deployment (a
// person's terminate-op is none), whether crowsnest saw it Terminating or
// only its end; trying the same revisions again is the same failure.
func TestSyncTimeoutFailsDeployment(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.message, g.terminating = "Operation terminated", "waiting for completion of hook batch/Job/presync"
	g.sync(synccommon.OperationFailed, false, "alice", "bbb")
	g.wantCounts("terminate-op", map[string]float64{"succeeded": 1}, nil)
	g.message, g.terminating = timeoutFailed, timeoutTerminating
	g.sync(synccommon.OperationFailed, false, "alice", "bbb")
	g.wantCounts("sync timeout seen terminating", map[string]float64{"succeeded": 1, "failed": 1}, map[string]float64{"sync_failed": 1})
	g.sync(synccommon.OperationFailed, false, "alice", "bbb")
	g.wantCounts("the same revisions timing out again", map[string]float64{"succeeded": 1, "failed": 1}, map[string]float64{"sync_failed": 1})
	g.message, g.terminating = timeoutFailed+" (retried 1 times).", ""
	g.sync(synccommon.OperationFailed, false, "automated", "ccc")
	g.wantCounts("sync timeout seen only as failed", map[string]float64{"succeeded": 1, "failed": 2}, map[string]float64{"sync_failed": 2})
	if n := len(g.ops.list); n != 5 || g.ops.list[4].Result != model.ResultFailed || g.ops.list[4].Deployment == nil ||
		g.ops.list[4].Deployment.Result != model.DeploymentFailed || g.ops.list[4].Deployment.Revision != "ccc" {
		t.Errorf("last of %d operations: %+v, want a failed deployment of ccc", n, g.ops.list[n-1])
	}
}

// TestFailedChangeAndRecovery: a failed sync is a failed change from its
// end; the app recovers once Synced and Healthy on a successful deployment.
// Turning Degraded within the window fails the deployment; after it, not.
func TestFailedChangeAndRecovery(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.sync(synccommon.OperationError, false, "alice", "bbb")
	onset := at(g.now)
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.wantCounts("fixed", map[string]float64{"succeeded": 2, "failed": 1}, map[string]float64{"sync_failed": 1})
	var rec *model.DeploymentNotice
	for i := range g.notices.list {
		if g.notices.list[i].Kind == model.NoticeRecovered {
			rec = &g.notices.list[i]
		}
	}
	if rec == nil || rec.Deployment.Revision != "bbb" || rec.Onset.After(onset) || rec.Time.Sub(rec.Onset) < 10*time.Second {
		t.Fatalf("notices %v; want a recovery on bbb measured from the failed sync's end", g.notices.kinds())
	}

	// Degraded 30 min after a deployment: a failed change, once.
	g.sync(synccommon.OperationSucceeded, false, "alice", "ccc")
	g.health(health.HealthStatusDegraded, 30*time.Minute)
	degradedAt := at(g.now)
	g.health(health.HealthStatusProgressing, time.Minute)
	g.health(health.HealthStatusDegraded, time.Minute)
	g.wantCounts("degraded", map[string]float64{"succeeded": 3, "failed": 1}, map[string]float64{"sync_failed": 1, "degraded": 1})
	g.health(health.HealthStatusHealthy, 5*time.Minute)
	last := g.notices.list[len(g.notices.list)-1]
	if last.Kind != model.NoticeRecovered || !last.Onset.Equal(degradedAt) || last.Time.Sub(last.Onset) != 7*time.Minute {
		t.Errorf("last notice %+v, want recovered 7 min after it turned Degraded", last)
	}

	// A deployment that ends while the app is still Degraded from the one
	// before did not break it; Argo CD's write of its end may even carry
	// the health of before the sync (reconciledAt older than the end): no
	// Healthy yet.
	g.stale = true
	g.sync(synccommon.OperationSucceeded, false, "alice", "c2")
	g.stale = false
	if k := g.notices.list[len(g.notices.list)-1].Kind; k != model.NoticeDeployed {
		t.Errorf("last notice %s, want c2 deployed and no Healthy from a health assessed before its end", k)
	}
	g.health(health.HealthStatusDegraded, time.Minute)
	g.sync(synccommon.OperationSucceeded, false, "alice", "c3")
	g.wantCounts("degraded before the fix", map[string]float64{"succeeded": 5, "failed": 1}, map[string]float64{"sync_failed": 1, "degraded": 2})
	if k := g.notices.list[len(g.notices.list)-1].Kind; k != model.NoticeDeployed {
		t.Errorf("last notice %s, want the fix deployed and not yet Healthy", k)
	}
	g.health(health.HealthStatusHealthy, time.Minute)
	if last := g.notices.list[len(g.notices.list)-1]; last.Kind != model.NoticeRecovered || last.Deployment.Revision != "c3" {
		t.Errorf("last notice %+v, want recovered on c3", last)
	}

	// Degraded 2 h after the next deployment: outside the 1 h window.
	g.sync(synccommon.OperationSucceeded, false, "alice", "ddd")
	g.health(health.HealthStatusDegraded, 2*time.Hour)
	g.wantCounts("degraded late", map[string]float64{"succeeded": 6, "failed": 1}, map[string]float64{"sync_failed": 1, "degraded": 2})
}

// TestRollback: syncing back to revisions run before the previous
// deployment is a rollback, and fails the deployment it undoes (unless it
// failed already). Healthy on the rollback is a recovery though Argo CD
// shows the app OutOfSync (its source still points at the bad change).
func TestRollback(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.app.Status.Sync.Revision = "bbb" // Synced to bbb, idle
	g.observe(time.Minute)
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.wantCounts("rolled back", map[string]float64{"succeeded": 2, "rolled_back": 1}, map[string]float64{"rolled_back": 1})
	want := []string{"deployed", "healthy", "deployed", "healthy", "change_failed/rolled_back", "deployed", "healthy", "recovered"}
	if got := g.notices.kinds(); !slices.Equal(got, want) {
		t.Errorf("notices %v, want %v", got, want)
	}
	if d := g.ops.list[2].Deployment; d == nil || d.Result != model.DeploymentRolledBack || d.PreviousRevision != "bbb" {
		t.Errorf("rollback deployment %+v", d)
	}

	// Syncing bbb again after the rollback changes what runs: a
	// deployment, though the app was Synced to bbb before the rollback.
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.wantCounts("forward again", map[string]float64{"succeeded": 3, "rolled_back": 1}, map[string]float64{"rolled_back": 1})
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced

	// A deployment that degraded and then is rolled back fails once.
	g.sync(synccommon.OperationSucceeded, false, "alice", "ccc")
	g.health(health.HealthStatusDegraded, time.Minute)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.wantCounts("degraded, then rolled back", map[string]float64{"succeeded": 4, "rolled_back": 2}, map[string]float64{"rolled_back": 1, "degraded": 1})
}

// TestDeploymentAfterRestart: the previous deployment comes from the sync
// history, so a tracker that just started tells a deployment from a re-sync.
func TestDeploymentAfterRestart(t *testing.T) {
	g := newArgoSim(t, func(a *v1alpha1.Application) {
		a.Status.History = v1alpha1.RevisionHistories{{ID: 0, Revision: "aaa", DeployStartedAt: mtime(at(-time.Hour)), DeployedAt: metav1.NewTime(at(-time.Hour))}}
	})
	g.sync(synccommon.OperationSucceeded, false, "automated", "aaa")
	g.wantCounts("re-sync after a restart", nil, nil)
	g.sync(synccommon.OperationSucceeded, false, "automated", "bbb")
	g.wantCounts("deployment after a restart", map[string]float64{"succeeded": 1}, nil)
}

// TestMultiSourceDeploymentChangedSources: only the sources whose revision
// changed are the deployment's changes.
func TestMultiSourceDeploymentChangedSources(t *testing.T) {
	g := newArgoSim(t, func(a *v1alpha1.Application) {
		a.Spec.Source = nil
		a.Spec.Sources = v1alpha1.ApplicationSources{
			{RepoURL: "https://charts.example.com", Chart: "web", TargetRevision: "1.*"},
			{RepoURL: "https://git.example.com/values.git", Ref: "values"},
		}
	})
	g.sync(synccommon.OperationSucceeded, false, "alice", "1.0.0", "aaa")
	g.sync(synccommon.OperationSucceeded, false, "alice", "1.0.0", "bbb")
	d := g.ops.list[1].Deployment
	want := model.DeploymentSource{Index: 1, RepoURL: "https://git.example.com/values.git", Revision: "bbb"}
	if d == nil || len(d.Changed) != 1 || d.Changed[0] != want {
		t.Fatalf("deployment %+v, want only the values source changed", d)
	}
}

// TestProgress: a running operation shows its current wave; once the app
// has a sync watched whole, the waves left and the expected finish, from
// that sync's wave durations; the operation carries its first prediction.
func TestProgress(t *testing.T) {
	ops := &opsSeen{}
	s := exposition.NewStore(false)
	tr := New(envByLabel{}, Subscribers{Views: []ViewSubscriber{s}, Operations: []OperationSubscriber{ops}}, promslog.NewNopLogger())
	cm := [3]string{"Sync", "ConfigMap", "cm"}
	web := [3]string{"Sync", "Deployment", "web"}
	// snapshot's operation starts at t0 and finishes at 20 s; shift it.
	run := func(base time.Duration, steps ...step) {
		for _, st := range steps {
			a := st.app
			op := a.Status.OperationState
			op.StartedAt = metav1.NewTime(op.StartedAt.Add(base))
			if op.FinishedAt != nil {
				op.FinishedAt = mtime(at(base + 12*time.Second))
			}
			tr.Handle(model.Event{Type: model.Modified, Time: at(base + st.at), App: a})
		}
	}
	gauge := func(name string, labels ...string) (float64, bool) {
		return value(t, s, name, append([]string{"name", "web"}, labels...)...)
	}
	running, done := synccommon.OperationRunning, synccommon.OperationSucceeded
	run(0, step{0, snapshot(running, 0)})
	if _, ok := gauge("crowsnest_app_sync_expected_finish_timestamp_seconds"); ok {
		t.Error("expected finish without any past sync")
	}
	run(0,
		step{3 * time.Second, snapshot(running, 0, cm)},
		step{8 * time.Second, snapshot(running, 0, cm, web)},
		step{12500 * time.Millisecond, snapshot(done, 0, cm, web)},
	)
	if len(ops.list) != 1 || len(ops.list[0].TimedWaves) != 2 {
		t.Fatalf("first sync: %d operations, want 1 with 2 timed waves", len(ops.list))
	}
	var waves time.Duration
	for _, w := range ops.list[0].TimedWaves {
		waves += w.Duration()
	}
	// Argo CD keeps whole seconds: the last wave may end after finishedAt.
	tail := max(at(12*time.Second).Sub(ops.list[0].TimedWaves[1].End), 0)
	if _, ok := gauge("crowsnest_app_sync_current_wave", "phase", "Sync"); ok {
		t.Error("current wave shown after the sync finished")
	}

	// The second sync, 100 s later: predicted from its start.
	base := 100 * time.Second
	run(base, step{0, snapshot(running, 0)})
	want := at(base).Add(waves + tail)
	if v, ok := gauge("crowsnest_app_sync_expected_finish_timestamp_seconds"); !ok || v != unixSeconds(want) {
		t.Errorf("expected finish %v (present %v), want %v", v, ok, unixSeconds(want))
	}
	if v, _ := gauge("crowsnest_app_sync_remaining_waves"); v != 2 {
		t.Errorf("remaining waves %v before the first, want 2", v)
	}
	run(base, step{3 * time.Second, snapshot(running, 0, cm)})
	if v, ok := gauge("crowsnest_app_sync_current_wave", "phase", "Sync"); !ok || v != 0 {
		t.Errorf("current wave %v (present %v), want Sync 0", v, ok)
	}
	if v, _ := gauge("crowsnest_app_sync_remaining_waves"); v != 1 {
		t.Errorf("remaining waves %v in wave 0, want 1", v)
	}
	run(base,
		step{8 * time.Second, snapshot(running, 0, cm, web)},
		step{12500 * time.Millisecond, snapshot(done, 0, cm, web)},
	)
	if len(ops.list) != 2 || !ops.list[1].PredictedFinish.Equal(want) {
		t.Fatalf("second operation's predicted finish %v, want the first prediction %v", ops.list[len(ops.list)-1].PredictedFinish, want)
	}
}

// lastDeployment is the deployment of the last operation handed on.
func (g *argoSim) lastDeployment() *model.Deployment {
	g.t.Helper()
	if len(g.ops.list) == 0 {
		g.t.Fatal("no operation handed on")
	}
	return g.ops.list[len(g.ops.list)-1].Deployment
}

// TestChangeTimeOfSpecOnlyDeployments: a change of the source's settings
// dates from when Argo CD first compared the app with the new source, as
// crowsnest saw it (not from its first look at the app, nor from a later
// re-comparison); a change CI names in the annotations goes to the next
// successful deployment after it was set, once.
func TestChangeTimeOfSpecOnlyDeployments(t *testing.T) {
	tag := func(v string) v1alpha1.SourceDigest {
		return v1alpha1.DigestOf([]byte(`{"repoURL":"https://git.example.com/deploy.git","path":"web","helm":{"parameters":[{"name":"image.tag","value":"` + v + `"}]}}`))
	}
	succeeded := synccommon.OperationSucceeded
	g := newArgoSim(t, func(a *v1alpha1.Application) {
		// Already compared with v1 at crowsnest's first look, and a
		// change annotation left from before.
		a.Status.Sync.Revision, a.Status.Sync.ComparedTo.Source = "aaa", tag("v1")
		a.Annotations = map[string]string{model.AnnotationChangeTime: "2026-01-01T00:00:00Z"}
		a.Status.History = v1alpha1.RevisionHistories{{ID: 0, Revision: "aaa", Source: tag("v0"), DeployStartedAt: mtime(at(-time.Hour)), DeployedAt: metav1.NewTime(at(-time.Hour))}}
		a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
	})
	g.source = tag("v1")
	g.sync(succeeded, false, "automated", "aaa")
	if d := g.lastDeployment(); d == nil || !d.SourceChanged || !d.TargetSeenAt.IsZero() || !d.ChangeTime.IsZero() {
		t.Fatalf("v1, compared before crowsnest's first look: %+v, want a deployment with no change time known", d)
	}

	// `argocd app set -p image.tag=v2`: compared at seenAt, synced by hand
	// 10 min later; the comparisons between keep the time.
	g.source = tag("v2")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.observe(time.Minute)
	seenAt := at(g.now)
	g.observe(5 * time.Minute)
	g.observe(5 * time.Minute)
	g.sync(succeeded, false, "alice", "aaa")
	if d := g.lastDeployment(); d == nil || !d.TargetSeenAt.Equal(seenAt) || !d.ChangeTime.IsZero() || d.ChangeCommit != nil {
		t.Fatalf("v2: %+v, want a deployment whose change was first compared at %v", d, seenAt)
	}

	// CI names the change (commit and time) with v3; the deployment takes
	// them, the next one (v4, no new annotation) does not.
	g.app.Annotations = map[string]string{model.AnnotationChangeCommit: "c0ffee", model.AnnotationChangeTime: "2026-03-04T08:43:00Z"}
	g.source = tag("v3")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.sync(synccommon.OperationFailed, false, "automated", "aaa")
	g.sync(succeeded, false, "automated", "aaa")
	d := g.lastDeployment()
	if d == nil || d.Result != model.DeploymentSucceeded || d.ChangeCommit == nil || d.ChangeCommit.Revision != "c0ffee" ||
		d.ChangeCommit.RepoURL != "https://git.example.com/deploy.git" || !d.ChangeTime.Equal(time.Date(2026, 3, 4, 8, 43, 0, 0, time.UTC)) {
		t.Fatalf("v3 after a failed try: %+v, want the named change (the failed try does not use it up)", d)
	}
	g.source = tag("v4")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.sync(succeeded, false, "automated", "aaa")
	if d := g.lastDeployment(); d == nil || d.ChangeCommit != nil || !d.ChangeTime.IsZero() {
		t.Fatalf("v4: %+v, want no named change (the annotation named v3's)", d)
	}

	// A time that does not parse names no time.
	g.app.Annotations = map[string]string{model.AnnotationChangeTime: "yesterday"}
	g.source = tag("v5")
	g.app.Status.Sync.ComparedTo.Source = g.source
	g.sync(succeeded, false, "automated", "aaa")
	if d := g.lastDeployment(); d == nil || !d.ChangeTime.IsZero() || d.TargetSeenAt.IsZero() {
		t.Fatalf("v5: %+v, want no change time from %q, the comparison's time kept", d, "yesterday")
	}
}

// TestDegradedDuringANewerSyncIsItsOwn: an app that turns Degraded while a
// sync to a new change runs (health waits out progressDeadlineSeconds)
// fails that change, not the deployment before it: once, whether the sync
// then fails (a failed deployment, counted as such), is killed for the
// sync timeout or succeeds (degraded, on it).
func TestDegradedDuringANewerSyncIsItsOwn(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	degrade := func() { g.health(health.HealthStatusDegraded, time.Second) }

	g.whileRunning = degrade
	g.sync(synccommon.OperationFailed, false, "alice", "bbb")
	g.observe(time.Minute)
	g.wantCounts("failing sync of bbb, degraded while it ran", map[string]float64{"succeeded": 1, "failed": 1}, map[string]float64{"sync_failed": 1})

	g.health(health.HealthStatusHealthy, time.Minute)
	g.message, g.terminating = timeoutFailed, timeoutTerminating
	g.whileRunning = degrade
	g.sync(synccommon.OperationFailed, false, "automated", "ccc")
	g.message, g.terminating = "", ""
	g.observe(time.Minute)
	g.wantCounts("ccc killed for the sync timeout, degraded while it ran", map[string]float64{"succeeded": 1, "failed": 2}, map[string]float64{"sync_failed": 2})

	g.health(health.HealthStatusHealthy, time.Minute)
	g.whileRunning = degrade
	g.sync(synccommon.OperationSucceeded, false, "alice", "ddd")
	g.observe(time.Minute)
	g.wantCounts("ddd degraded while it ran, then succeeded", map[string]float64{"succeeded": 2, "failed": 2}, map[string]float64{"sync_failed": 2, "degraded": 1})
	for _, n := range g.notices.list {
		if n.Kind == model.NoticeChangeFailed && n.Reason == model.FailureDegraded && n.Deployment.Revision != "ddd" {
			t.Errorf("degraded failure of %s, want ddd's", n.Deployment.Revision)
		}
	}

	// A re-sync of what runs is no newer change: Degraded while it runs is
	// the last deployment's.
	g.health(health.HealthStatusHealthy, time.Minute)
	g.sync(synccommon.OperationSucceeded, false, "alice", "eee")
	g.whileRunning = degrade
	g.sync(synccommon.OperationSucceeded, false, "alice", "eee")
	g.observe(time.Minute)
	g.wantCounts("eee degraded during its re-sync", map[string]float64{"succeeded": 3, "failed": 2}, map[string]float64{"sync_failed": 2, "degraded": 2})
}

// TestDegradedSpellStaysWithItsFailedSync: a sync of a new change fails
// with the app turning Degraded while it ran, and the fix is synced while
// the app is still Degraded (the e2e's recording of v3.6.1 does this). The
// fix's start must not hand the spell back to the deployment before the
// failed sync: one failed change (sync_failed), and the fix recovers it.
func TestDegradedSpellStaysWithItsFailedSync(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.whileRunning = func() { g.health(health.HealthStatusDegraded, time.Second) }
	g.sync(synccommon.OperationFailed, false, "alice", "bbb")
	g.whileRunning = nil
	g.observe(5 * time.Second)
	g.sync(synccommon.OperationSucceeded, false, "alice", "ccc")
	g.observe(5 * time.Second)
	g.health(health.HealthStatusHealthy, time.Second)
	g.observe(time.Second)
	g.wantCounts("fix synced while still Degraded", map[string]float64{"succeeded": 2, "failed": 1}, map[string]float64{"sync_failed": 1})
	recovered := 0
	for _, n := range g.notices.list {
		if n.Kind == model.NoticeRecovered {
			recovered++
		}
	}
	if recovered != 1 {
		t.Errorf("%d recoveries, want the fix's one", recovered)
	}
}

// TestSelectiveSyncIsNoDeployment: `argocd app sync --resource` (the UI's
// selection) of a new revision is a step: no deployment, though it leaves
// the app Synced to the revision; the full sync after it is the one
// deployment, even when it finds nothing left to change.
func TestSelectiveSyncIsNoDeployment(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.selected = []v1alpha1.SyncOperationResource{{Kind: "ConfigMap", Name: "cm"}}
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.selected = nil
	g.wantCounts("selective sync of bbb", map[string]float64{"succeeded": 1}, nil)
	g.app.Status.Sync.Revision = "bbb" // everything selected: Synced to bbb, idle
	g.observe(time.Minute)
	g.unchanged = true
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.unchanged = false
	g.wantCounts("full sync after it", map[string]float64{"succeeded": 2}, nil)
	if d := g.lastDeployment(); d == nil || d.PreviousRevision != "aaa" {
		t.Fatalf("full sync: %+v, want the deployment of bbb after aaa", d)
	}
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.wantCounts("a re-sync", map[string]float64{"succeeded": 2}, nil)
}

// TestRollbackByMovingTheTarget: moving targetRevision back (or Kargo
// promoting older freight, or a branch reset) deploys what an earlier sync
// ran: a rollback, though the app ends Synced to it; going back to what
// the rollback undid is a roll forward, also after re-syncs of the
// rollback.
func TestRollbackByMovingTheTarget(t *testing.T) {
	g := newArgoSim(t)
	// Argo CD compares with the moved target (OutOfSync), syncs it and
	// shows the app Synced to it.
	deploy := func(rev string) {
		g.app.Status.Sync.Revision, g.app.Status.Sync.Status = rev, v1alpha1.SyncStatusCodeOutOfSync
		g.observe(time.Minute)
		g.sync(synccommon.OperationSucceeded, false, "automated", rev)
		g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
		g.observe(time.Minute)
	}
	deploy("aaa")
	deploy("bbb")
	deploy("aaa")
	g.wantCounts("target moved back to aaa", map[string]float64{"succeeded": 2, "rolled_back": 1}, map[string]float64{"rolled_back": 1})
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	deploy("bbb")
	g.wantCounts("forward to bbb again", map[string]float64{"succeeded": 3, "rolled_back": 1}, map[string]float64{"rolled_back": 1})
	if d := g.lastDeployment(); d == nil || d.Result != model.DeploymentSucceeded {
		t.Errorf("roll forward: %+v, want a succeeded deployment", d)
	}
}

// TestRecoveryWithoutSynced: an app restores its service when it is well
// again after a successful operation, Synced or not: with a perpetual diff
// it never is; an app whose well state is Suspended (a suspended CronJob)
// recovers on Suspended; an app well when Healthy does not.
func TestRecoveryWithoutSynced(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync // a perpetual diff
	g.observe(time.Minute)
	g.health(health.HealthStatusDegraded, time.Minute)
	g.health(health.HealthStatusSuspended, time.Minute)
	g.health(health.HealthStatusHealthy, 3*time.Minute)
	want := []string{"deployed", "healthy", "change_failed/degraded", "recovered"}
	if got := g.notices.kinds(); !slices.Equal(got, want) {
		t.Fatalf("notices %v, want %v", got, want)
	}
	if n := g.notices.list[3]; n.Time.Sub(n.Onset) != 4*time.Minute {
		t.Errorf("recovered after %v, want 4m (Suspended is not how this app is well)", n.Time.Sub(n.Onset))
	}

	s := newArgoSim(t)
	s.health(health.HealthStatusSuspended, time.Minute)
	s.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	s.health(health.HealthStatusDegraded, time.Minute)
	s.health(health.HealthStatusSuspended, 2*time.Minute)
	if got := s.notices.kinds(); !slices.Equal(got, []string{"deployed", "change_failed/degraded", "recovered"}) {
		t.Errorf("suspended app: notices %v, want deployed, degraded, recovered", got)
	}
}

// TestAppOfAppsParentIsNoDeployment: a parent whose resources are
// Applications (and AppProjects) ships through its children; its syncs are
// no deployments. An app with a Rollout (also argoproj.io) beside a child
// Application is no parent.
func TestAppOfAppsParentIsNoDeployment(t *testing.T) {
	g := newArgoSim(t, func(a *v1alpha1.Application) {
		a.Status.Resources = []v1alpha1.ResourceStatus{
			{Group: "argoproj.io", Kind: "Application", Namespace: "argocd", Name: "web-prod", Status: v1alpha1.SyncStatusCodeSynced},
			{Group: "argoproj.io", Kind: "AppProject", Namespace: "argocd", Name: "web", Status: v1alpha1.SyncStatusCodeSynced},
		}
	})
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.wantCounts("parent", nil, nil)
	g.app.Status.Resources = append(g.app.Status.Resources, v1alpha1.ResourceStatus{Group: "argoproj.io", Kind: "Rollout", Namespace: "web", Name: "web", Status: v1alpha1.SyncStatusCodeSynced})
	g.sync(synccommon.OperationSucceeded, false, "alice", "ccc")
	g.wantCounts("a Rollout beside the child", map[string]float64{"succeeded": 1}, nil)
}

// TestReleaseWait: a release synced by hand carries when the app began
// awaiting it (its target moved: a merge); an automated sync, a rollback
// and an app that awaited nothing carry none.
func TestReleaseWait(t *testing.T) {
	g := newArgoSim(t)
	g.sync(synccommon.OperationSucceeded, false, "alice", "aaa")
	merge := func(rev string) time.Time {
		g.app.Status.Sync.Revision, g.app.Status.Sync.Status = rev, v1alpha1.SyncStatusCodeOutOfSync
		g.observe(time.Minute)
		return at(g.now)
	}
	approved := func() {
		g.observe(2 * time.Hour) // the approval
	}
	merged := merge("bbb")
	approved()
	g.sync(synccommon.OperationSucceeded, false, "alice", "bbb")
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	g.observe(time.Minute)
	if d := g.lastDeployment(); d == nil || !d.AwaitedSince.Equal(merged) {
		t.Fatalf("bbb synced by hand: %+v, want it awaited since the merge at %v", d, merged)
	}
	merge("ccc")
	g.sync(synccommon.OperationSucceeded, false, "automated", "ccc")
	g.app.Status.Sync.Status = v1alpha1.SyncStatusCodeSynced
	g.observe(time.Minute)
	if d := g.lastDeployment(); d == nil || !d.AwaitedSince.IsZero() {
		t.Errorf("ccc auto-synced: %+v, want no wait", d)
	}
	g.sync(synccommon.OperationSucceeded, false, "alice", "ddd") // never awaited
	if d := g.lastDeployment(); d == nil || !d.AwaitedSince.IsZero() {
		t.Errorf("ddd: %+v, want no wait", d)
	}
}

// TestHydratedDeploymentShipsTheDryCommit: for a Source Hydrator app the
// deployed revision is the hydrator's commit; the change it ships is the
// dry commit the last hydration rendered into it, in the dry source, whose
// date lead time runs from. When that cannot be resolved, the deployment
// says why and has no lead time.
func TestHydratedDeploymentShipsTheDryCommit(t *testing.T) {
	const dryRepo = "https://git.example.com/dry.git"
	g := newArgoSim(t, func(a *v1alpha1.Application) {
		a.Spec.Source = nil
		a.Spec.SourceHydrator = &v1alpha1.SourceHydrator{
			DrySource:  v1alpha1.DrySource{RepoURL: dryRepo, TargetRevision: "main", Path: "dry"},
			SyncSource: v1alpha1.SyncSource{TargetBranch: "env/hydrated", Path: "hydrated"},
		}
	})
	hydrated := func(dry, hyd string) {
		g.app.Status.SourceHydrator.LastSuccessfulOperation = &v1alpha1.SuccessfulHydrateOperation{DrySHA: dry, HydratedSHA: hyd}
		g.observe(time.Second)
	}
	hydrated("dry0", "hyd0")
	g.sync(synccommon.OperationSucceeded, false, "automated", "hyd0")
	hydrated("dry1", "hyd1")
	g.sync(synccommon.OperationSucceeded, false, "automated", "hyd1")
	d := g.lastDeployment()
	if d == nil || d.DrySHA != "dry1" || d.LeadUnknown != "" || len(d.Changed) != 1 || d.Changed[0].Revision != "dry1" || d.Changed[0].RepoURL != dryRepo {
		t.Fatalf("hyd1: %+v, want the dry commit dry1 of %s as its change", d, dryRepo)
	}
	g.sync(synccommon.OperationSucceeded, false, "alice", "hyd0") // an older hydration, by hand
	if d := g.lastDeployment(); d == nil || d.LeadUnknown == "" || len(d.Changed) != 0 || d.DrySHA != "" {
		t.Errorf("hyd0 again: %+v, want no change resolved and why", d)
	}
	g.app.Spec.SourceHydrator.SyncSource.RepoURL = "https://git.example.com/hydrated.git"
	hydrated("dry2", "hyd2")
	g.sync(synccommon.OperationSucceeded, false, "automated", "hyd2")
	if d := g.lastDeployment(); d == nil || d.LeadUnknown == "" || len(d.Changed) != 0 || d.DrySHA != "dry2" {
		t.Errorf("hyd2 into another repository: %+v, want the dry SHA said, no change looked up, and why", d)
	}
}
