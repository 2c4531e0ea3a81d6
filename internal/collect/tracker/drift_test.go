package tracker

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/model"
)

// driftApp builds the app "web" as Argo CD writes it: compared at
// reconciled with revision target and source digest source, its history
// (revision, source digest, deployedAt) oldest first, and the given
// resources OutOfSync (none: Synced).
type driftApp struct {
	target     string
	source     v1alpha1.SourceDigest
	reconciled time.Duration
	history    []v1alpha1.RevisionHistory
	outOfSync  []string // ConfigMap names
}

func (d driftApp) app() *v1alpha1.Application {
	return newApp(func(a *v1alpha1.Application) {
		a.Labels = map[string]string{"env": "prod"}
		a.Status.Sync = v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced, Revision: d.target, ComparedTo: v1alpha1.ComparedTo{Source: d.source}}
		a.Status.ReconciledAt = mtime(at(d.reconciled))
		a.Status.History = d.history
		a.Status.Resources = []v1alpha1.ResourceStatus{
			{Kind: "ConfigMap", Name: "settings", Status: v1alpha1.SyncStatusCodeSynced},
			{Kind: "ConfigMap", Name: "flags", Status: v1alpha1.SyncStatusCodeSynced},
			{Group: "apps", Kind: "Deployment", Name: "web", Status: v1alpha1.SyncStatusCodeSynced},
		}
		for _, name := range d.outOfSync {
			a.Status.Sync.Status = v1alpha1.SyncStatusCodeOutOfSync
			for i := range a.Status.Resources {
				if a.Status.Resources[i].Name == name {
					a.Status.Resources[i].Status = v1alpha1.SyncStatusCodeOutOfSync
				}
			}
		}
	})
}

// synced returns a history entry of revision rev with source digest src,
// deployed at t0+deployed.
func synced(id int64, rev string, src v1alpha1.SourceDigest, deployed time.Duration) v1alpha1.RevisionHistory {
	return v1alpha1.RevisionHistory{ID: id, Revision: rev, Source: src, DeployedAt: metav1.NewTime(at(deployed))}
}

// driftKinds returns the app's live drift and awaiting sync begin times,
// zero where the series is absent.
func driftKinds(t *testing.T, s *exposition.Store) (live, awaiting time.Time) {
	t.Helper()
	if v, ok := value(t, s, "crowsnest_app_live_drift_since_timestamp_seconds", "name", "web"); ok {
		live = time.Unix(int64(v), 0).UTC()
	}
	if v, ok := value(t, s, "crowsnest_app_awaiting_sync_since_timestamp_seconds", "name", "web"); ok {
		awaiting = time.Unix(int64(v), 0).UTC()
	}
	return live, awaiting
}

