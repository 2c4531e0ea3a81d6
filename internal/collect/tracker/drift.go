package tracker

import (
	"slices"
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// Live drift and awaiting sync. Argo CD says an app is OutOfSync when its
// live state differs from its target: the revisions and sources it compared
// with (status.sync.revision(s), status.sync.comparedTo). That is true for
// two reasons an on-call engineer treats very differently:
//
//   - live drift: the live state left what was last synced (a hand edit, a
//     deleted resource, a controller fighting Argo CD). In prod it pages.
//   - awaiting sync: the target moved away from what was last synced (a
//     merge, a changed spec source — Image Updater, `argocd app set -p` —
//     or Git ahead of a rollback) and the app waits for its sync. With prod
//     synced by hand after approval, that is a release waiting, not drift.
//
// What was last synced is the newest entry of status.history (revisions and
// source digests; Argo CD records every successful full sync there,
// rollbacks included), else, with an empty history (revisionHistoryLimit
// 0, or never synced), the last operation's sync result if it succeeded.
//
// While the target is what was last synced, every OutOfSync resource is
// live drift. While it is not, the resources OutOfSync in the first
// comparison against the new target are what the release changes (the
// baseline); a resource OutOfSync later that is not in the baseline is
// live drift, and so is one that was live drift before the target moved.
// A hand edit of a resource the release changes too is not told apart: it
// shows as awaiting sync until the sync, which overwrites it.
//
// A comparison older than the last sync (Argo CD writes the sync's end,
// then compares again) judges nothing: the app keeps what was judged
// before until status.reconciledAt is past the sync's end.

// resourceKey identifies a managed resource.
type resourceKey struct{ group, kind, namespace, name string }

// resourceSet is a set of managed resources.
type resourceSet map[resourceKey]struct{}

// syncPoint is what an app is compared with, or was last synced to: its
// revisions and source digests. It points into an Application, which is
// never modified once handed to the tracker.
type syncPoint struct {
	revision  string
	revisions []string
	source    v1alpha1.SourceDigest
	sources   v1alpha1.SourceDigests
	known     bool // false: no sync is known
}

func (p syncPoint) equal(q syncPoint) bool {
	return p.known == q.known && p.revision == q.revision && slices.Equal(p.revisions, q.revisions) &&
		p.source == q.source && p.sources == q.sources
}

// targetOf is what Argo CD compared app with. An Argo CD that writes no
// comparedTo (none does since v1.2) is taken at its revisions alone.
func targetOf(app *v1alpha1.Application) syncPoint {
	s := &app.Status.Sync
	return syncPoint{revision: s.Revision, revisions: s.Revisions, source: s.ComparedTo.Source, sources: s.ComparedTo.Sources, known: true}
}

// lastSyncedOf is what app was last synced to, and when that sync ended.
func lastSyncedOf(app *v1alpha1.Application) (syncPoint, time.Time) {
	if h := newestHistory(app.Status.History); h != nil {
		return historyPoint(h), h.DeployedAt.Time
	}
	op := app.Status.OperationState
	if op == nil || op.SyncResult == nil || !op.Phase.Successful() || dryRun(&op.Operation.Sync) ||
		op.Operation.Sync != nil && len(op.Operation.Sync.Resources) > 0 {
		return syncPoint{}, time.Time{}
	}
	var finished time.Time
	if op.FinishedAt != nil {
		finished = op.FinishedAt.Time
	}
	r := op.SyncResult
	return syncPoint{revision: r.Revision, revisions: r.Revisions, source: r.Source, sources: r.Sources, known: true}, finished
}

// historyPoint is what the sync of history entry h synced to.
func historyPoint(h *v1alpha1.RevisionHistory) syncPoint {
	return syncPoint{revision: h.Revision, revisions: h.Revisions, source: h.Source, sources: h.Sources, known: true}
}

// newestHistory returns the history entry of the highest ID, nil if none.
func newestHistory(h v1alpha1.RevisionHistories) *v1alpha1.RevisionHistory {
	var newest *v1alpha1.RevisionHistory
	for i := range h {
		if newest == nil || h[i].ID > newest.ID {
			newest = &h[i]
		}
	}
	return newest
}

// outOfSyncResources returns the app's OutOfSync resources, nil if none.
func outOfSyncResources(app *v1alpha1.Application) resourceSet {
	var out resourceSet
	for r := range app.Status.AllResources() {
		if r.Status != v1alpha1.SyncStatusCodeOutOfSync {
			continue
		}
		if out == nil {
			out = resourceSet{}
		}
		out[resourceKey{r.Group, r.Kind, r.Namespace, r.Name}] = struct{}{}
	}
	return out
}

// driftState is what the tracker remembers to tell an OutOfSync app's
// drift apart; a Synced app has none.
type driftState struct {
	// target and synced are the comparison target and the last sync the
	// baseline belongs to (valid once judged).
	target, synced syncPoint
	judged         bool
	// baseline holds the resources OutOfSync in the first comparison
	// against target after synced; carried those that were live drift
	// when the target moved; live those judged live drift now.
	baseline, carried, live resourceSet
	// liveSince and awaitingSince are when each began; zero while none.
	liveSince, awaitingSince time.Time
}

// observeDriftKind judges the app's drift as live drift, awaiting sync,
// both or neither. Unknown (a failed comparison) keeps the last judgement,
// as it keeps the drift clock; Synced forgets it (the state of an OutOfSync
// app is new at its first OutOfSync comparison, which is the baseline).
func (t *Tracker) observeDriftKind(st *appState, now time.Time) {
	app := st.app
	switch app.Status.Sync.Status {
	case v1alpha1.SyncStatusCodeSynced:
		st.drift = nil
		return
	case v1alpha1.SyncStatusCodeOutOfSync:
	default:
		return
	}
	if st.drift == nil {
		st.drift = &driftState{}
	}
	d := st.drift
	target := targetOf(app)
	synced, syncedAt := lastSyncedOf(app)
	if rec := app.Status.ReconciledAt; rec != nil && !rec.After(syncedAt) {
		return // compared before the last sync ended: judge nothing yet
	}
	current := outOfSyncResources(app)
	if !d.judged || !target.equal(d.target) || !synced.equal(d.synced) {
		// A new comparison target, or a sync since the last judgement:
		// what was live drift stays so while only the target moved (a
		// sync re-applied everything, so after one nothing is carried).
		if d.judged && synced.equal(d.synced) {
			d.carried = d.live
		} else {
			d.carried = nil
		}
		d.target, d.synced, d.judged = target, synced, true
		d.baseline = current
	}
	var live resourceSet
	awaiting := false
	switch {
	case synced.known && target.equal(synced):
		live = current
		if len(current) == 0 {
			// OutOfSync with no resource to show for it: Argo CD saw
			// the live state differ from what was synced.
			live = resourceSet{{}: {}}
		}
	default:
		for r := range current {
			_, released := d.baseline[r]
			_, carried := d.carried[r]
			if !released || carried {
				if live == nil {
					live = resourceSet{}
				}
				live[r] = struct{}{}
			} else {
				awaiting = true
			}
		}
		if len(current) == 0 {
			awaiting = true
		}
	}
	d.live = live
	d.liveSince = since(d.liveSince, len(live) > 0, now)
	d.awaitingSince = since(d.awaitingSince, awaiting, now)
}

// since returns when a condition that holds (on) began: began if it held
// already, else now; zero if it does not hold.
func since(began time.Time, on bool, now time.Time) time.Time {
	switch {
	case !on:
		return time.Time{}
	case began.IsZero():
		return now
	}
	return began
}
