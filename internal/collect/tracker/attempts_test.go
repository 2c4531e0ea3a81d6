package tracker

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/exposition"

	"github.com/crowsnest/crowsnest/internal/model"
)

// result is a resource result of phase, kind and name, with a status and
// message; hookType makes it a hook.
func result(phase, kind, name string, status synccommon.ResultCode, msg, hookType string) *v1alpha1.ResourceResult {
	group := map[string]string{"Deployment": "apps", "Job": "batch"}[kind]
	return &v1alpha1.ResourceResult{SyncPhase: synccommon.SyncPhase(phase), Group: group, Kind: kind, Name: name,
		Status: status, Message: msg, HookType: synccommon.HookType(hookType)}
}

// opSnapshot is the app with an operation state in phase, at retryCount,
// finished at finished (nil for none), with message and results.
func opSnapshot(phase synccommon.OperationPhase, retry int64, finished *time.Time, msg string, results ...*v1alpha1.ResourceResult) *v1alpha1.Application {
	a := snapshot(phase, retry)
	op := a.Status.OperationState
	op.FinishedAt = nil
	if finished != nil {
		op.FinishedAt = mtime(*finished)
	}
	op.Message = msg
	op.SyncResult.Resources = results
	return a
}

// A retried auto-sync as Argo CD v2.14 writes it
// (processRequestedAppOperation): the failed attempt turns Running with
// retryCount 1 and finishedAt at the failure; after the backoff finishedAt
// is cleared while the old results stay, then the new attempt writes fresh
// results. Each attempt's waves are its own, the backoff is no wave's.
func TestRetryAttempts(t *testing.T) {
	cmOK := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSynced, "configmap/cm configured", "")
	webBad := result("Sync", "Deployment", "web", synccommon.ResultCodeSyncFailed, "admission webhook denied", "")
	webOK := result("Sync", "Deployment", "web", synccommon.ResultCodeSynced, "deployment.apps/web configured", "")
	running, done := synccommon.OperationRunning, synccommon.OperationSucceeded
	const retrying = "one or more objects failed to apply. Retrying attempt #1 at 9:00AM."
	ops := handOn(
		step{0, opSnapshot(running, 0, nil, "")},
		step{3 * time.Second, opSnapshot(running, 0, nil, "one or more tasks are running", cmOK)},
		step{4 * time.Second, opSnapshot(running, 0, nil, "one or more tasks are running", cmOK, webBad)},
		step{4500 * time.Millisecond, opSnapshot(running, 1, ptr(at(4*time.Second)), retrying, cmOK, webBad)},
		// The backoff: 10 s.
		step{14 * time.Second, opSnapshot(running, 1, nil, retrying, cmOK, webBad)},
		step{17 * time.Second, opSnapshot(running, 1, nil, "one or more tasks are running", cmOK)},
		step{18 * time.Second, opSnapshot(running, 1, nil, "one or more tasks are running", cmOK, webOK)},
		step{18500 * time.Millisecond, opSnapshot(done, 1, ptr(at(18*time.Second)), "successfully synced (all tasks run)", cmOK, webOK)},
	)
	if len(ops) != 1 {
		t.Fatalf("got %d operations, want 1", len(ops))
	}
	op := ops[0]
	wantAttempts := []model.Attempt{{N: 0, Start: t0, End: at(4500 * time.Millisecond)}, {N: 1, Start: at(14 * time.Second), End: at(18500 * time.Millisecond)}}
	if len(op.Attempts) != 2 || op.Attempts[0] != wantAttempts[0] || op.Attempts[1] != wantAttempts[1] {
		t.Fatalf("attempts %+v, want %+v", op.Attempts, wantAttempts)
	}
	type wave struct {
		attempt    int64
		label      string
		start, end time.Duration
		resources  int
	}
	want := []wave{
		// cm seen at 3 s: began 2 s before; web failed: no delay.
		{0, "Sync/0", time.Second, 4 * time.Second, 1},
		{0, "Sync/2", 4 * time.Second, 4500 * time.Millisecond, 1},
		// The retry began at 14 s: cm seen at 17 s began at 15 s.
		{1, "Sync/0", 15 * time.Second, 18 * time.Second, 1},
		{1, "Sync/2", 18 * time.Second, 18500 * time.Millisecond, 1},
	}
	if len(op.Waves) != len(want) {
		t.Fatalf("waves %+v, want %d", op.Waves, len(want))
	}
	for i, w := range want {
		g := op.Waves[i]
		if g.Attempt != w.attempt || g.Phase+"/"+model.WaveLabel(g.Wave) != w.label || !g.Start.Equal(at(w.start)) || !g.End.Equal(at(w.end)) || len(g.Resources) != w.resources {
			t.Errorf("wave %d: attempt %d %s/%s [%v, %v] %d resources, want %+v", i, g.Attempt, g.Phase, model.WaveLabel(g.Wave), g.Start.Sub(t0), g.End.Sub(t0), len(g.Resources), w)
		}
	}
	if r := op.Waves[1].Resources; len(r) != 1 || r[0].Status != "SyncFailed" {
		t.Errorf("first attempt's failed wave resources %+v, want the failed web", r)
	}
	if len(op.TimedWaves) != 4 {
		t.Errorf("timed waves %d, want each attempt's 4", len(op.TimedWaves))
	}
}

