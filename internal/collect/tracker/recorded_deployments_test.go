package tracker

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// recordedEvents reads the Application events of a recording.
func recordedEvents(t *testing.T, path string) []model.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []model.Event
	dec := json.NewDecoder(f)
	for dec.More() {
		var e model.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if e.App != nil {
			out = append(out, e)
		}
	}
	return out
}

// noticeLog collects deployment notices.
type noticeLog struct {
	collected[*model.DeploymentNotice]
}

func (l *noticeLog) Deployment(n *model.DeploymentNotice) { l.add(n) }

// count counts the notices of kind about app's deployments.
func (l *noticeLog) count(kind, app string) int {
	n := 0
	for _, x := range l.all() {
		if x.Kind == kind && x.Deployment != nil && x.Deployment.Name == app {
			n++
		}
	}
	return n
}

// TestRecordedDeployments replays what the real Argo CD v3.6.1 wrote while
// TestDeployments ran (test/e2e/testdata/v3.6/argocd-deployments.jsonl)
// and checks crowsnest's rollbacks, recoveries and server-side apply
// deployments against the test's own reading of Argo CD's objects:
//   - a rollback is a history entry back to a revision deployed before the
//     entry before it (argocd app rollback writes one);
//   - a recovery is the prod app's health going from Degraded back to
//     Healthy (a Degraded spell begun after a deployment);
//   - the server-side apply app's deployments are its history entries but
//     those to a revision Argo CD showed it Synced to before the entry's
//     sync started (every resource reads "serverside-applied", changed or
//     not).
func TestRecordedDeployments(t *testing.T) {
	path := recordingPath("v3.6", "argocd-deployments.jsonl")
	events := recordedEvents(t, path)
	notices := &noticeLog{}
	store, _, apps, since, _ := replayFile(t, path, nil, func(tr *Tracker) {
		tr.subs.Deployments = append(tr.subs.Deployments, notices)
	})
	for _, name := range []string{"dora-prod", "dora-ssa"} {
		if apps[name] == nil {
			t.Fatalf("recording has no app %s", name)
		}
	}
	got := func(name, result string) float64 {
		t.Helper()
		v, ok := value(t, store, "crowsnest_app_deployments_total", "name", name, "result", result)
		if !ok {
			t.Fatalf("no crowsnest_app_deployments_total{name=%q,result=%q}", name, result)
		}
		return v
	}

	// Rollbacks, from the prod app's history; each one's sync start.
	prod := apps["dora-prod"]
	rollbacks := 0.0
	var rollbacksOf [][2]time.Time // the undone entry's sync start, the rollback's
	for i, h := range prod.Status.History {
		if i < 2 || h.DeployedAt.Unix() < since.Unix() || h.Revision == prod.Status.History[i-1].Revision {
			continue
		}
		for _, earlier := range prod.Status.History[:i-1] {
			if earlier.Revision == h.Revision {
				rollbacks++
				if h.DeployStartedAt != nil && prod.Status.History[i-1].DeployStartedAt != nil {
					rollbacksOf = append(rollbacksOf, [2]time.Time{prod.Status.History[i-1].DeployStartedAt.Time, h.DeployStartedAt.Time})
				}
				break
			}
		}
	}
	if rollbacks == 0 {
		t.Fatal("the recording's prod history has no rollback")
	}
	if g := got("dora-prod", model.DeploymentRolledBack); g != rollbacks {
		t.Errorf("dora-prod: %v rollbacks counted, want %v from Argo CD's history", g, rollbacks)
	}

	// Recoveries: the prod app's failed changes that ended well — its
	// Degraded spells that ended Healthy, and its rollbacks of a change
	// that was not Degraded (the rollback fails the change it undoes, and
	// is what it recovers on).
	recoveries, degraded := 0, false
	var degradedAt []time.Time // when each Degraded spell began
	for _, e := range events {
		if e.App.Name != "dora-prod" {
			continue
		}
		switch e.App.Status.Health.Status {
		case "Degraded":
			if !degraded {
				degradedAt = append(degradedAt, e.Time)
			}
			degraded = true
		case "Healthy":
			if degraded {
				recoveries++
			}
			degraded = false
		}
	}
	for _, r := range rollbacksOf {
		healthy := true
		for _, at := range degradedAt {
			// A spell begun between the undone change's sync and the
			// rollback (Argo CD keeps whole seconds of the start): its
			// recovery is counted above.
			if at.Unix() > r[0].Unix() && at.Before(r[1]) {
				healthy = false
			}
		}
		if healthy {
			recoveries++
		}
	}
	if recoveries == 0 {
		t.Fatal("the recording's prod app never recovered from Degraded")
	}
	if g := notices.count(model.NoticeRecovered, "dora-prod"); g != recoveries {
		t.Errorf("dora-prod: %d recoveries, want %d from its health and history in the recording", g, recoveries)
	}

	// One bad change fails once. A Degraded spell is the "degraded"
	// failure of the deployment before it only if the last operation that
	// started before the spell began succeeded; one begun after a failed
	// operation started is that operation's, a sync_failed change (one per
	// revision tried).
	final := map[int64]string{} // operation start → its last phase seen
	failedRevisions := map[string]bool{}
	for _, e := range events {
		op := e.App.Status.OperationState
		if e.App.Name != "dora-prod" || op == nil || op.Operation.Sync == nil || op.Operation.Sync.DryRun || op.StartedAt.Unix() < since.Unix() {
			continue
		}
		final[op.StartedAt.Unix()] = string(op.Phase)
		if (op.Phase == "Failed" || op.Phase == "Error") && op.SyncResult != nil {
			failedRevisions[op.SyncResult.Revision] = true
		}
	}
	degradedWant := 0.0
	for _, b := range degradedAt {
		var last int64 = -1
		for start := range final {
			if start <= b.Unix() && start > last {
				last = start
			}
		}
		if last >= 0 && final[last] == "Succeeded" {
			degradedWant++
		}
	}
	if len(failedRevisions) == 0 || len(degradedAt) < 2 {
		t.Fatalf("the recording has %d failed revisions and %d Degraded spells of prod, want a failed sync and two spells", len(failedRevisions), len(degradedAt))
	}
	for reason, want := range map[string]float64{model.FailureDegraded: degradedWant, model.FailureSyncFailed: float64(len(failedRevisions))} {
		if g, _ := value(t, store, "crowsnest_app_change_failures_total", "name", "dora-prod", "reason", reason); g != want {
			t.Errorf("dora-prod: %v failed changes for %s, want %v from the recording's operations and health", g, reason, want)
		}
	}

	// Server-side apply: history entries less those Argo CD showed Synced
	// before their sync started.
	ssa := apps["dora-ssa"]
	var syncedAt []struct {
		at       time.Time
		revision string
	}
	for _, e := range events {
		if e.App.Name == "dora-ssa" && e.App.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && e.App.Operation == nil &&
			(e.App.Status.OperationState == nil || e.App.Status.OperationState.Phase.Completed()) {
			syncedAt = append(syncedAt, struct {
				at       time.Time
				revision string
			}{e.Time, e.App.Status.Sync.Revision})
		}
	}
	want, serverSide := 0.0, 0
	for i, h := range ssa.Status.History {
		if i == 0 || h.DeployStartedAt == nil {
			want++
			continue
		}
		noop := false
		for _, s := range syncedAt {
			if s.revision == h.Revision && s.at.After(ssa.Status.History[i-1].DeployedAt.Time) && s.at.Before(h.DeployStartedAt.Time) {
				noop = true
			}
		}
		if noop {
			serverSide++
		} else {
			want++
		}
	}
	if serverSide == 0 {
		t.Fatal("the recording's server-side apply app has no sync of a revision it was shown Synced to")
	}
	if g := got("dora-ssa", model.DeploymentSucceeded); g != want {
		t.Errorf("dora-ssa: %v deployments, want %v: %d history entries, %d of them to a revision Argo CD showed Synced", g, want, len(ssa.Status.History), serverSide)
	}
}

