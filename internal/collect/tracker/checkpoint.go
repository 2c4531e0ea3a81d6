package tracker

import (
	"cmp"
	"slices"
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Checkpoint is what the tracker carries over a restart (kept by package
// checkpoint in a ConfigMap of crowsnest's own):
//
//   - Watermark: every operation that finished before it was counted. A
//     tracker restored from it counts the operations that finished since,
//     which Argo CD's history (successful syncs) and operation state (the
//     last operation) still show: those that finished while crowsnest was
//     down get their counts, events and CloudEvents, each once. It is the
//     time of the last event handled, not the clock: a tracker that saw
//     nothing (its watch broken) moves it no further.
//   - Recent: the operations counted whose finish (Argo CD's whole
//     seconds) is not before the watermark's second: not counted again.
//     They are told by their start and finish seconds, not by their rank
//     in the start second: the history's rank of an operation (among
//     history entries) differs from the operation state's (among all
//     operations) when a selective or failed sync, which Argo CD writes
//     no history entry for, started in the same second.
//   - Deployments: the apps whose last deployment may still fail (within
//     the failure window) or whose failed change is still open: their
//     failure windows and onsets survive.
//   - Previous: what the apps whose sync history cannot show it
//     (revisionHistoryLimit 0 or 1) last deployed, so that their first
//     sync after the restart is compared with it, not taken for a
//     deployment with no previous revision.
type Checkpoint struct {
	Watermark   time.Time                       `json:"watermark"`
	Recent      []CountedOperation              `json:"recent,omitempty"`
	Deployments map[string]DeploymentCheckpoint `json:"deployments,omitempty"`
	Previous    map[string]PreviousRuns         `json:"previous,omitempty"`
}

// RunsCheckpoint is what a deployment made an app run: its revisions and
// source digests.
type RunsCheckpoint struct {
	Runs    string                 `json:"runs"`
	Source  v1alpha1.SourceDigest  `json:"source,omitzero"`
	Sources v1alpha1.SourceDigests `json:"sources,omitzero"`
}

func checkpointOf(r runs) RunsCheckpoint {
	return RunsCheckpoint{Runs: r.revs, Source: r.source, Sources: r.sources}
}

func (c RunsCheckpoint) runs() runs {
	return runs{revs: c.Runs, source: c.Source, sources: c.Sources}
}

// PreviousRuns is what an app last deployed.
type PreviousRuns struct {
	UID string `json:"uid"`
	RunsCheckpoint
}

// CountedOperation identifies an operation counted: its app (namespace/
// name, and UID), its start and its finish (Unix seconds).
type CountedOperation struct {
	App      string `json:"app"`
	UID      string `json:"uid"`
	Start    int64  `json:"start"`
	Finished int64  `json:"finished"`
}

// DeploymentCheckpoint is an app's last deployment and the state of its
// failure window.
type DeploymentCheckpoint struct {
	UID               string    `json:"uid"`
	Result            string    `json:"result"`
	Revision          string    `json:"revision,omitempty"`
	Revisions         []string  `json:"revisions,omitempty"`
	PreviousRevision  string    `json:"previousRevision,omitempty"`
	PreviousRevisions []string  `json:"previousRevisions,omitempty"`
	SourceChanged     bool      `json:"sourceChanged,omitempty"`
	Initiator         string    `json:"initiator,omitempty"`
	Started           time.Time `json:"started"`
	Finished          time.Time `json:"finished"`
	TraceID           string    `json:"traceID"`
	// What it deployed.
	RunsCheckpoint
	// Failed: it counted as a failed change; Healthy: its first Healthy
	// was noticed.
	Failed  bool `json:"failed,omitempty"`
	Healthy bool `json:"healthy,omitempty"`
	// Onset of the open failed change, zero if none.
	Onset time.Time `json:"onset,omitzero"`
	// The app's health as last seen, and its Degraded spell.
	Health          string    `json:"health,omitempty"`
	Settled         string    `json:"settled,omitempty"`
	DegradedAt      time.Time `json:"degradedAt,omitzero"`
	DegradedCounted bool      `json:"degradedCounted,omitempty"`
}

// MaxCheckpointDeployments bounds the apps a checkpoint keeps the failure
// window of (the newest deployments first), and those it keeps the previous
// deployment of, so that it fits a ConfigMap (1 MiB) at any fleet size:
// about 400 bytes each.
const MaxCheckpointDeployments = 2000

// recentOp is an operation counted, remembered for the checkpoint while
// its finish is near the watermark.
type recentOp struct {
	app, uid        string
	start, finished int64
}

// Checkpoint returns what a restarted tracker needs (see Checkpoint), and
// how many apps' failure windows or previous deployments did not fit.
func (t *Tracker) Checkpoint() (Checkpoint, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := Checkpoint{Watermark: t.lastEvent}
	if c.Watermark.IsZero() {
		c.Watermark = t.since // nothing handled yet: what was restored
	}
	keep := t.recent[:0]
	for _, r := range t.recent {
		if r.finished >= c.Watermark.Unix() {
			keep = append(keep, r)
			c.Recent = append(c.Recent, CountedOperation{App: r.app, UID: r.uid, Start: r.start, Finished: r.finished})
		}
	}
	t.recent = keep
	type open struct {
		key string
		cp  DeploymentCheckpoint
	}
	var all []open
	cut := 0
	for key, st := range t.apps {
		ds := &st.deploy
		if r := ds.lastRevisions; r.revs != "" && len(st.app.Status.History) < 2 {
			// The history cannot show what it ran before its next sync.
			if len(c.Previous) >= MaxCheckpointDeployments {
				cut++
			} else {
				if c.Previous == nil {
					c.Previous = map[string]PreviousRuns{}
				}
				c.Previous[key] = PreviousRuns{UID: string(st.uid), RunsCheckpoint: checkpointOf(r)}
			}
		}
		d := ds.last
		if d == nil || ds.onset.IsZero() && c.Watermark.Sub(d.FinishedAt) > t.failureWindow {
			continue
		}
		all = append(all, open{key, DeploymentCheckpoint{
			UID: string(st.uid), Result: d.Result, Revision: d.Revision, Revisions: d.Revisions,
			PreviousRevision: d.PreviousRevision, PreviousRevisions: d.PreviousRevisions,
			SourceChanged: d.SourceChanged, Initiator: d.Initiator, Started: d.StartedAt, Finished: d.FinishedAt, TraceID: d.TraceID,
			RunsCheckpoint: checkpointOf(ds.lastRuns),
			Failed:         ds.lastFailed, Healthy: ds.lastHealthy, Onset: ds.onset,
			Health: string(ds.health), Settled: string(ds.settled), DegradedAt: ds.degradedAt, DegradedCounted: ds.degradedCounted,
		}})
	}
	slices.SortFunc(all, func(a, b open) int { return b.cp.Finished.Compare(a.cp.Finished) })
	if len(all) > MaxCheckpointDeployments {
		cut += len(all) - MaxCheckpointDeployments
		all = all[:MaxCheckpointDeployments]
	}
	if len(all) > 0 {
		c.Deployments = make(map[string]DeploymentCheckpoint, len(all))
		for _, o := range all {
			c.Deployments[o.key] = o.cp
		}
	}
	return c, cut
}

// Restore makes the tracker go on from a checkpoint: it counts the
// operations that finished since its watermark (except those it lists as
// counted) and keeps the failure windows it holds, for apps of the same
// UID. Call it before the first event.
func (t *Tracker) Restore(c Checkpoint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.Watermark.IsZero() {
		return
	}
	t.since = c.Watermark
	t.restored = make(map[string]*restoredApp, len(c.Recent)+len(c.Deployments))
	get := func(key string) *restoredApp {
		r := t.restored[key]
		if r == nil {
			r = &restoredApp{}
			t.restored[key] = r
		}
		return r
	}
	for _, op := range c.Recent {
		r := get(op.App)
		r.counted = append(r.counted, CountedOperation{UID: op.UID, Start: op.Start, Finished: op.Finished})
	}
	for key, d := range c.Deployments {
		get(key).deploy = &d
	}
	for key, p := range c.Previous {
		get(key).previous = &p
	}
}

// restoredApp is what a checkpoint holds of one app, until its first event.
type restoredApp struct {
	counted  []CountedOperation
	deploy   *DeploymentCheckpoint
	previous *PreviousRuns
}

// restore applies what the checkpoint held of the app st (new, keyed key)
// if it is the same object (UID).
func (t *Tracker) restore(key string, st *appState, app *v1alpha1.Application) {
	r, ok := t.restored[key]
	if !ok {
		return
	}
	delete(t.restored, key)
	uid := string(st.uid)
	for _, op := range r.counted {
		if op.UID == uid {
			st.restoredOps = append(st.restoredOps, restoredOp{start: op.Start, finished: op.Finished})
		}
	}
	ds := &st.deploy
	if p := r.previous; p != nil && p.UID == uid {
		ds.lastRevisions = p.runs()
	}
	d := r.deploy
	if d == nil || d.UID != uid {
		return
	}
	ds.last = &model.Deployment{
		UID: uid, Namespace: app.Namespace, Name: app.Name, Project: app.Spec.Project, Env: st.env, Dest: st.dest,
		Result: d.Result, Revision: d.Revision, Revisions: d.Revisions, PreviousRevision: d.PreviousRevision, PreviousRevisions: d.PreviousRevisions,
		SourceChanged: d.SourceChanged, Initiator: d.Initiator, StartedAt: d.Started, FinishedAt: d.Finished, TraceID: d.TraceID,
	}
	ds.lastRuns = d.runs()
	ds.lastRevisions = ds.lastRuns
	ds.lastFailed, ds.lastHealthy, ds.onset = d.Failed, d.Healthy, d.Onset
	ds.health, ds.settled = health.HealthStatusCode(d.Health), health.HealthStatusCode(d.Settled)
	ds.degradedAt, ds.degradedCounted = d.DegradedAt, d.DegradedCounted
}

// restoredOp is an operation counted before a restart: its start and
// finish, Unix seconds.
type restoredOp struct{ start, finished int64 }

// countedBefore reports whether op was counted before the restart (the
// checkpoint listed it), and forgets that once said: each listed
// operation matches one operation.
func (st *appState) countedBefore(op finishedOp) bool {
	i := slices.Index(st.restoredOps, restoredOp{start: op.key.start, finished: op.finished.Unix()})
	if i < 0 {
		return false
	}
	st.restoredOps = slices.Delete(st.restoredOps, i, i+1)
	return true
}

// noteCounted remembers a counted operation for the checkpoint.
func (t *Tracker) noteCounted(key string, st *appState, op finishedOp) {
	t.recent = append(t.recent, recentOp{app: key, uid: string(st.uid), start: op.key.start, finished: op.finished.Unix()})
	if len(t.recent) > 4096 {
		// Only those near the watermark matter; keep the newest.
		slices.SortFunc(t.recent, func(a, b recentOp) int { return cmp.Compare(b.finished, a.finished) })
		t.recent = t.recent[:1024]
	}
}