// An attempt that fails exactly as the last one did (same results, same
// messages) still has its waves.
func TestRetryAttemptWithTheSameResults(t *testing.T) {
	bad := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSyncFailed, "invalid", "")
	running, failed := synccommon.OperationRunning, synccommon.OperationFailed
	ops := handOn(
		step{0, opSnapshot(running, 0, nil, "")},
		step{time.Second, opSnapshot(running, 1, ptr(at(time.Second)), "... Retrying attempt #1", bad)},
		step{6 * time.Second, opSnapshot(running, 1, nil, "... Retrying attempt #1", bad)},
		step{7 * time.Second, opSnapshot(failed, 1, ptr(at(7*time.Second)), "one or more objects failed to apply (retried 1 times).", bad)},
	)
	if len(ops) != 1 || len(ops[0].Attempts) != 2 || len(ops[0].Waves) != 2 {
		t.Fatalf("got %+v, want one operation, 2 attempts, a wave each", ops)
	}
	if w := ops[0].Waves[1]; w.Attempt != 1 || !w.Start.Equal(at(7*time.Second)) {
		t.Errorf("second attempt's wave: attempt %d start %v, want 1 and 7 s", w.Attempt, w.Start.Sub(t0))
	}
}

// The time a deny window held the running operation ("Sync operation
// blocked by sync window") is not sync time: neither in the duration
// histogram nor in the wave it fell in.
func TestWindowBlockedTimeIsNotSyncTime(t *testing.T) {
	tr, s, reg := newTrackerWithRegistry(false)
	var got operations
	tr.addOperationSubscriber(&got)
	cm := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSynced, "configmap/cm configured", "")
	web := result("Sync", "Deployment", "web", synccommon.ResultCodeSynced, "deployment.apps/web configured", "")
	running, done := synccommon.OperationRunning, synccommon.OperationSucceeded
	for _, st := range []step{
		{0, opSnapshot(running, 0, nil, "")},
		{3 * time.Second, opSnapshot(running, 0, nil, "one or more tasks are running", cm)},
		// A deny window opens between the waves: 60 s held.
		{5 * time.Second, opSnapshot(running, 0, nil, "Sync operation blocked by sync window", cm)},
		{65 * time.Second, opSnapshot(running, 0, nil, "one or more tasks are running", cm)},
		{66 * time.Second, opSnapshot(running, 0, nil, "one or more tasks are running", cm, web)},
		{66500 * time.Millisecond, opSnapshot(done, 0, ptr(at(66*time.Second)), "successfully synced", cm, web)},
	} {
		tr.Handle(model.Event{Type: model.Modified, Time: at(st.at), App: st.app})
	}
	if len(got.ops) != 1 || got.ops[0].BlockedFor != time.Minute || len(got.ops[0].Blocked) != 1 {
		t.Fatalf("got %+v, want one operation blocked 60 s", got.ops)
	}
	// Argo CD's 66 s less the 60 s held.
	if n, sum := histogram(t, reg, "crowsnest_sync_duration_seconds"); n != 1 || sum != 6 {
		t.Errorf("sync duration: count %d sum %v, want 1 and 6", n, sum)
	}
	if v, ok := value(t, s, "crowsnest_app_last_sync_duration_seconds", "name", "web"); !ok || v != 6 {
		t.Errorf("last sync duration %v (present %v), want 6", v, ok)
	}
	// Wave 0 ran from 1 s to web's 66 s, less 60 s.
	if n, sum := histogram(t, reg, "crowsnest_sync_wave_duration_seconds", "phase", "Sync", "wave", "0"); n != 1 || sum != 5 {
		t.Errorf("wave 0: count %d sum %v, want 1 and 5", n, sum)
	}
}