// TestRecordedAppOfAppsParent: in the recording of the e2e's scenarios (a
// root app-of-apps syncing the dev, stage and prod apps of the same
// fixture), the root's syncs are no deployments (everything it syncs is
// an Application, whose own syncs are the deployments), while each child
// that Argo CD synced has deployments.
func TestRecordedAppOfAppsParent(t *testing.T) {
	store, _, apps, since, _ := replayFile(t, recordingPath("v3.6", "argocd-scenarios-1-3.jsonl"), nil)
	parents, children := 0, 0
	for name, app := range apps {
		synced := 0
		for _, h := range app.Status.History {
			if h.DeployedAt.Unix() >= since.Unix() {
				synced++
			}
		}
		if synced == 0 {
			continue
		}
		onlyApps := len(app.Status.Resources) > 0
		for _, r := range app.Status.Resources {
			onlyApps = onlyApps && r.Group == argoGroup && r.Kind == "Application"
		}
		d, _ := value(t, store, "crowsnest_app_deployments_total", "name", name, "result", model.DeploymentSucceeded)
		switch {
		case onlyApps:
			parents++
			if d != 0 {
				t.Errorf("%s, a parent of only Applications synced %d times, counts %v deployments, want none", name, synced, d)
			}
		default:
			children++
			if d == 0 {
				t.Errorf("%s, synced %d times, counts no deployment", name, synced)
			}
		}
	}
	if parents == 0 || children == 0 {
		t.Fatalf("recording has %d synced parents and %d synced children, want both", parents, children)
	}
}