// The life of a prod app synced by hand: a hand edit is live drift; a merge
// waiting for its sync is not, and a hand edit while it waits is; the sync
// ends both (a comparison older than the sync changes nothing); a rollback
// leaves Git ahead, awaiting sync; a changed spec source (Image Updater,
// `argocd app set -p`) awaits sync too.
func TestDriftKinds(t *testing.T) {
	tr, s := newTestTracker()
	src := v1alpha1.DigestOf([]byte(`{"repoURL":"https://git.example.com/deploy.git","path":"apps/web","helm":{"parameters":[{"name":"image.tag","value":"1.0"}]}}`))
	newSrc := v1alpha1.DigestOf([]byte(`{"repoURL":"https://git.example.com/deploy.git","path":"apps/web","helm":{"parameters":[{"name":"image.tag","value":"1.1"}]}}`))
	h1 := synced(1, "r1", src, 0)
	step := func(desc string, after time.Duration, d driftApp, wantLive, wantAwaiting time.Duration) {
		t.Helper()
		tr.Handle(model.Event{Type: model.Modified, Time: at(after), App: d.app()})
		live, awaiting := driftKinds(t, s)
		check := func(what string, got time.Time, want time.Duration) {
			t.Helper()
			switch {
			case want < 0 && !got.IsZero():
				t.Errorf("%s: %s since %v, want none", desc, what, got.Sub(t0))
			case want >= 0 && !got.Equal(at(want)):
				t.Errorf("%s: %s since %v, want since %v", desc, what, got.Sub(t0), want)
			}
		}
		check("live drift", live, wantLive)
		check("awaiting sync", awaiting, wantAwaiting)
	}
	const none = -1
	step("synced", 1*time.Second, driftApp{target: "r1", source: src, reconciled: time.Second, history: []v1alpha1.RevisionHistory{h1}}, none, none)
	step("hand edit", 10*time.Second, driftApp{target: "r1", source: src, reconciled: time.Second, history: []v1alpha1.RevisionHistory{h1}, outOfSync: []string{"settings"}}, 10*time.Second, none)
	// A merge changing the flags ConfigMap while the hand edit stands:
	// the hand edit stays live drift, the merge awaits its sync.
	step("merge while the hand edit stands", 15*time.Second, driftApp{target: "r2", source: src, reconciled: 15 * time.Second, history: []v1alpha1.RevisionHistory{h1}, outOfSync: []string{"settings", "flags"}}, 10*time.Second, 15*time.Second)
	step("hand edit undone, merge reverted", 20*time.Second, driftApp{target: "r1", source: src, reconciled: time.Second, history: []v1alpha1.RevisionHistory{h1}}, none, none)

	// A merge: the settings ConfigMap changes in Git.
	merged := driftApp{target: "r2", source: src, reconciled: 30 * time.Second, history: []v1alpha1.RevisionHistory{h1}, outOfSync: []string{"settings"}}
	step("merge awaiting its sync", 30*time.Second, merged, none, 30*time.Second)
	step("merge, compared again", 40*time.Second, merged, none, 30*time.Second)
	edited := merged
	edited.outOfSync = []string{"settings", "flags"}
	step("hand edit while the merge waits", 50*time.Second, edited, 50*time.Second, 30*time.Second)

	// The sync to r2 ends at 60 s; the comparison written with it is the
	// one before it: nothing changes until Argo CD compares again.
	h2 := synced(2, "r2", src, 60*time.Second)
	stale := edited
	stale.history = []v1alpha1.RevisionHistory{h1, h2}
	step("synced, comparison from before the sync", 60*time.Second, stale, 50*time.Second, 30*time.Second)
	step("synced, compared after the sync", 61*time.Second, driftApp{target: "r2", source: src, reconciled: 61 * time.Second, history: []v1alpha1.RevisionHistory{h1, h2}}, none, none)

	// A rollback to r1 at 70 s: Git (r2) is ahead of what runs.
	h3 := synced(3, "r1", src, 70*time.Second)
	rolledBack := driftApp{target: "r2", source: src, reconciled: 70 * time.Second, history: []v1alpha1.RevisionHistory{h1, h2, h3}, outOfSync: []string{"settings"}}
	step("rollback, comparison from before it", 70*time.Second, rolledBack, none, none)
	rolledBack.reconciled = 71 * time.Second
	step("rollback, compared after it", 71*time.Second, rolledBack, none, 71*time.Second)
	rolledBack.outOfSync = []string{"settings", "web"}
	step("hand edit after the rollback", 80*time.Second, rolledBack, 80*time.Second, 71*time.Second)

	// Back in sync with r2; then a new image tag set on the spec's
	// source, same revision: awaiting sync.
	h4 := synced(4, "r2", src, 90*time.Second)
	step("synced again", 91*time.Second, driftApp{target: "r2", source: src, reconciled: 91 * time.Second, history: []v1alpha1.RevisionHistory{h1, h2, h3, h4}}, none, none)
	step("new source, same revision", 100*time.Second, driftApp{target: "r2", source: newSrc, reconciled: 100 * time.Second, history: []v1alpha1.RevisionHistory{h1, h2, h3, h4}, outOfSync: []string{"web"}}, none, 100*time.Second)
}