// Hooks and pruned resources take their wave from the live object's
// annotations (as gitops-engine does), pruning runs in reverse wave
// order or last with PruneLast, and what crowsnest did not see is
// "unknown", not wave 0.
func TestHookAndPruneWaves(t *testing.T) {
	job := func(name string, wave int64, pruneLast bool) model.WorkloadEvent {
		return model.WorkloadEvent{Type: model.Added, Time: t0, Workload: model.Workload{
			App: "web", Kind: "Job", Namespace: "", Name: name, SyncWave: wave, PruneLast: pruneLast}}
	}
	migrate := result("PreSync", "Job", "migrate", synccommon.ResultCodeSynced, "job.batch/migrate created", "PreSync")
	seed := result("PreSync", "Job", "seed", synccommon.ResultCodeSynced, "job.batch/seed created", "PreSync")
	pod := result("PreSync", "Pod", "check", synccommon.ResultCodeSynced, "pod/check created", "PreSync")
	oldA := result("Sync", "Job", "old-a", synccommon.ResultCodePruned, "pruned", "")
	oldB := result("Sync", "Job", "old-b", synccommon.ResultCodePruned, "pruned", "")
	for _, tc := range []struct {
		desc      string
		pruneLast bool
		remote    bool              // the app deploys to another cluster than the jobs'
		want      map[string]string // result name -> wave
	}{
		{"reverse prune order", false, false, map[string]string{"migrate": "-1", "seed": "3", "check": "unknown", "old-a": "5", "old-b": "1"}},
		{"PruneLast", true, false, map[string]string{"old-a": "6", "old-b": "6"}},
		// The watched cluster's jobs of the same names are not the app's:
		// its hooks ran in its own cluster.
		{"an app in another cluster", false, true, map[string]string{"migrate": "unknown", "seed": "unknown", "check": "unknown", "old-a": "unknown", "old-b": "unknown"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			tr, _, _ := newTrackerWithRegistry(false)
			var got operations
			tr.addOperationSubscriber(&got)
			for _, e := range []model.WorkloadEvent{job("migrate", -1, false), job("seed", 3, false), job("old-a", 1, false), job("old-b", 5, false)} {
				tr.HandleWorkload(e)
			}
			withPrune := func(a *v1alpha1.Application) *v1alpha1.Application {
				a.Status.Resources = append(a.Status.Resources,
					v1alpha1.ResourceStatus{Group: "batch", Kind: "Job", Name: "old-a", RequiresPruning: true},
					v1alpha1.ResourceStatus{Group: "batch", Kind: "Job", Name: "old-b", RequiresPruning: true})
				if tc.pruneLast {
					a.Status.OperationState.Operation.Sync = &v1alpha1.SyncOperation{SyncOptions: v1alpha1.SyncOptions{"PruneLast=true"}}
				}
				if tc.remote {
					a.Spec.Destination = v1alpha1.ApplicationDestination{Name: "prod-eu", Namespace: "web"}
				}
				return a
			}
			running, done := synccommon.OperationRunning, synccommon.OperationSucceeded
			for _, st := range []step{
				{0, withPrune(opSnapshot(running, 0, nil, ""))},
				{3 * time.Second, withPrune(opSnapshot(running, 0, nil, "", migrate, seed, pod))},
				{6 * time.Second, withPrune(opSnapshot(running, 0, nil, "", migrate, seed, pod, oldA, oldB))},
				{7 * time.Second, withPrune(opSnapshot(done, 0, ptr(at(7*time.Second)), "", migrate, seed, pod, oldA, oldB))},
			} {
				tr.Handle(model.Event{Type: model.Modified, Time: at(st.at), App: st.app})
			}
			if len(got.ops) != 1 {
				t.Fatalf("got %d operations, want 1", len(got.ops))
			}
			waveOf := map[string]string{}
			for _, w := range got.ops[0].Waves {
				for _, r := range w.Resources {
					waveOf[r.Name] = model.WaveLabel(w.Wave)
				}
			}
			for name, want := range tc.want {
				if waveOf[name] != want {
					t.Errorf("%s in wave %q, want %q (all: %v)", name, waveOf[name], want, waveOf)
				}
			}
		})
	}
}

