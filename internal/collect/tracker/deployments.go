package tracker

import (
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/health"
	synccommon "github.com/crowsnest/crowsnest/internal/argocd/synccommon"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// DeploymentSubscriber receives what the tracker decides about deployments
// (see model.Deployment), in order. It must not block.
type DeploymentSubscriber interface {
	Deployment(n *model.DeploymentNotice)
}

// DefaultFailureWindow is how long after a deployment an app turning
// Degraded makes it a failed change.
const DefaultFailureWindow = time.Hour

// SetFailureWindow sets how long after a deployment an app turning Degraded
// makes the deployment a failed change. Call it before the first event.
func (t *Tracker) SetFailureWindow(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failureWindow = d
}

// deployState is what the tracker remembers of an app's deployments. It
// lives in memory: after a restart the revisions deployed before come from
// the sync history, but a failure window or a failure still open then is
// forgotten.
type deployState struct {
	counts   [model.NumDeploymentResults]uint64
	failures [model.NumFailureReasons]uint64
	// last is the last successful deployment (or rollback) crowsnest saw
	// finish, lastRuns what it deployed; lastFailed says it was counted as
	// a failed change, lastHealthy that its first Healthy was noticed.
	last                    *model.Deployment
	lastRuns                runs
	lastFailed, lastHealthy bool
	// lastRevisions are the revisions (and sources) last deployed, for
	// apps whose sync history does not show them.
	lastRevisions runs
	// failedRevisions are the revisions (and sources) of the last failed
	// deployment: trying them again is no new deployment.
	failedRevisions runs
	// syncedRevisions are the revisions (and sources) Argo CD last showed
	// the app Synced to while no operation ran: their manifests already
	// ran then.
	syncedRevisions runs
	// health is the app's last health; degradedAt when it last turned
	// Degraded, degradedCounted that this Degraded spell already failed a
	// deployment (a deployment that ends while the app is still Degraded
	// from the one before did not break it).
	health          health.HealthStatusCode
	degradedAt      time.Time
	degradedCounted bool
	// degradedOwner is the start of the newer operation (to other
	// revisions or sources than the last deployment's) that had started
	// when this Degraded spell began, once seen: the spell is that
	// operation's for good, whichever operation starts next (a fix after
	// a failed sync must not hand the spell back to the deployment before).
	degradedOwner time.Time
	// settled is the app's last Healthy or Suspended health seen while no
	// failed change was open: Suspended is how an app with a suspended
	// CronJob (or a paused workload) is well.
	settled health.HealthStatusCode
	// onset is when the open failed change began (zero: none is open).
	onset time.Time
	// target is what Argo CD last compared the app with (status.sync),
	// targetSince when crowsnest first saw that comparison (zero: at its
	// first look at the app); prevTarget and prevTargetSince are the
	// target before (a sync may end after the target moved on).
	target, prevTarget           runs
	targetSince, prevTargetSince time.Time
	// change is the value of the change annotations last seen (commit,
	// time); changeNew that it was set after crowsnest's first look at
	// the app and no successful deployment has used it yet.
	change    [2]string
	changeNew bool
	// partial: a selective sync of other revisions or sources than the
	// last deployment finished since it; the full sync after it is the
	// deployment, even if the partial left it nothing to change.
	partial bool
	// awaitTarget is the target the app was last seen awaiting a sync to
	// (live drift aside), awaitSince since when (drift.go's awaiting
	// sync); zero when it awaits none.
	awaitTarget runs
	awaitSince  time.Time
	// newerStart is the start of the newest operation to other revisions
	// or sources than the last deployment's that started after it (one
	// running, failed or terminated): a Degraded spell that began after
	// it belongs to that operation, not to the last deployment.
	newerStart time.Time
}

// runs is what a sync made an app run: its revisions and the digests of
// its sources (SourceDigest: Helm parameters and values, kustomize images,
// plugin env, directory settings...), zero where Argo CD wrote none. A
// change of either is a deployment: Image Updater's argocd write-back,
// `argocd app set -p` and Kargo's argocd-update change the source and
// sync the same revision.
type runs struct {
	revs    string
	source  v1alpha1.SourceDigest
	sources v1alpha1.SourceDigests
}

// same reports whether a and b run the same: the same revisions, and the
// same sources where both know them (an Argo CD, or a record, without
// them is judged by its revisions).
func (a runs) same(b runs) bool {
	return a.revs == b.revs && a.sameSources(b)
}

// sameSources reports whether a and b run the same sources, as far as
// both know them.
func (a runs) sameSources(b runs) bool {
	return (a.source.IsZero() || b.source.IsZero() || a.source == b.source) &&
		(a.sources.IsZero() || b.sources.IsZero() || a.sources == b.sources)
}

// runs is what p runs.
func (p syncPoint) runs() runs {
	return runs{revs: model.JoinRevisions(p.revision, p.revisions), source: p.source, sources: p.sources}
}

// opRuns is what op deployed: its revisions, and its sources from its sync
// result, else from its own history entry (the one it started).
func opRuns(op finishedOp, history v1alpha1.RevisionHistories) runs {
	if op.state != nil && op.state.SyncResult != nil {
		return stateRuns(op.state) // op.revision(s) are the state's
	}
	r := runs{revs: model.JoinRevisions(op.revision, op.revisions)}
	for i := len(history) - 1; i >= 0; i-- {
		h := &history[i]
		if h.DeployStartedAt != nil && h.DeployStartedAt.Unix() == op.started.Unix() {
			r.source, r.sources = h.Source, h.Sources
			break
		}
	}
	return r
}

// stateRuns is what the operation state op syncs: its revisions and the
// sources of its sync result (which the controller writes when the
// operation starts; zero while it has none).
func stateRuns(op *v1alpha1.OperationState) runs {
	r := runs{revs: model.JoinRevisions(syncRevision(op), syncRevisions(op))}
	if op.SyncResult != nil {
		r.source, r.sources = op.SyncResult.Source, op.SyncResult.Sources
	}
	return r
}

// deployment decides whether the counted operation o is a deployment and
// what it did: it sets o.Deployment, counts it, and notes the notices and
// facts it implies. A dry run never comes here.
func (t *Tracker) deployment(st *appState, op finishedOp, o *model.Operation, facts factLog, out *outbox) {
	ds := &st.deploy
	cur := opRuns(op, st.app.Status.History)
	if cur.revs == "" || op.result == model.ResultTerminated {
		return // nothing to compare, or a person stopped it
	}
	if parentOnly(st.app) {
		// An app-of-apps parent ships nothing itself: a change it syncs
		// reaches each child, whose own sync is the deployment (in the
		// same env, the parent's would count the change twice).
		return
	}
	prevRuns, prev, prevRevs, found, rollback := previousSync(st.app.Status.History, op.started.Unix(), cur)
	if !found {
		prevRuns = ds.lastRevisions
		prev, prevRevs = prevRuns.revs, nil
	}
	if partialSync(op.state) {
		// A selective sync (`argocd app sync --resource`, the UI's
		// selection) is a step of a deployment, not one: Argo CD writes
		// no history for it. The full sync after it is the deployment.
		if !cur.same(prevRuns) {
			ds.partial = true
			ds.newerStart = later(ds.newerStart, op.started)
		}
		return
	}
	afterPartial := ds.partial
	if op.result == model.ResultSucceeded {
		ds.partial = false
	}
	if cur.same(prevRuns) {
		ds.notNewer(op)
		return // drift repair, or a re-sync of what runs
	}
	if selfHeal(op.state) || !afterPartial && (cur.same(ds.syncedRevisions) || op.result == model.ResultSucceeded && changedNothing(op.state)) {
		// Drift repair on a newer commit that changed nothing of the app:
		// Argo CD had shown the app Synced to these revisions before the
		// operation (such a commit leaves the app Synced without a sync,
		// and the next repair of drift may be a full auto-sync to it); or
		// the controller started a self-heal (its auto-sync found the sync
		// "already attempted"); or every resource was applied unchanged.
		// What runs is what ran. (After a selective sync of the change,
		// the app may be Synced to it and the full sync change nothing:
		// that full sync is the deployment all the same.)
		ds.lastRevisions = cur
		ds.notNewer(op)
		return
	}
	d := &model.Deployment{
		UID: o.UID, Namespace: o.Namespace, Name: o.Name, Project: o.Project, Env: o.Env, Dest: o.Dest,
		Revision: op.revision, Revisions: op.revisions, PreviousRevision: prev, PreviousRevisions: prevRevs,
		Changed:       changedSources(&st.app.Spec, op.revision, op.revisions, prev, prevRevs),
		SourceChanged: !cur.sameSources(prevRuns),
		Initiator:     op.initiator, StartedAt: op.started, FinishedAt: op.finished, TraceID: o.TraceID(),
		TargetSeenAt: ds.targetSeenAt(cur),
	}
	if st.app.Spec.SourceHydrator != nil && len(d.Changed) > 0 {
		d.Changed, d.DrySHA, d.LeadUnknown = hydratedChange(st.app, op.revision)
	}

	if op.result != model.ResultSucceeded {
		// A Degraded spell from now on is this change's, however it is
		// counted.
		ds.newerStart = later(ds.newerStart, op.started)
		if cur.same(ds.failedRevisions) {
			return // the same change tried again: one failed deployment
		}
		ds.failedRevisions = cur
		d.Result = model.DeploymentFailed
		t.countDeployment(st, d, o, out)
		t.changeFailed(st, d, model.FailureSyncFailed, op.finished, op.finished, facts, out)
		return
	}
	d.Result = model.DeploymentSucceeded
	if rollback {
		d.Result = model.DeploymentRolledBack
		if ds.last != nil && !ds.lastFailed && ds.lastRuns.same(prevRuns) {
			// The rollback undoes the deployment before it.
			t.changeFailed(st, ds.last, model.FailureRolledBack, ds.last.FinishedAt, op.finished, facts, out)
		}
	}
	if ds.changeNew && !rollback {
		// The change CI named is this deployment's.
		ds.changeNew = false
		t.namedChange(st, d)
	}
	if !rollback && !ds.awaitSince.IsZero() && op.initiator != "automated" && cur.same(ds.awaitTarget) && !ds.awaitSince.Truncate(time.Second).After(op.started) {
		// A person synced the release the app awaited: prod's wait for
		// approval.
		d.AwaitedSince = ds.awaitSince
	}
	ds.failedRevisions = runs{}
	ds.lastRevisions = cur
	ds.last, ds.lastRuns, ds.lastFailed, ds.lastHealthy = d, cur, false, false
	ds.newerStart = time.Time{}
	t.countDeployment(st, d, o, out)
}

// notNewer forgets that op, seen running, was a newer change than the last
// deployment: it changed nothing of what runs.
func (ds *deployState) notNewer(op finishedOp) {
	if !ds.newerStart.After(op.started) {
		ds.newerStart = time.Time{}
	}
}

// parentOnly reports whether every resource the app manages is an Argo CD
// object (Applications, AppProjects, ApplicationSets), at least one of them
// an Application: an app-of-apps parent.
func parentOnly(app *v1alpha1.Application) bool {
	apps := false
	for r := range app.Status.AllResources() {
		if r.Group != argoGroup || r.Kind != "Application" && r.Kind != "AppProject" && r.Kind != "ApplicationSet" {
			return false // a workload (Argo Rollouts share the group), or any other object
		}
		apps = apps || r.Kind == "Application"
	}
	return apps
}

// argoGroup is the API group of Argo CD's objects.
const argoGroup = "argoproj.io"

// hydratedChange is, for an app with a Source Hydrator, the change a
// deployment of hydrated revision rev ships: the dry commit it renders
// (status.sourceHydrator.lastSuccessfulOperation pairs them), in the dry
// source. Its commit is looked up like a deployed revision's, through
// argocd-server's RevisionMetadata, which reads the app's (sync) source's
// repository: that holds the dry commit when the hydrator writes into the
// dry repository (syncSource.repoURL empty or the same). Otherwise, or
// when rev is not the last hydration's, there is no lead time, and why is
// said: the hydrated commit's own date (hydration time) would make it
// seconds.
func hydratedChange(app *v1alpha1.Application, rev string) (changed []model.DeploymentSource, drySHA, unknown string) {
	last := app.Status.SourceHydrator.LastSuccessfulOperation
	if last == nil || last.DrySHA == "" || last.HydratedSHA != rev {
		return nil, "", "the dry commit of the hydrated revision is not known (not the last hydration's)"
	}
	hy := app.Spec.SourceHydrator
	if hy.SyncSource.RepoURL != "" && hy.SyncSource.RepoURL != hy.DrySource.RepoURL {
		return nil, last.DrySHA, "the dry commit is in another repository than the one the app syncs from"
	}
	return []model.DeploymentSource{{Index: 0, RepoURL: hy.DrySource.RepoURL, Revision: last.DrySHA}}, last.DrySHA, ""
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// partialSync reports whether op is a selective sync: of the resources it
// names only.
func partialSync(op *v1alpha1.OperationState) bool {
	return op != nil && op.Operation.Sync != nil && len(op.Operation.Sync.Resources) > 0
}

// observeTarget notes when crowsnest first saw Argo CD compare the app
// with a new target, and the change annotations CI set. At crowsnest's
// first look at the app (first) neither is new: a target already compared
// then has no known time, and annotations set then may name a change that
// shipped before.
func (t *Tracker) observeTarget(st *appState, now time.Time, first bool) {
	ds := &st.deploy
	if cur := targetOf(st.app).runs(); cur.revs != "" && cur != ds.target {
		// (No revision: Argo CD could not compare; the target it had
		// stays until it compares again.)
		since := now
		if first {
			since = time.Time{}
		}
		ds.prevTarget, ds.prevTargetSince = ds.target, ds.targetSince
		ds.target, ds.targetSince = cur, since
	}
	a := st.app.Annotations
	if change := [2]string{a[model.AnnotationChangeCommit], a[model.AnnotationChangeTime]}; change != ds.change {
		ds.change = change
		ds.changeNew = !first && change != [2]string{}
	}
}

// targetSeenAt is when crowsnest first saw Argo CD compare the app with r,
// if r is its current or previous target; zero if unknown.
func (ds *deployState) targetSeenAt(r runs) time.Time {
	switch {
	case r.same(ds.target):
		return ds.targetSince
	case r.same(ds.prevTarget):
		return ds.prevTargetSince
	}
	return time.Time{}
}

// namedChange sets what the change annotations name on d: the commit, in
// the app's first Git source, and the commit time. A time that does not
// parse is logged and not used.
func (t *Tracker) namedChange(st *appState, d *model.Deployment) {
	commit, at := st.deploy.change[0], st.deploy.change[1]
	if commit != "" {
		for i, src := range st.app.Spec.GetSources() {
			if src.Chart == "" && src.RepoURL != "" {
				d.ChangeCommit = &model.DeploymentSource{Index: i, RepoURL: src.RepoURL, Revision: commit}
				break
			}
		}
	}
	if at == "" {
		return
	}
	ts, err := time.Parse(time.RFC3339, at)
	if err != nil {
		t.logger.Warn("the change time annotation is not an RFC 3339 time; the deployment's lead time does not use it",
			"app", model.Key(d.Namespace, d.Name), "annotation", model.AnnotationChangeTime, "value", at, "err", err)
		return
	}
	d.ChangeTime = ts
}

// countDeployment counts d and hands it on.
func (t *Tracker) countDeployment(st *appState, d *model.Deployment, o *model.Operation, out *outbox) {
	for i, r := range model.DeploymentResults() {
		if r == d.Result {
			st.deploy.counts[i]++
		}
	}
	o.Deployment = d
	// What runs changed: the app's being Synced to some revisions before
	// says nothing of them any more (after a rollback, syncing the
	// revisions rolled back from is a deployment again).
	st.deploy.syncedRevisions = runs{}
	out.notices = append(out.notices, &model.DeploymentNotice{Kind: model.NoticeDeployed, Time: d.FinishedAt, Deployment: d})
}

// changeFailed counts d as a failed change for reason, the failure having
// begun at onset (unless one is open already), decided at now.
func (t *Tracker) changeFailed(st *appState, d *model.Deployment, reason string, onset, now time.Time, facts factLog, out *outbox) {
	ds := &st.deploy
	for i, r := range model.FailureReasons() {
		if r == reason {
			ds.failures[i]++
		}
	}
	if d == ds.last {
		ds.lastFailed = true
	}
	if ds.onset.IsZero() {
		ds.onset = onset
	}
	facts.add(model.FactChangeFailed, now, d.TraceID, "reason", reason, "revision", d.RevisionText(), "result", d.Result)
	out.notices = append(out.notices, &model.DeploymentNotice{Kind: model.NoticeChangeFailed, Time: now, Deployment: d, Reason: reason})
}

// observeDeployment follows the app's health after its last deployment: its
// first Healthy, its turning Degraded within the failure window (a failed
// change), and the end of an open failure (recovery): the app well again
// (Healthy, or Suspended if that is how it was well before) after a
// successful operation. Not "Synced and Healthy": an app with a perpetual
// diff is never Synced, a rolled-back one stays OutOfSync (its source still
// points at the change rolled back), and a hand fix restores the service
// too, which is what DORA's time to restore measures.
func (t *Tracker) observeDeployment(st *appState, now time.Time, facts factLog, out *outbox) {
	ds := &st.deploy
	status := &st.app.Status
	// idle: no operation requested or running.
	idle := st.app.Operation == nil && (status.OperationState == nil || status.OperationState.Phase.Completed())
	if status.Sync.Status == v1alpha1.SyncStatusCodeSynced && idle {
		// Only while no operation runs: a running sync may show the app
		// Synced to its new revisions before it ends.
		ds.syncedRevisions = targetOf(st.app).runs()
	}
	switch {
	case st.drift != nil && !st.drift.awaitingSince.IsZero():
		ds.awaitTarget, ds.awaitSince = st.drift.target.runs(), st.drift.awaitingSince
	case st.drift == nil && idle:
		// Synced, and no sync runs that may end what it awaited.
		ds.awaitTarget, ds.awaitSince = runs{}, time.Time{}
	}
	if op := status.OperationState; op != nil && !op.Phase.Completed() && !dryRun(&op.Operation.Sync) {
		// A running operation to other revisions or sources than the
		// last deployment's: what degrades from now on is its doing.
		if r := stateRuns(op); r.revs != "" && !r.same(ds.lastRuns) {
			ds.newerStart = later(ds.newerStart, op.StartedAt.Time)
		}
	}
	h := status.Health.Status
	if h == health.HealthStatusDegraded && ds.health != health.HealthStatusDegraded {
		// When Argo CD saw it turn Degraded (lastTransitionTime, whole
		// seconds), else now: right also when the app turned Degraded
		// before crowsnest looked.
		ds.degradedAt, ds.degradedCounted, ds.degradedOwner = now, false, time.Time{}
		if lt := status.Health.LastTransitionTime; lt != nil && !lt.Time.After(now) {
			ds.degradedAt = lt.Time
		}
	}
	if h == health.HealthStatusDegraded && ds.degradedOwner.IsZero() && !ds.newerStart.IsZero() && !ds.degradedAt.Before(ds.newerStart) {
		ds.degradedOwner = ds.newerStart
	}
	ds.health = h
	d := ds.last
	if d == nil {
		return
	}
	// Healthy counts once Argo CD assessed the app after the deployment
	// finished: the write that completes an operation may still carry
	// the health of before.
	assessed := st.app.Status.ReconciledAt != nil && !st.app.Status.ReconciledAt.Time.Before(d.FinishedAt)
	if h == health.HealthStatusHealthy && !ds.lastHealthy && assessed {
		ds.lastHealthy = true
		facts.add(model.FactDeploymentHealthy, now, d.TraceID, "revision", d.RevisionText(), "after_finish_seconds", max(now.Sub(d.FinishedAt), 0).Seconds())
		out.notices = append(out.notices, &model.DeploymentNotice{Kind: model.NoticeHealthy, Time: now, Deployment: d})
	}
	// A spell that began once a newer operation to another change had
	// started is that operation's: a failed one counted it already, a
	// successful one is the last deployment by the time it ends.
	newer := !ds.degradedOwner.IsZero() && d.StartedAt.Before(ds.degradedOwner)
	if h == health.HealthStatusDegraded && !ds.lastFailed && !ds.degradedCounted && !newer && !ds.degradedAt.Before(d.StartedAt.Truncate(time.Second)) &&
		ds.degradedAt.Sub(d.FinishedAt) <= t.failureWindow {
		ds.degradedCounted = true
		t.changeFailed(st, d, model.FailureDegraded, ds.degradedAt, now, facts, out)
	}
	if ds.onset.IsZero() && (h == health.HealthStatusHealthy || h == health.HealthStatusSuspended) {
		ds.settled = h
	}
	well := h == health.HealthStatusHealthy || h == health.HealthStatusSuspended && ds.settled == health.HealthStatusSuspended
	if !ds.onset.IsZero() && well && st.lastRealPhase == model.ResultSucceeded {
		onset := ds.onset
		ds.onset = time.Time{}
		facts.add(model.FactDeploymentRecovered, now, d.TraceID, "revision", d.RevisionText(), "recovery_seconds", max(now.Sub(onset), 0).Seconds())
		out.notices = append(out.notices, &model.DeploymentNotice{Kind: model.NoticeRecovered, Time: now, Deployment: d, Onset: onset})
	}
}

// previousSync finds, in the app's sync history, the last successful sync
// that started before start (Unix seconds): what ran when the operation
// began. rollback: cur (what the operation deployed) differs from it but
// is what an earlier sync in the history deployed — `argocd app rollback`,
// a sync to an old revision, targetRevision moved back, Kargo promoting
// older freight, a branch reset — unless it is a roll forward: going back
// to what the last rollback undid.
func previousSync(history v1alpha1.RevisionHistories, start int64, cur runs) (prevRuns runs, rev string, revisions []string, found, rollback bool) {
	i := len(history) - 1
	for ; i >= 0; i-- {
		h := &history[i]
		if h.DeployStartedAt != nil && h.DeployStartedAt.Unix() < start || h.DeployStartedAt == nil && h.DeployedAt.Unix() < start {
			break
		}
	}
	if i < 0 {
		return runs{}, "", nil, false, false
	}
	rev, revisions = history[i].Revision, history[i].Revisions
	prevRuns = historyPoint(&history[i]).runs()
	if prevRuns.same(cur) {
		return prevRuns, rev, revisions, true, false
	}
	for j := i - 1; j >= 0; j-- {
		if historyPoint(&history[j]).runs().same(cur) {
			return prevRuns, rev, revisions, true, !rollForward(history, i, cur)
		}
	}
	return prevRuns, rev, revisions, true, false
}

// rollForward reports whether deploying cur after history entry i goes back
// to what a rollback undid: the entries up to i (re-syncs of one thing)
// rolled back from cur to something deployed before it.
func rollForward(history v1alpha1.RevisionHistories, i int, cur runs) bool {
	p := historyPoint(&history[i]).runs()
	first := i // the first of the entries that ran p, up to i
	for first > 0 && historyPoint(&history[first-1]).runs().same(p) {
		first--
	}
	if first == 0 || !historyPoint(&history[first-1]).runs().same(cur) {
		return false // what ran before p is not cur
	}
	for k := first - 2; k >= 0; k-- {
		if historyPoint(&history[k]).runs().same(p) {
			return true // p was a rollback from cur
		}
	}
	return false
}

// changedSources are the sources whose revision a deployment changed: the
// single source, or each source of a multi-source app whose revision
// differs from the one before.
func changedSources(spec *v1alpha1.ApplicationSpec, rev string, revs []string, prev string, prevRevs []string) []model.DeploymentSource {
	sources := spec.GetSources()
	source := func(i int, r string) model.DeploymentSource {
		s := model.DeploymentSource{Index: i, Revision: r}
		if i < len(sources) {
			s.RepoURL, s.Chart = sources[i].RepoURL, sources[i].Chart
		}
		return s
	}
	if len(revs) == 0 {
		if rev == prev {
			return nil
		}
		return []model.DeploymentSource{source(0, rev)}
	}
	var out []model.DeploymentSource
	for i, r := range revs {
		if i >= len(prevRevs) || prevRevs[i] != r {
			out = append(out, source(i, r))
		}
	}
	return out
}

// changedNothing reports whether a finished operation applied its resources
// without changing any (each result Synced and "unchanged", no hook run, no
// prune); false when the operation state does not tell (history only).
func changedNothing(op *v1alpha1.OperationState) bool {
	if op == nil || op.SyncResult == nil || len(op.SyncResult.Resources) == 0 {
		return false
	}
	for _, r := range op.SyncResult.Resources {
		if r == nil {
			continue
		}
		if r.HookType != "" || r.Status != synccommon.ResultCodeSynced || !unchanged(r) {
			return false
		}
	}
	return true
}

// selfHeal reports whether the operation is a self-heal: an automated sync
// that Argo CD's controller started with a self-heal attempt count
// (controller/appcontroller.go autoSync counts them only when it found the
// sync to the desired revisions already attempted).
func selfHeal(op *v1alpha1.OperationState) bool {
	return op != nil && op.Operation.InitiatedBy.Automated && op.Operation.Sync != nil && op.Operation.Sync.SelfHealAttemptsCount > 0
}