// An app never synced (no history, no operation) that is OutOfSync awaits
// its first sync; with history limited to none, the last successful sync's
// result is what was synced; a failed sync's is not.
func TestDriftKindsWithoutHistory(t *testing.T) {
	tr, s := newTestTracker()
	never := driftApp{target: "r1", reconciled: time.Second, outOfSync: []string{"settings"}}
	tr.Handle(model.Event{Type: model.Added, Time: at(time.Second), App: never.app()})
	if live, awaiting := driftKinds(t, s); !live.IsZero() || !awaiting.Equal(at(time.Second)) {
		t.Errorf("never synced: live %v, awaiting %v; want awaiting only", live, awaiting)
	}
	withResult := func(phase synccommon.OperationPhase, rev string) *v1alpha1.Application {
		a := driftApp{target: "r1", reconciled: 20 * time.Second, outOfSync: []string{"flags"}}.app()
		a.Status.OperationState = &v1alpha1.OperationState{
			Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: rev}},
			Phase:     phase, StartedAt: metav1.NewTime(at(5 * time.Second)), FinishedAt: mtime(at(10 * time.Second)),
			SyncResult: &v1alpha1.SyncOperationResult{Revision: rev},
		}
		return a
	}
	tr2, s2 := newTestTracker()
	tr2.Handle(model.Event{Type: model.Added, Time: at(20 * time.Second), App: withResult(synccommon.OperationSucceeded, "r1")})
	if live, awaiting := driftKinds(t, s2); !live.Equal(at(20*time.Second)) || !awaiting.IsZero() {
		t.Errorf("synced to r1 (no history), r1 drifted: live %v, awaiting %v; want live only", live, awaiting)
	}
	tr3, s3 := newTestTracker()
	tr3.Handle(model.Event{Type: model.Added, Time: at(20 * time.Second), App: withResult(synccommon.OperationFailed, "r1")})
	if live, awaiting := driftKinds(t, s3); !live.IsZero() || awaiting.IsZero() {
		t.Errorf("a failed sync to r1 only: live %v, awaiting %v; want awaiting only", live, awaiting)
	}
}

// A running operation's retries are exposed while it runs; self-heal syncs
// (automated, with Argo CD's self-heal attempt count) are counted, other
// syncs and dry runs are not.
func TestRetriesAndSelfHeals(t *testing.T) {
	tr, s := newTestTracker()
	tr.Handle(model.Event{Type: model.Added, Time: t0, App: newApp()})
	op := func(phase synccommon.OperationPhase, started time.Duration, retries int64, selfHeal int64, dryRun bool) *v1alpha1.Application {
		return newApp(func(a *v1alpha1.Application) {
			st := &v1alpha1.OperationState{
				Operation: v1alpha1.Operation{
					Sync:        &v1alpha1.SyncOperation{Revision: "r1", DryRun: dryRun, SelfHealAttemptsCount: selfHeal},
					InitiatedBy: v1alpha1.OperationInitiator{Automated: true},
				},
				Phase: phase, StartedAt: metav1.NewTime(at(started)), RetryCount: retries,
				SyncResult: &v1alpha1.SyncOperationResult{Revision: "r1"},
			}
			if phase.Completed() {
				st.FinishedAt = mtime(at(started + 5*time.Second))
			}
			a.Status.OperationState = st
		})
	}
	expect := func(desc string, retries float64, retriesShown bool, selfHeals float64) {
		t.Helper()
		v, ok := value(t, s, "crowsnest_app_operation_retries", "name", "web")
		if ok != retriesShown || ok && v != retries {
			t.Errorf("%s: retries %v (shown %v), want %v (shown %v)", desc, v, ok, retries, retriesShown)
		}
		if v, _ := value(t, s, "crowsnest_app_self_heals_total", "name", "web"); v != selfHeals {
			t.Errorf("%s: self-heals %v, want %v", desc, v, selfHeals)
		}
	}
	tr.Handle(model.Event{Type: model.Modified, Time: at(10 * time.Second), App: op(synccommon.OperationRunning, 10*time.Second, 4, 0, false)})
	expect("auto-sync retrying", 4, true, 0)
	tr.Handle(model.Event{Type: model.Modified, Time: at(20 * time.Second), App: op(synccommon.OperationSucceeded, 10*time.Second, 4, 0, false)})
	expect("auto-sync done", 0, false, 0)
	for i, heal := range []int64{1, 2, 3} {
		start := time.Duration(30+10*i) * time.Second
		tr.Handle(model.Event{Type: model.Modified, Time: at(start + 6*time.Second), App: op(synccommon.OperationSucceeded, start, 0, heal, false)})
	}
	expect("three self-heals", 0, false, 3)
	tr.Handle(model.Event{Type: model.Modified, Time: at(80 * time.Second), App: op(synccommon.OperationSucceeded, 70*time.Second, 0, 4, true)})
	expect("a dry run", 0, false, 3)
}