// Gaps between waves shorter than the configured wave delay mean Argo CD
// waits less than crowsnest assumes: a warning and a self metric say so.
func TestWaveDelayMismatch(t *testing.T) {
	tr, _, _ := newTrackerWithRegistry(false)
	c := exposition.NewWaveDelay()
	tr.subs.WaveDelay = append(tr.subs.WaveDelay, c)
	tr.SetWaveDelay(5 * time.Second)
	cm := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSynced, "created", "")
	web := result("Sync", "Deployment", "web", synccommon.ResultCodeSynced, "created", "")
	svc := result("Sync", "Service", "svc", synccommon.ResultCodeSynced, "created", "")
	running, done := synccommon.OperationRunning, synccommon.OperationSucceeded
	for i := range minWaveGaps {
		base := time.Duration(i) * time.Minute
		for _, st := range []step{
			{base, opSnapshot(running, 0, nil, "")},
			{base + time.Second, opSnapshot(running, 0, nil, "", cm)},
			{base + 3*time.Second, opSnapshot(running, 0, nil, "", cm, web)}, // 2 s after cm: Argo CD's delay is 2 s
			{base + 5*time.Second, opSnapshot(running, 0, nil, "", cm, web, svc)},
			{base + 5*time.Second + 100*time.Millisecond, opSnapshot(done, 0, ptr(at(base+5*time.Second)), "", cm, web, svc)},
		} {
			st.app.Status.OperationState.StartedAt.Time = at(base)
			st.app.Status.Resources = append(st.app.Status.Resources, v1alpha1.ResourceStatus{Kind: "Service", Name: "svc", SyncWave: 4})
			tr.Handle(model.Event{Type: model.Modified, Time: at(st.at), App: st.app})
		}
	}
	if got := testutil.CollectAndCount(c); got != 3 {
		t.Errorf("collected %d series, want 3", got)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP crowsnest_sync_wave_delay_mismatch 1 when the observed gaps between sync waves disagree with --argocd.sync-wave-delay: the shortest of at least 3 is more than 0.5s shorter, or the shortest of 64 more than 3s longer.
# TYPE crowsnest_sync_wave_delay_mismatch gauge
crowsnest_sync_wave_delay_mismatch 1
`), "crowsnest_sync_wave_delay_mismatch"); err != nil {
		t.Error(err)
	}
	// Waves first seen in one snapshot (a retry finding the last
	// attempt's hooks done) tell nothing of the delay: no gap of 0.
	for _, st := range []step{
		{time.Hour, opSnapshot(running, 0, nil, "")},
		{time.Hour + time.Second, opSnapshot(running, 0, nil, "", cm, web)},
		{time.Hour + 3*time.Second, opSnapshot(running, 0, nil, "", cm, web, svc)},
		{time.Hour + 3*time.Second + 100*time.Millisecond, opSnapshot(done, 0, ptr(at(time.Hour+3*time.Second)), "", cm, web, svc)},
	} {
		st.app.Status.OperationState.StartedAt.Time = at(time.Hour)
		st.app.Status.Resources = append(st.app.Status.Resources, v1alpha1.ResourceStatus{Kind: "Service", Name: "svc", SyncWave: 4})
		tr.Handle(model.Event{Type: model.Modified, Time: at(st.at), App: st.app})
	}
	tr.mu.Lock()
	n, min := len(tr.gaps.last), tr.gaps.min
	tr.mu.Unlock()
	// One gap per operation: web's after cm's (svc is the last wave, Argo
	// CD does not wait before writing it).
	if n != minWaveGaps || min != 2*time.Second {
		t.Errorf("gaps %d, shortest %v; want %d and 2s", n, min, minWaveGaps)
	}
}

// Argo CD may start an operation before it compared the app (a sync asked
// for right after the app was created): the waves come from the resource
// list it writes later, not from the empty one.
func TestWavesFromResourcesListedLate(t *testing.T) {
	cm := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSynced, "created", "")
	late := result("Sync", "ConfigMap", "late", synccommon.ResultCodeSynced, "created", "")
	running, done := synccommon.OperationRunning, synccommon.OperationSucceeded
	unlisted := func(a *v1alpha1.Application) *v1alpha1.Application {
		a.Status.Resources = nil
		return a
	}
	listed := func(a *v1alpha1.Application) *v1alpha1.Application {
		a.Status.Resources = []v1alpha1.ResourceStatus{{Kind: "ConfigMap", Name: "cm"}, {Kind: "ConfigMap", Name: "late", SyncWave: 1}}
		return a
	}
	ops := handOn(
		step{0, unlisted(opSnapshot(running, 0, nil, ""))},
		step{time.Second, listed(opSnapshot(running, 0, nil, ""))},
		step{3 * time.Second, listed(opSnapshot(running, 0, nil, "", cm))},
		step{4 * time.Second, listed(opSnapshot(running, 0, nil, "", cm, late))},
		step{4100 * time.Millisecond, listed(opSnapshot(done, 0, ptr(at(4*time.Second)), "", cm, late))},
	)
	if len(ops) != 1 || len(ops[0].Waves) != 2 || ops[0].Waves[1].Wave != 1 {
		t.Fatalf("got %+v, want one operation with waves 0 and 1", ops)
	}
}

// A failed operation's last wave that applied was followed by Argo CD's
// delay when more waves were to come (here the app lists wave 2): it
// began the delay before it was seen, as any such wave.
func TestFailedOperationLastWaveDatedBack(t *testing.T) {
	cm := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSynced, "created", "")
	running, failed := synccommon.OperationRunning, synccommon.OperationFailed
	ops := handOn(
		step{0, opSnapshot(running, 0, nil, "")},
		step{3 * time.Second, opSnapshot(running, 0, nil, "", cm)},
		step{5 * time.Second, opSnapshot(failed, 0, ptr(at(5*time.Second)), "one or more synchronization tasks completed unsuccessfully", cm)},
	)
	if len(ops) != 1 || len(ops[0].Waves) != 1 {
		t.Fatalf("got %+v, want one operation with one wave", ops)
	}
	if w := ops[0].Waves[0]; !w.Start.Equal(at(time.Second)) {
		t.Errorf("wave 0 of the failed operation starts at %v, want 1 s: seen at 3 s, less the 2 s delay Argo CD waited before wave 2", w.Start.Sub(t0))
	}
}

// Review findings on retries, each from what Argo CD writes.
func TestRetryEdgeCases(t *testing.T) {
	running, failed := synccommon.OperationRunning, synccommon.OperationFailed
	const retrying = "... Retrying attempt #1"
	t.Run("results updated after first seen are carried as updated", func(t *testing.T) {
		// A PreSync hook first seen Running, then Failed: the retry
		// starts with the Failed result, which is the old attempt's.
		hookRunning := result("PreSync", "Job", "migrate", synccommon.ResultCodeSynced, "job created", "PreSync")
		hookRunning.HookPhase = running
		hookFailed := result("PreSync", "Job", "migrate", synccommon.ResultCodeSynced, "Job has reached the backoff limit", "PreSync")
		hookFailed.HookPhase = failed
		cm := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSynced, "created", "")
		ops := handOn(
			step{0, opSnapshot(running, 0, nil, "")},
			step{3 * time.Second, opSnapshot(running, 0, nil, "", hookRunning)},
			step{6 * time.Second, opSnapshot(running, 0, nil, "", hookFailed)},
			step{6500 * time.Millisecond, opSnapshot(running, 1, ptr(at(6*time.Second)), retrying, hookFailed)},
			step{16 * time.Second, opSnapshot(running, 1, nil, retrying, hookFailed)},
			step{19 * time.Second, opSnapshot(running, 1, nil, "", hookRunning)},
			step{22 * time.Second, opSnapshot(running, 1, nil, "", hookRunning, cm)},
			step{22500 * time.Millisecond, opSnapshot(synccommon.OperationSucceeded, 1, ptr(at(22*time.Second)), "", hookRunning, cm)},
		)
		if len(ops) != 1 || len(ops[0].Waves) != 3 {
			t.Fatalf("got %+v, want one operation with 3 waves", ops)
		}
		if w := ops[0].Waves[1]; w.Attempt != 1 || !w.Start.Equal(at(17*time.Second)) {
			t.Errorf("attempt 1's hook wave: attempt %d starts %v, want 1 and 17 s (seen 19 s less the delay)", w.Attempt, w.Start.Sub(t0))
		}
		if r := ops[0].Waves[0].Resources; len(r) != 1 || r[0].HookPhase != "Failed" {
			t.Errorf("attempt 0's hook: %+v, want its last state, Failed", r)
		}
	})
	t.Run("terminated during the backoff makes no attempt", func(t *testing.T) {
		bad := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSyncFailed, "invalid", "")
		term := opSnapshot(synccommon.OperationTerminating, 1, ptr(at(2*time.Second)), retrying, bad)
		end := opSnapshot(failed, 1, ptr(at(2*time.Second)), "Operation terminated", bad)
		ops := handOn(
			step{0, opSnapshot(running, 0, nil, "")},
			step{2 * time.Second, opSnapshot(running, 1, ptr(at(2*time.Second)), retrying, bad)},
			step{4 * time.Second, term},
			step{5 * time.Second, end},
		)
		if len(ops) != 1 || len(ops[0].Attempts) != 0 || len(ops[0].Waves) != 1 || ops[0].Result != "Terminated" {
			t.Fatalf("got %+v, want one terminated operation, one attempt (no attempt spans), one wave", ops)
		}
	})
	t.Run("first seen in a backoff", func(t *testing.T) {
		bad := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSyncFailed, "invalid", "")
		good := result("Sync", "ConfigMap", "cm", synccommon.ResultCodeSynced, "configured", "")
		ops := handOn(
			step{2 * time.Second, opSnapshot(running, 1, ptr(at(time.Second)), retrying, bad)},
			step{6 * time.Second, opSnapshot(running, 1, nil, retrying, bad)},
			step{8 * time.Second, opSnapshot(running, 1, nil, "", good)},
			step{8500 * time.Millisecond, opSnapshot(synccommon.OperationSucceeded, 1, ptr(at(8*time.Second)), "", good)},
		)
		if len(ops) != 1 || len(ops[0].Waves) != 1 || ops[0].Waves[0].Attempt != 1 {
			t.Fatalf("got %+v, want the watched attempt 1 with its wave", ops)
		}
	})
}

// Argo CD lists the last sync's live hooks as to prune (Hook and
// RequiresPruning); they take no part in the prune order.
func TestLiveHooksAreNotPruned(t *testing.T) {
	live := func(kind, _, name string) (*model.Workload, bool) {
		waves := map[string]int64{"old-a": 1, "old-b": 5, "leftover-hook": -1}
		w, ok := waves[name]
		return &model.Workload{Kind: kind, Name: name, SyncWave: w}, ok
	}
	a := newApp(func(a *v1alpha1.Application) {
		a.Status.Resources = []v1alpha1.ResourceStatus{
			{Group: "batch", Kind: "Job", Name: "old-a", RequiresPruning: true},
			{Group: "batch", Kind: "Job", Name: "old-b", RequiresPruning: true},
			{Group: "batch", Kind: "Job", Name: "leftover-hook", RequiresPruning: true, Hook: true},
			{Kind: "Pod", Name: "unseen-hook", RequiresPruning: true, Hook: true},
		}
	})
	_, prune := resourceWaves(a, live)
	if got := prune[resultKey{"", "batch", "Job", "", "old-b"}]; got != 1 {
		t.Errorf("old-b pruned in wave %s, want 1 (reverse of 1 and 5)", model.WaveLabel(got))
	}
	if _, ok := prune[resultKey{"", "batch", "Job", "", "leftover-hook"}]; ok {
		t.Error("a live hook is in the prune order")
	}
}
